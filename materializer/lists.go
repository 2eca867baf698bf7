package materializer

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// Lists are stored one crdt list per key (crdt/LISTS.md), its records under
// the key's own prefix:
//
//	'L' slot(2) keylen(4) key record  -> a crdt list record (meta, element,
//	                                     value, children, index node...)
//	'c' partition(4)                  -> the partition's retained list
//	                                     tombstones (int64), for INFO
//
// so a partition's lists are contiguous like its other collections. The
// apply loop folds every admitted event with a list op (crdt.IsListOp) into
// the list with crdt.ApplyList (listBatch); the write path applies the
// effects in flight to a copy-on-write KV over its snapshot (cowKV). A key's
// crdt.Key is kept while its list holds any record (tombstones included).
const (
	prefixList       = 'L'
	prefixListTombs  = 'c'
	listViewMaxDirty = 1 << 14 // a write-path view with more list writes is not cached
)

// listPrefix returns 'L' slot(2) keylen(4) key, with room for extra bytes.
func listPrefix(key []byte, extra int) []byte { return keyPrefix(prefixList, key, extra) }

func listTombsKey(part int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixListTombs}, uint32(part))
}

func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// listRegions is the number of regions whose events reach this node (its
// own topic and one mirror per peer): crdt.ListOptions.Regions.
func (n *Node) listRegions() int { return len(n.topics) }

// listWatch holds the WatchLists callback.
type listWatch struct{ fn func(key []byte) }

// WatchLists registers fn, called with every key whose list gained
// elements by an applied event (local or replicated), after the batch that
// applied it is committed (so View sees it). fn is called from partition
// workers, possibly several at once, and must not block. A later call
// replaces fn.
func (n *Node) WatchLists(fn func(key []byte)) { n.lwatch.Store(&listWatch{fn: fn}) }

// notifyLists calls the WatchLists callback for keys.
func (n *Node) notifyLists(keys [][]byte) {
	if len(keys) == 0 {
		return
	}
	w := n.lwatch.Load()
	if w == nil || w.fn == nil {
		return
	}
	for _, k := range keys {
		w.fn(append([]byte(nil), k...))
	}
}

// hasListOps reports whether ev has an op ApplyList acts on, and whether
// it has list element ops.
func hasListOps(ev *crdt.Event) (some, elems bool) {
	for i := range ev.Ops {
		op := &ev.Ops[i]
		if crdt.IsListOp(op) {
			some = true
		}
		if op.ElemType() == crdt.TypeList {
			elems = true
		}
	}
	return some, elems
}

// apply folds the list part of ev, which l.k.Apply admitted, into the
// batch. A list whose records are corrupt is left as it was (the event's
// other effects stand) and the error logged: the node keeps applying.
func (b *listBatch) apply(l *loaded, ev *crdt.Event, stable crdt.Clock) error {
	some, elems := hasListOps(ev)
	if !some {
		return nil
	}
	ks, err := b.state(l.key)
	if err == nil {
		lens := l.k.Lens[crdt.TypeList]
		writes := append([]crdt.TypeWrite(nil), l.k.Writes...)
		if b.undo == nil {
			b.undo = make(map[string]*listRec)
		}
		err = crdt.ApplyList(ks.kv, l.k, ev, crdt.ListOptions{Stable: stable, Regions: b.n.listRegions()})
		if err != nil {
			b.rollback()
			l.k.Lens[crdt.TypeList], l.k.Writes = lens, writes
		} else {
			clear(b.undo)
			if l.k.Lens[crdt.TypeList] > lens {
				ks.grew = true
			}
		}
	}
	if err != nil {
		if !errors.Is(err, crdt.ErrCorrupt) {
			return fmt.Errorf("list %q: %w", l.key, err)
		}
		b.n.corruptList(l.key, ev, err)
	}
	if elems {
		l.k.GC(stable)
	}
	return nil
}

// corruptList counts an event whose list effects were not applied because
// the list's stored records do not decode (in bad_records), logging once
// per key.
func (n *Node) corruptList(key []byte, ev *crdt.Event, err error) {
	n.bad.Add(1)
	if _, dup := n.badLogged.LoadOrStore("list "+string(key), struct{}{}); dup {
		return
	}
	n.log.Error().Bytes("key", key).Uint32("origin", uint32(ev.Dot.Origin)).Uint64("seq", ev.Dot.Seq).
		Err(err).Msg("list state is corrupt: the event's list effects are not applied")
}

// listStored is the package function for a key the batch touched or not.
func (b *listBatch) listStored(txn *badger.Txn, key []byte) (bool, error) {
	if ks, ok := b.keys[string(key)]; ok {
		return ks.stored, nil
	}
	return listStored(txn, key)
}

// listStored reports whether key's list holds any record (an element, a
// tombstone, an insert waiting for its anchor): its crdt.Key must then be
// kept even when crdt.Key.Empty.
func listStored(txn *badger.Txn, key []byte) (bool, error) {
	l, err := crdt.OpenList(newTxnKV(txn, key))
	if err != nil {
		// A corrupt list still holds records.
		if errors.Is(err, crdt.ErrCorrupt) {
			return true, nil
		}
		return false, err
	}
	return !l.Empty(), nil
}

// listTombstones returns the retained list tombstones of every partition.
func listTombstones(db *badger.DB) (int64, error) {
	var sum int64
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixListTombs}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					sum += int64(beUint64(v))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return sum, err
}

// listBytes is the canonical encoding of a list's visible elements for
// Digest: each value in list order.
func listBytes(txn *badger.Txn, key []byte) ([]byte, error) {
	l, err := crdt.OpenList(newTxnKV(txn, key))
	if err != nil || l.Len() == 0 {
		return nil, err
	}
	var b []byte
	err = l.Range(0, false, func(_ crdt.ElemID, v []byte) bool {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		return true
	})
	return b, err
}

// List opens key's applied list for reading; it is valid until the View's
// fn returns.
func (s *Snapshot) List(key []byte) (*crdt.List, error) {
	return crdt.OpenList(newTxnKV(s.txn, key))
}

// errViewRebuild is returned by a write-path view that cannot derive its
// list (it was cached without one): the Tx builds the view afresh.
var errViewRebuild = errors.New("materializer: view must be rebuilt")

// List opens key's list as the write sees it: the applied state plus the
// effects in flight and those emitted earlier in the Tx. It is valid until
// the next Emit.
func (t *Tx) List(key []byte) (*crdt.List, error) {
	kv, err := t.view(key)
	if err != nil {
		return nil, err
	}
	cow, err := kv.listKV()
	if errors.Is(err, errViewRebuild) {
		if kv, err = t.rebuildView(key); err == nil {
			cow, err = kv.listKV()
		}
	}
	if err != nil {
		return nil, err
	}
	return crdt.OpenList(cow)
}

// rebuildView builds key's view afresh (a new snapshot plus the effects in
// flight and those the Tx emitted), replacing the one the Tx holds.
func (t *Tx) rebuildView(key []byte) (*keyView, error) {
	if old, ok := t.views[string(key)]; ok {
		old.kv.release()
		old.kv.dropList()
		delete(t.views, string(key))
	}
	p := t.n.partOf(key)
	p.mu.Lock()
	kv, err := t.readView(p, key, p.vgen)
	if err != nil {
		return nil, err
	}
	for _, w := range t.out {
		if string(w.ev.Key) == string(key) {
			if err := kv.apply(w.ev); err != nil {
				return nil, err
			}
		}
	}
	return kv, nil
}

// listKV returns the view's list store, creating it over the snapshot the
// view was read from while that is open.
func (kv *keyView) listKV() (*cowKV, error) {
	if kv.list != nil {
		return kv.list, nil
	}
	if kv.snap == nil {
		return nil, errViewRebuild
	}
	kv.list = newCowKV(kv.snap, kv.key)
	return kv.list, nil
}

// needsList reports whether applying ev to the view involves its list:
// list element ops, or a removal while the view shows list elements (a
// removal of a list with no live element changes nothing a write sees).
func (kv *keyView) needsList(ev *crdt.Event) bool {
	some, elems := hasListOps(ev)
	return elems || (some && (kv.list != nil || kv.k.Len(crdt.TypeList) > 0))
}

// applyList folds ev's list part into the view (after kv.k.Apply).
func (kv *keyView) applyList(ev *crdt.Event) error {
	return crdt.ApplyList(kv.list, kv.k, ev, crdt.ListOptions{})
}

// mayHaveList reports whether the view should hold on to its list past
// the Tx: the key has a list, which the next write will likely read.
func (kv *keyView) mayHaveList() bool {
	if kv.k.Len(crdt.TypeList) > 0 {
		return true
	}
	for _, w := range kv.k.Writes {
		if w.Type == crdt.TypeList {
			return true
		}
	}
	return false
}

// dropList discards the view's list and the snapshot it owns.
func (kv *keyView) dropList() {
	if kv.list != nil {
		kv.list.drop()
		kv.list = nil
	}
}

// cacheable reports whether the view may be kept between writes.
func (kv *keyView) cacheable() bool { return kv.list == nil || len(kv.list.m) <= listViewMaxDirty }
