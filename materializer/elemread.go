package materializer

import (
	"bytes"
	"encoding/binary"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// elemReader reads elements from one snapshot of the state, applying each
// key's pending resets.
type elemReader struct {
	txn  *badger.Txn
	open func() *badger.Txn // when set and txn is nil, starts txn on first use
	pend map[string][]crdt.Reset
}

// snap returns the reader's snapshot.
func (r *elemReader) snap() *badger.Txn {
	if r.txn == nil && r.open != nil {
		r.txn = r.open()
	}
	return r.txn
}

func (r *elemReader) resets(key []byte) ([]crdt.Reset, error) {
	if rs, ok := r.pend[string(key)]; ok {
		return rs, nil
	}
	rec, err := readPending(r.snap(), key)
	if err != nil {
		return nil, err
	}
	if r.pend == nil {
		r.pend = make(map[string][]crdt.Reset)
	}
	r.pend[string(key)] = pendingResets(rec)
	return pendingResets(rec), nil
}

// cell returns the stored cell of an element with the pending resets
// applied, nil if none is stored.
func (r *elemReader) cell(key []byte, t crdt.Type, elem []byte) (*crdt.Cell, error) {
	c, err := readCell(r.snap(), key, t, elem)
	if err != nil || c == nil {
		return nil, err
	}
	rs, err := r.resets(key)
	if err != nil {
		return nil, err
	}
	applyResets(rs, t, c, elem)
	return c, nil
}

// scan calls fn for each stored element of key's type t after element
// after (nil: from the first), with the pending resets applied, in element
// order, until fn returns false.
func (r *elemReader) scan(key []byte, t crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	rs, err := r.resets(key)
	if err != nil {
		return err
	}
	prefix := elemTypePrefix(key, t)
	it := r.snap().NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: prefix})
	defer it.Close()
	start := prefix
	if after != nil {
		start = append(append(bytes.Clone(prefix), after...), 0)
	}
	for it.Seek(start); it.Valid(); it.Next() {
		elem := it.Item().Key()[len(prefix):]
		c, err := decodeCellItem(it.Item(), key)
		if err != nil {
			return err
		}
		applyResets(rs, t, c, elem)
		if !fn(bytes.Clone(elem), c) {
			return nil
		}
	}
	return nil
}

// scanScores calls fn for the live members of sorted set key in (score,
// member) order from the position (score, member) on (member nil: every
// member of score), or in reverse order from it back, until fn returns
// false. Without pending resets the index alone answers; with them each
// entry is checked against its cell.
func (r *elemReader) scanScores(key []byte, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	rs, err := r.resets(key)
	if err != nil {
		return err
	}
	prefix := keyPrefix(prefixScore, key, 0)
	it := r.snap().NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
	defer it.Close()
	seek := binary.BigEndian.AppendUint64(bytes.Clone(prefix), sortableScore(score))
	switch {
	case member != nil:
		seek = append(seek, member...)
	case reverse:
		seek = nextPrefix(seek) // after every member of score
	}
	for it.Seek(seek); it.Valid(); it.Next() {
		k := it.Item().Key()[len(prefix):]
		if len(k) < 8 {
			continue
		}
		s := scoreOfSortable(binary.BigEndian.Uint64(k))
		m := k[8:]
		if len(rs) > 0 {
			c, err := r.cell(key, crdt.TypeZSet, m)
			if err != nil {
				return err
			}
			if c == nil {
				continue
			}
			if cs, ok := cellScore(c); !ok || !sameScore(cs, s) {
				continue // removed by a pending reset
			}
		}
		if !fn(bytes.Clone(m), s) {
			return nil
		}
	}
	return nil
}

// Elem returns the cell of element elem of key's collection of type t if
// the element is live, nil otherwise. The result must not be modified.
func (s *Snapshot) Elem(key []byte, t crdt.Type, elem []byte) (*crdt.Cell, error) {
	c, err := s.rd.cell(key, t, elem)
	if err != nil || c == nil || !c.Live() {
		return nil, err
	}
	return c, nil
}

// ScanElems calls fn for each live element of key's collection of type t
// after element after (nil: from the first), in byte order of the
// elements, until fn returns false.
func (s *Snapshot) ScanElems(key []byte, t crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	return s.rd.scan(key, t, after, func(elem []byte, c *crdt.Cell) bool {
		return !c.Live() || fn(elem, c)
	})
}

// ScanScores calls fn for each member of sorted set key in (score, member)
// order, starting at the first member at or after (score, member) (member
// nil: the first member of score), or with reverse in descending order
// starting at the last member at or before it (member nil: the last member
// of score), until fn returns false. Seeking costs O(log N); each member
// visited O(1).
func (s *Snapshot) ScanScores(key []byte, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	return s.rd.scanScores(key, score, member, reverse, fn)
}

// Elem is Snapshot.Elem over the Tx's view (effects in flight included).
func (t *Tx) Elem(key []byte, typ crdt.Type, elem []byte) (*crdt.Cell, error) {
	kv, err := t.view(key)
	if err != nil {
		return nil, err
	}
	c, err := kv.peek(typ, elem)
	if err != nil || c == nil || !c.Live() {
		return nil, err
	}
	return c, nil
}

// ScanElems is Snapshot.ScanElems over the Tx's view.
func (t *Tx) ScanElems(key []byte, typ crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	kv, err := t.view(key)
	if err != nil {
		return err
	}
	return kv.scan(typ, after, func(elem []byte, c *crdt.Cell) bool {
		return !c.Live() || fn(elem, c)
	})
}

// ScanScores is Snapshot.ScanScores over the Tx's view.
func (t *Tx) ScanScores(key []byte, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	kv, err := t.view(key)
	if err != nil {
		return err
	}
	return kv.scanScores(score, member, reverse, fn)
}

// collectionBytes is the canonical encoding of a collection's visible
// elements for Digest: each live element in element order with its value
// (hash field) or score (sorted set).
func collectionBytes(rd *elemReader, key []byte, t crdt.Type) ([]byte, error) {
	var b []byte
	err := rd.scan(key, t, nil, func(elem []byte, c *crdt.Cell) bool {
		if !c.Live() {
			return true
		}
		b = binary.AppendUvarint(b, uint64(len(elem)))
		b = append(b, elem...)
		switch t {
		case crdt.TypeHash:
			v, _ := c.Value()
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case crdt.TypeZSet:
			s, _ := c.Score()
			b = binary.BigEndian.AppendUint64(b, sortableScore(s))
		}
		return true
	})
	return b, err
}
