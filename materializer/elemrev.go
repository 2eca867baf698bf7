package materializer

import (
	"bytes"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// scanReverse is scan in descending element order, starting before
// element before (nil: from the last).
func (r *elemReader) scanReverse(key []byte, t crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	rs, err := r.resets(key)
	if err != nil {
		return err
	}
	prefix := elemTypePrefix(key, t)
	it := r.snap().NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Reverse: true})
	defer it.Close()
	// A reverse Seek lands on the greatest key at or before the seek key:
	// skip it when it is the seek key itself (before, or the first key of
	// the next type).
	seek := nextPrefix(prefix)
	if before != nil {
		seek = append(bytes.Clone(prefix), before...)
	}
	for it.Seek(seek); it.Valid(); it.Next() {
		k := it.Item().Key()
		if bytes.Equal(k, seek) {
			continue
		}
		if !bytes.HasPrefix(k, prefix) {
			return nil
		}
		elem := k[len(prefix):]
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

// ScanElemsReverse is ScanElems in descending order, starting before
// element before (nil: from the last).
func (s *Snapshot) ScanElemsReverse(key []byte, t crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	return s.rd.scanReverse(key, t, before, func(elem []byte, c *crdt.Cell) bool {
		return !c.Live() || fn(elem, c)
	})
}

// ScanElemsReverse is Snapshot.ScanElemsReverse over the Tx's view.
func (t *Tx) ScanElemsReverse(key []byte, typ crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	kv, err := t.view(key)
	if err != nil {
		return err
	}
	return kv.scanReverse(typ, before, func(elem []byte, c *crdt.Cell) bool {
		return !c.Live() || fn(elem, c)
	})
}

// scanReverse is scan in descending order.
func (kv *keyView) scanReverse(t crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	var touched []string
	for id := range kv.cells {
		if id.t == t && (before == nil || id.e < string(before)) {
			touched = append(touched, id.e)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(touched)))
	return kv.merge(t, touched, true, func(f func(elem []byte, c *crdt.Cell) bool) error {
		return kv.rd.scanReverse(kv.key, t, before, f)
	}, fn)
}
