package crdt

import "fmt"

// Type is the Redis data type of a key's state.
type Type uint8

// The data types. The numbers are part of the state and event encodings.
const (
	TypeNone   Type = 0
	TypeString Type = 1
	TypeHash   Type = 2
	TypeSet    Type = 3
	TypeZSet   Type = 4
	TypeList   Type = 5
)

// String returns the name TYPE replies with.
func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	case TypeList:
		return "list"
	}
	return "none"
}

// OpKind says what an Op does. The numbers are part of the event encoding.
type OpKind uint8

// The operations. Each is an effect: applying it needs no condition, clock or
// randomness, and it commutes with any concurrent op.
const (
	// OpDelete removes everything of the key the origin had observed
	// (Event.Observed): every type's state and the TTL versions. Shares holds
	// the counter totals the origin observed (the counter's observed reset).
	OpDelete OpKind = 1
	// OpDeleteType removes the observed state of one type (Op.Type) only: what
	// a write emits for hidden state of another type after a type conflict.
	OpDeleteType OpKind = 2
	// OpSet makes the string register hold Value: it removes the register
	// versions the origin observed, resets the observed counter increments
	// (Shares) and adds a version stamped with the event's dot and HLC.
	OpSet OpKind = 3
	// OpIncr adds Int to the origin's counter share of the string named by
	// Start (Key.OwnShareStart at the origin; 0 opens a share at this event).
	OpIncr OpKind = 4
	// OpIncrFloat adds Float to the origin's counter share, like OpIncr.
	OpIncrFloat OpKind = 5
	// OpExpire replaces the observed TTL versions by one that expires at At
	// (ms since the epoch), or by PERSIST when At is 0.
	OpExpire OpKind = 6
)

// Op is one effect of an Event on its key.
type Op struct {
	Kind   OpKind
	Type   Type    // OpDeleteType
	Value  []byte  // OpSet
	Int    int64   // OpIncr
	Float  Float   // OpIncrFloat
	At     int64   // OpExpire: absolute expiry in ms, 0 = persist
	Start  uint64  // OpIncr, OpIncrFloat: the share's identity, 0 = open a new one at this event
	Shares []Share // OpDelete, OpSet, OpDeleteType: counter totals observed
}

// Event is one write's effect on one key, with its causal stamp.
type Event struct {
	Dot      Dot
	HLC      HLC
	Key      []byte
	Observed Clock // the origin's Key.VV when it made the write
	Ops      []Op
}

func (k OpKind) String() string {
	switch k {
	case OpDelete:
		return "delete"
	case OpDeleteType:
		return "delete-type"
	case OpSet:
		return "set"
	case OpIncr:
		return "incr"
	case OpIncrFloat:
		return "incrbyfloat"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Creates returns the type of state op writes, TypeNone for removals and
// TTL changes.
func (op *Op) Creates() Type {
	switch op.Kind {
	case OpSet, OpIncr, OpIncrFloat:
		return TypeString
	}
	return TypeNone
}
