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

	numTypes = 6
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

	// Element ops act on one element (Op.Elem) of a collection, whose state
	// is a Cell of its own: see Key.ApplyElem. The key's ctx (Event.Observed)
	// is their observed context too, since a key's events from one origin
	// arrive in order.

	// OpHSet sets hash field Elem to Value (observed reset of the field).
	OpHSet OpKind = 7
	// OpHDel removes the observed versions of hash field Elem.
	OpHDel OpKind = 8
	// OpHIncr adds Int to hash field Elem's counter share (Start as OpIncr).
	OpHIncr OpKind = 9
	// OpHIncrFloat adds Float to hash field Elem's counter share.
	OpHIncrFloat OpKind = 10
	// OpSAdd adds set member Elem (a new version; observed ones are replaced).
	OpSAdd OpKind = 11
	// OpSRem removes the observed versions of set member Elem.
	OpSRem OpKind = 12
	// OpZAdd sets sorted-set member Elem's score base to Value (8-byte
	// big-endian IEEE 754 bits): observed reset plus a new register version.
	OpZAdd OpKind = 13
	// OpZIncr adds Float to member Elem's score (a counter share).
	OpZIncr OpKind = 14
	// OpZRem removes the observed versions and increments of member Elem.
	OpZRem OpKind = 15

	// List element ops (see ApplyList): Elem is a list element's ElemID.

	// OpLInsert inserts element Elem (an id of this event) holding Value as
	// a child of element Anchor (empty: the list head): before it (a left
	// child) when Before is set, else after it. Counter orders it among the
	// anchor's children on that side.
	OpLInsert OpKind = 16
	// OpLSet makes element Elem hold Value (observed reset of its value),
	// unless it is removed.
	OpLSet OpKind = 17
	// OpLRem removes element Elem for good (pops, LREM, LTRIM).
	OpLRem OpKind = 18
)

// MaxOpKind is the greatest op kind this build knows.
const MaxOpKind = OpLRem

// Op is one effect of an Event on its key.
type Op struct {
	Kind   OpKind
	Type   Type    // OpDeleteType
	Value  []byte  // OpSet
	Int    int64   // OpIncr
	Float  Float   // OpIncrFloat
	At     int64   // OpExpire: absolute expiry in ms, 0 = persist
	Start  uint64  // OpIncr, OpIncrFloat: the share's identity, 0 = open a new one at this event
	Shares []Share // OpDelete, OpSet, OpDeleteType, element resets: counter totals observed
	Elem   []byte  // element ops: the field or member
	// Elems carries, for OpDelete and OpDeleteType of a collection, the
	// counter totals observed per element (only elements that have shares).
	Elems []ElemShares
	// OpLInsert: the anchor element (empty: the list head), the side and
	// the sibling counter.
	Anchor  []byte
	Before  bool
	Counter uint64
}

// ElemShares is the observed counter totals of one element.
type ElemShares struct {
	Elem   []byte
	Shares []Share
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
	case OpHSet:
		return "hset"
	case OpHDel:
		return "hdel"
	case OpHIncr:
		return "hincr"
	case OpHIncrFloat:
		return "hincrbyfloat"
	case OpSAdd:
		return "sadd"
	case OpSRem:
		return "srem"
	case OpZAdd:
		return "zadd"
	case OpZIncr:
		return "zincr"
	case OpZRem:
		return "zrem"
	case OpLInsert:
		return "linsert"
	case OpLSet:
		return "lset"
	case OpLRem:
		return "lrem"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Creates returns the type of state op writes, TypeNone for removals and
// TTL changes.
func (op *Op) Creates() Type {
	switch op.Kind {
	case OpSet, OpIncr, OpIncrFloat:
		return TypeString
	case OpHSet, OpHIncr, OpHIncrFloat:
		return TypeHash
	case OpSAdd:
		return TypeSet
	case OpZAdd, OpZIncr:
		return TypeZSet
	case OpLInsert, OpLSet:
		return TypeList
	}
	return TypeNone
}

// ElemType returns the collection type an element op acts on, TypeNone for
// key-level ops.
func (op *Op) ElemType() Type {
	switch op.Kind {
	case OpHSet, OpHDel, OpHIncr, OpHIncrFloat:
		return TypeHash
	case OpSAdd, OpSRem:
		return TypeSet
	case OpZAdd, OpZIncr, OpZRem:
		return TypeZSet
	case OpLInsert, OpLSet, OpLRem:
		return TypeList
	}
	return TypeNone
}
