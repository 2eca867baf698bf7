package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// KV is the storage of one list: byte keys to byte values, the keys private
// to that list (the materializer gives each list key its own prefix in a
// Badger transaction; tests use a map). A list needs no iteration, only
// point reads and writes.
//
// A KV is used by one goroutine at a time.
type KV interface {
	// Get returns the value stored under key, or false if there is none.
	// The caller does not modify the value and does not use it after its
	// next call on the KV.
	Get(key []byte) (value []byte, ok bool, err error)
	// Set stores value under key. The KV may keep both slices: the caller
	// does not modify them afterwards.
	Set(key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte) error
}

// ElemID identifies a list element: the dot of the event that inserted it
// and the insert's index in that event (from 1). The zero ElemID is the list
// head. Its 16-byte encoding (Bytes) sorts like (Origin, Seq, Idx).
//
// In ops, an ElemID with Origin and Seq 0 and Idx > 0 names an element
// inserted by the same event (Idx-th insert), so an origin can build an
// event's ops before it knows the event's dot.
type ElemID struct {
	Origin ReplicaID
	Seq    uint64
	Idx    uint32
}

// ElemIDLen is the length of an ElemID's encoding.
const ElemIDLen = 16

// ErrBadElemID is returned for an element identifier that does not decode.
var ErrBadElemID = errors.New("crdt: bad list element id")

// Bytes returns id's 16-byte big-endian encoding.
func (id ElemID) Bytes() []byte { return id.appendTo(make([]byte, 0, ElemIDLen)) }

func (id ElemID) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(id.Origin))
	b = binary.BigEndian.AppendUint64(b, id.Seq)
	return binary.BigEndian.AppendUint32(b, id.Idx)
}

// ParseElemID decodes Bytes' encoding.
func ParseElemID(b []byte) (ElemID, error) {
	if len(b) != ElemIDLen {
		return ElemID{}, ErrBadElemID
	}
	return ElemID{
		Origin: ReplicaID(binary.BigEndian.Uint32(b)),
		Seq:    binary.BigEndian.Uint64(b[4:]),
		Idx:    binary.BigEndian.Uint32(b[12:]),
	}, nil
}

// IsHead reports whether id is the list head.
func (id ElemID) IsHead() bool { return id == ElemID{} }

// Less orders ids like their encodings.
func (id ElemID) Less(o ElemID) bool {
	if id.Origin != o.Origin {
		return id.Origin < o.Origin
	}
	if id.Seq != o.Seq {
		return id.Seq < o.Seq
	}
	return id.Idx < o.Idx
}

// Dot returns the dot of the event that inserted the element.
func (id ElemID) Dot() Dot { return Dot{Origin: id.Origin, Seq: id.Seq} }

func (id ElemID) String() string {
	if id.IsHead() {
		return "head"
	}
	return fmt.Sprintf("%d.%d.%d", id.Origin, id.Seq, id.Idx)
}

// relative reports whether id names an insert of the event it appears in.
func (id ElemID) relative() bool { return id.Origin == 0 && id.Seq == 0 && id.Idx > 0 }

// resolve returns id with a relative reference bound to the event at d.
func (id ElemID) resolve(d Dot) ElemID {
	if id.relative() {
		id.Origin, id.Seq = d.Origin, d.Seq
	}
	return id
}

// Record keys inside a list's KV. The first byte is the table.
const (
	tabMeta   = 'M' // list and index metadata
	tabNode   = 'n' // nodeID(8): order-statistics tree node
	tabLeaf   = 'l' // id(16): the leaf holding the element
	tabElem   = 't' // id(16): element structure (anchor, side, counter, flags)
	tabValue  = 'v' // id(16): element value (a Cell)
	tabKids   = 'c' // id(16) side(1): the element's children on one side
	tabWait   = 'w' // id(16): inserts waiting for this element to arrive
	tabGCNext = 'g' // origin(4) n(8): removed elements in a collection queue
)

func idKey(tab byte, id ElemID) []byte {
	return id.appendTo(append(make([]byte, 0, 1+ElemIDLen+1), tab))
}

func kidsKey(id ElemID, before bool) []byte {
	k := idKey(tabKids, id)
	if before {
		return append(k, 'L')
	}
	return append(k, 'R')
}

func nodeKey(n nodeID) []byte { return binary.BigEndian.AppendUint64([]byte{tabNode}, uint64(n)) }

func gcKey(o ReplicaID, n uint64) []byte {
	b := binary.BigEndian.AppendUint32([]byte{tabGCNext}, uint32(o))
	return binary.BigEndian.AppendUint64(b, n)
}

var metaKey = []byte{tabMeta}

func putID(b []byte, id ElemID) []byte {
	b = binary.AppendUvarint(b, uint64(id.Origin))
	b = binary.AppendUvarint(b, id.Seq)
	return binary.AppendUvarint(b, uint64(id.Idx))
}

func (d *decoder) id() ElemID {
	o := d.uvarint()
	s := d.uvarint()
	i := d.uvarint()
	if o > 1<<32-1 || i > 1<<32-1 {
		d.fail()
	}
	return ElemID{Origin: ReplicaID(o), Seq: s, Idx: uint32(i)}
}

func (d *decoder) ids() []ElemID {
	n := d.count()
	var out []ElemID
	for ; n > 0 && d.err == nil; n-- {
		out = append(out, d.id())
	}
	return out
}

func putIDs(b []byte, ids []ElemID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = putID(b, id)
	}
	return b
}

// kvErr wraps a KV with a sticky error and corruption reporting.
type kvErr struct {
	kv  KV
	err error
}

func (s *kvErr) get(key []byte) ([]byte, bool) {
	if s.err != nil {
		return nil, false
	}
	v, ok, err := s.kv.Get(key)
	if err != nil {
		s.err = fmt.Errorf("list get: %w", err)
		return nil, false
	}
	return v, ok
}

func (s *kvErr) set(key, value []byte) {
	if s.err != nil {
		return
	}
	if err := s.kv.Set(key, value); err != nil {
		s.err = fmt.Errorf("list set: %w", err)
	}
}

func (s *kvErr) del(key []byte) {
	if s.err != nil {
		return
	}
	if err := s.kv.Delete(key); err != nil {
		s.err = fmt.Errorf("list delete: %w", err)
	}
}

// corrupt records a record that does not decode.
func (s *kvErr) corrupt(what string, key []byte) {
	if s.err == nil {
		s.err = fmt.Errorf("list %s record %x: %w", what, key, ErrCorrupt)
	}
}
