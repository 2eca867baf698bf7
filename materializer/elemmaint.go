package materializer

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// Maintenance of a partition's elements, run by its worker between apply
// batches: normalize rewrites the elements of keys with pending resets a
// chunk at a time, sweep collects tombstones the stable clock has passed.
// Neither changes what reads see.
const (
	maintainInterval = 100 * time.Millisecond
	maintainBudget   = 2048 // entries rewritten per maintenance transaction
)

// sweepState is where the tombstone sweep of a partition is.
type sweepState struct {
	cursor []byte     // last tombstone index key visited in this pass
	from   crdt.Clock // stable clock when the pass started
	done   crdt.Clock // stable clock of the last finished pass (nil: none)
	ran    bool
}

// maintain runs one bounded step of normalize and sweep for partition p.
func (n *Node) maintain(p *partition) error {
	ep := n.elemPart(p.id)
	if !ep.inited {
		if err := n.initElemPart(p, ep); err != nil {
			return err
		}
	}
	p.mu.Lock()
	stable := stableOf(p.wm)
	p.mu.Unlock()
	if len(ep.pending) > 0 {
		if err := n.normalize(ep, stable); err != nil {
			return fmt.Errorf("normalize partition %d: %w", p.id, err)
		}
	}
	if ep.tombs.Load() > 0 && (!ep.sweep.ran || ep.sweep.cursor != nil || !ep.sweep.done.Equal(stable)) {
		if err := n.sweep(p, ep, stable); err != nil {
			return fmt.Errorf("sweep partition %d: %w", p.id, err)
		}
	}
	return nil
}

// initElemPart counts the partition's tombstone index and finds its keys
// with pending resets.
func (n *Node) initElemPart(p *partition, ep *elemPart) error {
	var tombs int64
	pending := make(map[string]bool)
	err := n.db.View(func(txn *badger.Txn) error {
		lo, hi := slotRange(prefixTomb, p.id, n.cfg.Partitions)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTomb}})
		for it.Seek(lo); it.Valid() && bytes.Compare(it.Item().Key(), hi) < 0; it.Next() {
			tombs++
		}
		it.Close()
		lo, hi = slotRange(prefixPending, p.id, n.cfg.Partitions)
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixPending}})
		defer it.Close()
		for it.Seek(lo); it.Valid() && bytes.Compare(it.Item().Key(), hi) < 0; it.Next() {
			if key, _, ok := parseKeyed(it.Item().Key()); ok {
				pending[string(key)] = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	ep.tombs.Store(tombs)
	ep.pending = pending
	ep.inited = true
	return nil
}

// normalize rewrites up to maintainBudget elements of keys with pending
// resets, and drops a key's record once all its elements are rewritten.
func (n *Node) normalize(ep *elemPart, stable crdt.Clock) error {
	keys := make([]string, 0, len(ep.pending))
	for k := range ep.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	txn := n.db.NewTransaction(true)
	defer txn.Discard()
	budget := maintainBudget
	var tombs int64
	var finished []string
	for _, key := range keys {
		if budget <= 0 {
			break
		}
		done, err := normalizeKey(txn, []byte(key), stable, &budget, &tombs)
		if err != nil {
			return err
		}
		if done {
			finished = append(finished, key)
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	ep.tombs.Add(tombs)
	for _, k := range finished {
		delete(ep.pending, k)
	}
	return nil
}

// normalizeKey rewrites elements of key with its pending resets applied,
// spending budget, and reports whether the key has none left.
func normalizeKey(txn *badger.Txn, key []byte, stable crdt.Clock, budget *int, tombs *int64) (bool, error) {
	rec, err := readPending(txn, key)
	if err != nil || rec == nil {
		return rec == nil, err
	}
	covers := func(t crdt.Type) bool {
		for i := range rec.resets {
			if rec.resets[i].Covers(t) {
				return true
			}
		}
		return false
	}
	if rec.phase == 0 {
		// Stored cells, in (type, element) order after the cursor.
		prefix := keyPrefix(prefixElem, key, 0)
		type todo struct {
			t    crdt.Type
			elem []byte
			c    *crdt.Cell
		}
		var batch []todo
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: prefix})
		start := append(bytes.Clone(prefix), rec.cursor...)
		if rec.cursor != nil {
			start = append(start, 0)
		}
		complete := true
		for it.Seek(start); it.Valid(); it.Next() {
			if len(batch) >= *budget {
				complete = false
				break
			}
			rest := it.Item().Key()[len(prefix):]
			if len(rest) == 0 {
				continue
			}
			t := crdt.Type(rest[0])
			rec.cursor = bytes.Clone(rest)
			if !covers(t) {
				continue
			}
			c, err := decodeCellItem(it.Item(), key)
			if err != nil {
				it.Close()
				return false, err
			}
			batch = append(batch, todo{t: t, elem: bytes.Clone(rest[1:]), c: c})
		}
		it.Close()
		for _, x := range batch {
			raw := rawOf(x.t, x.c)
			before := crdt.MarshalCell(nil, x.c)
			applyResets(rec.resets, x.t, x.c, x.elem)
			x.c.GC(stable)
			if !bytes.Equal(before, crdt.MarshalCell(nil, x.c)) {
				if err := writeCell(txn, key, x.t, x.elem, x.c, &raw, tombs); err != nil {
					return false, err
				}
			}
			*budget--
		}
		if !complete {
			return false, txn.Set(pendingKey(key), rec.marshal())
		}
		rec.phase, rec.cursor = 1, nil
	}
	// Baselines of elements the resets name that are not stored, for
	// increments that have not arrived yet.
	var all [][]crdt.ElemShares
	for _, r := range rec.resets {
		all = append(all, r.Elems)
	}
	elems := crdt.MergeElemShares(all...)
	for _, es := range elems {
		if rec.cursor != nil && bytes.Compare(es.Elem, rec.cursor) <= 0 {
			continue
		}
		if *budget <= 0 {
			return false, txn.Set(pendingKey(key), rec.marshal())
		}
		for _, t := range []crdt.Type{crdt.TypeHash, crdt.TypeZSet} {
			if !covers(t) {
				continue
			}
			stored, err := readCell(txn, key, t, es.Elem)
			if err != nil {
				return false, err
			}
			if stored != nil {
				continue // rewritten in phase 0
			}
			c := &crdt.Cell{}
			applyResets(rec.resets, t, c, es.Elem)
			c.GC(stable)
			var raw rawState
			if err := writeCell(txn, key, t, es.Elem, c, &raw, tombs); err != nil {
				return false, err
			}
		}
		rec.cursor = bytes.Clone(es.Elem)
		if rec.cursor == nil {
			rec.cursor = []byte{}
		}
		*budget--
	}
	return true, txn.Delete(pendingKey(key))
}

// sweep collects tombstones in up to maintainBudget entries of the
// partition's tombstone index, continuing where the last call stopped.
// A pass that reaches the end is repeated only once the stable clock has
// moved.
func (n *Node) sweep(p *partition, ep *elemPart, stable crdt.Clock) error {
	s := &ep.sweep
	if s.cursor == nil {
		s.from = stable.Clone()
	}
	lo, hi := slotRange(prefixTomb, p.id, n.cfg.Partitions)
	start := lo
	if s.cursor != nil {
		start = append(bytes.Clone(s.cursor), 0)
	}
	txn := n.db.NewTransaction(true)
	defer txn.Discard()
	var entries [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTomb}})
	for it.Seek(start); it.Valid() && bytes.Compare(it.Item().Key(), hi) < 0 && len(entries) < maintainBudget; it.Next() {
		entries = append(entries, it.Item().KeyCopy(nil))
	}
	it.Close()
	var tombs int64
	for _, e := range entries {
		key, rest, ok := parseKeyed(e)
		if !ok || len(rest) == 0 {
			if err := txn.Delete(e); err != nil {
				return err
			}
			tombs--
			continue
		}
		t, elem := crdt.Type(rest[0]), rest[1:]
		if t == crdt.TypeNone {
			p.cache.drop(key) // sweepEntry may rewrite the key's state
		}
		if err := sweepEntry(txn, key, t, elem, stable, &tombs); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	ep.tombs.Add(tombs)
	s.ran = true
	if len(entries) < maintainBudget {
		s.cursor, s.done = nil, s.from
	} else {
		s.cursor = entries[len(entries)-1]
	}
	return nil
}

// sweepEntry collects the tombstones of one key state (t 0) or element.
func sweepEntry(txn *badger.Txn, key []byte, t crdt.Type, elem []byte, stable crdt.Clock, tombs *int64) error {
	if t == crdt.TypeNone {
		k, err := getKey(txn, key)
		if err != nil {
			return err
		}
		if k == nil {
			*tombs--
			return txn.Delete(tombKey(key, 0, nil))
		}
		before := k.Marshal(nil)
		k.GC(stable)
		drop := k.Empty()
		if drop {
			kept, err := listStored(txn, key)
			if err != nil {
				return err
			}
			drop = !kept
		}
		if drop {
			if err := txn.Delete(metaKey(key)); err != nil {
				return err
			}
		} else if after := k.Marshal(nil); !bytes.Equal(before, after) {
			if err := txn.Set(metaKey(key), after); err != nil {
				return err
			}
		}
		return setTomb(txn, key, 0, nil, true, !k.Empty() && k.HasTombstones(), tombs)
	}
	c, err := readCell(txn, key, t, elem)
	if err != nil {
		return err
	}
	if c == nil {
		*tombs--
		return txn.Delete(tombKey(key, t, elem))
	}
	raw := rawOf(t, c)
	raw.tomb = true // the index entry exists
	before := crdt.MarshalCell(nil, c)
	c.GC(stable)
	if bytes.Equal(before, crdt.MarshalCell(nil, c)) && c.HasTombstones() {
		return nil
	}
	return writeCell(txn, key, t, elem, c, &raw, tombs)
}
