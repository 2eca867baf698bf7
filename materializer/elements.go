package materializer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// Collections (hashes, sets, sorted sets) are stored element by element,
// beside the key's crdt.Key (which keeps the live element counts):
//
//	'e' slot(2) keylen(4) key type(1) elem        -> crdt.Cell encoding
//	'z' slot(2) keylen(4) key score(8) member     -> (empty) sorted-set index
//	'p' slot(2) keylen(4) key                     -> pending resets (see below)
//	't' slot(2) keylen(4) key type(1) elem        -> (empty) tombstone index
//
// A key's elements of one type are contiguous and ordered by element, so
// HSCAN/SSCAN/ZSCAN and HGETALL iterate them from any element. The score
// index holds one entry per live sorted-set member, ordered by score (as
// sortable bytes, -0 as 0) then member, kept in step with the member's cell
// in the same transaction: range, rank and count queries by score seek into
// it instead of scanning the set.
//
// Pending resets: a removal of a whole collection (DEL, a type change) must
// reset every element, which for a large collection is more than one Badger
// transaction may write. Then the apply writes only the elements that stay
// live (concurrent writes the removal had not seen, few) and records the
// removal as a crdt.Reset under 'p'; every read and write of an element of
// the key applies the key's pending resets first, so nothing sees the
// removal half applied. The partition worker then rewrites the other
// elements a chunk at a time (normalize) and drops the record. Until then
// the score index may hold entries of members the resets removed: readers
// of a key with pending resets check each entry against its cell.
//
// Tombstone index: one entry per key state or element cell that retains
// removal state (crdt HasTombstones), so INFO can count them cheaply and the
// partition worker can collect them once the stable clock passes them
// (sweep), also when nothing touches them again. Type 0 is the key's
// crdt.Key.
const (
	prefixElem    = 'e'
	prefixScore   = 'z'
	prefixPending = 'p'
	prefixTomb    = 't'
)

// collectionTypes are the types stored element by element.
var collectionTypes = []crdt.Type{crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet}

func isCollection(t crdt.Type) bool {
	return t == crdt.TypeHash || t == crdt.TypeSet || t == crdt.TypeZSet
}

// keyPrefix returns prefix slot(2) keylen(4) key, with room for extra bytes.
func keyPrefix(prefix byte, key []byte, extra int) []byte {
	b := make([]byte, 0, 7+len(key)+extra)
	b = append(b, prefix)
	b = binary.BigEndian.AppendUint16(b, oplog.HashSlot(key))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

// elemKey is the Badger key of an element's cell.
func elemKey(key []byte, t crdt.Type, elem []byte) []byte {
	b := keyPrefix(prefixElem, key, 1+len(elem))
	b = append(b, byte(t))
	return append(b, elem...)
}

// elemTypePrefix is the common prefix of key's elements of type t.
func elemTypePrefix(key []byte, t crdt.Type) []byte {
	return append(keyPrefix(prefixElem, key, 1), byte(t))
}

// parseKeyed splits a Badger key made by keyPrefix (plus a rest) into the
// Redis key and the rest.
func parseKeyed(k []byte) (key, rest []byte, ok bool) {
	if len(k) < 7 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint32(k[3:7]))
	if len(k) < 7+n {
		return nil, nil, false
	}
	return k[7 : 7+n], k[7+n:], true
}

// sortableScore maps a score to 8 bytes that sort like the scores (-0 and
// 0 alike; NaN never occurs).
func sortableScore(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	u := math.Float64bits(f)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

func scoreOfSortable(u uint64) float64 {
	if u>>63 == 1 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// scoreKey is the index entry of member at score.
func scoreKey(key []byte, score float64, member []byte) []byte {
	b := keyPrefix(prefixScore, key, 8+len(member))
	b = binary.BigEndian.AppendUint64(b, sortableScore(score))
	return append(b, member...)
}

func pendingKey(key []byte) []byte { return keyPrefix(prefixPending, key, 0) }

// tombKey is the tombstone index entry of key's state (t 0) or of one of
// its elements.
func tombKey(key []byte, t crdt.Type, elem []byte) []byte {
	b := keyPrefix(prefixTomb, key, 1+len(elem))
	b = append(b, byte(t))
	return append(b, elem...)
}

// slotRange returns the first key of table prefix for partition p's slots
// and the first key after them.
func slotRange(prefix byte, p, n int32) (lo, hi []byte) {
	first := (int64(p)*oplog.SlotCount + int64(n) - 1) / int64(n)
	last := (int64(p+1)*oplog.SlotCount + int64(n) - 1) / int64(n)
	lo = binary.BigEndian.AppendUint16([]byte{prefix}, uint16(first))
	if last >= oplog.SlotCount {
		return lo, []byte{prefix + 1}
	}
	return lo, binary.BigEndian.AppendUint16([]byte{prefix}, uint16(last))
}

// readCell reads an element's stored cell, nil if there is none.
func readCell(txn *badger.Txn, key []byte, t crdt.Type, elem []byte) (*crdt.Cell, error) {
	item, err := txn.Get(elemKey(key, t, elem))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read element of %q: %w", key, err)
	}
	return decodeCellItem(item, key)
}

func decodeCellItem(item *badger.Item, key []byte) (*crdt.Cell, error) {
	var c crdt.Cell
	err := item.Value(func(v []byte) error {
		var derr error
		c, derr = crdt.UnmarshalCell(v)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("decode element of %q: %w", key, err)
	}
	return &c, nil
}

// pendingRecord is a key's pending resets and how far normalize got.
type pendingRecord struct {
	resets []crdt.Reset
	// phase 0: rewriting stored cells, after cursor (type + elem);
	// phase 1: creating baseline cells for Elems not stored, after cursor.
	phase  byte
	cursor []byte
}

func (r *pendingRecord) marshal() []byte {
	b := []byte{r.phase}
	b = binary.AppendUvarint(b, uint64(len(r.cursor)))
	b = append(b, r.cursor...)
	return crdt.MarshalResets(b, r.resets)
}

func unmarshalPending(v []byte) (*pendingRecord, error) {
	if len(v) < 2 {
		return nil, crdt.ErrCorrupt
	}
	r := &pendingRecord{phase: v[0]}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || uint64(len(v)-1-w) < n {
		return nil, crdt.ErrCorrupt
	}
	r.cursor = append([]byte(nil), v[1+w:1+w+int(n)]...)
	rs, err := crdt.UnmarshalResets(v[1+w+int(n):])
	if err != nil {
		return nil, err
	}
	r.resets = rs
	return r, nil
}

// readPending reads key's pending resets, nil if none.
func readPending(txn *badger.Txn, key []byte) (*pendingRecord, error) {
	item, err := txn.Get(pendingKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pending resets of %q: %w", key, err)
	}
	var r *pendingRecord
	err = item.Value(func(v []byte) error {
		var derr error
		r, derr = unmarshalPending(v)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("decode pending resets of %q: %w", key, err)
	}
	return r, nil
}

// applyResets applies the resets of type t to the cell of elem.
func applyResets(rs []crdt.Reset, t crdt.Type, c *crdt.Cell, elem []byte) {
	for i := range rs {
		if rs[i].Covers(t) {
			rs[i].ApplyTo(t, c, elem)
		}
	}
}

func pendingResets(r *pendingRecord) []crdt.Reset {
	if r == nil {
		return nil
	}
	return r.resets
}

// liveDelta converts a liveness change into a Len delta.
func liveDelta(before, after bool) int64 {
	switch {
	case before && !after:
		return -1
	case !before && after:
		return 1
	}
	return 0
}

// cellScore returns a live sorted-set member's score.
func cellScore(c *crdt.Cell) (float64, bool) {
	if !c.Live() {
		return 0, false
	}
	return c.Score()
}

// sameScore compares scores as the index does.
func sameScore(a, b float64) bool { return sortableScore(a) == sortableScore(b) }

// nextPrefix returns the first key after every key starting with p.
func nextPrefix(p []byte) []byte {
	out := bytes.Clone(p)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	return nil
}
