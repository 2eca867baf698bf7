package materializer

import (
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// defaultEagerResetMax is the most live elements a removal of a collection
// rewrites in the transaction that applies it; a larger collection gets a
// pending reset (see elements.go).
const defaultEagerResetMax = 2048

// Apply batches are committed early once they are about to write this
// many entries or bytes (Badger refuses transactions above roughly 15% of
// a memtable: 4.8 MB or 50,000 entries with the node's options).
const (
	maxBatchEntries = 16384
	maxBatchBytes   = 1 << 20
)

// elemNode is a node's element bookkeeping per partition.
type elemNode struct {
	mu    sync.Mutex
	parts map[int32]*elemPart
	// eagerResetMax overrides defaultEagerResetMax when set (tests).
	eagerResetMax atomic.Int64
}

// elemPart is one partition's element bookkeeping. Only the partition's
// worker uses it, except tombs, which Status reads.
type elemPart struct {
	tombs   atomic.Int64    // entries of the tombstone index
	inited  bool            // tombs and pending were read from the state
	pending map[string]bool // keys with pending resets
	sweep   sweepState
}

func (n *Node) elemPart(id int32) *elemPart {
	n.el.mu.Lock()
	defer n.el.mu.Unlock()
	if n.el.parts == nil {
		n.el.parts = make(map[int32]*elemPart)
	}
	ep := n.el.parts[id]
	if ep == nil {
		ep = &elemPart{pending: make(map[string]bool)}
		n.el.parts[id] = ep
	}
	return ep
}

func (n *Node) eagerResetMax() int64 {
	if v := n.el.eagerResetMax.Load(); v != 0 {
		return max(v, 0)
	}
	return defaultEagerResetMax
}

// tombstones returns the number of entries holding tombstones.
func (n *Node) tombstones() int64 {
	n.el.mu.Lock()
	defer n.el.mu.Unlock()
	var sum int64
	for _, ep := range n.el.parts {
		sum += ep.tombs.Load()
	}
	return sum
}

type elemID struct {
	t crdt.Type
	e string
}

// rawState is what the state holds for a cell: whether it is stored, its
// score index entry and its tombstone index entry.
type rawState struct {
	exists bool
	live   bool // has a score index entry (sorted sets)
	score  float64
	tomb   bool
}

func rawOf(t crdt.Type, c *crdt.Cell) rawState {
	if c == nil {
		return rawState{}
	}
	r := rawState{exists: true, tomb: c.HasTombstones()}
	if t == crdt.TypeZSet {
		r.score, r.live = cellScore(c)
	}
	return r
}

// cellState is an element's cell during an apply batch.
type cellState struct {
	c     *crdt.Cell
	raw   rawState
	dirty bool
}

// keyElems is a key's elements during an apply batch.
type keyElems struct {
	key        []byte
	cells      map[elemID]*cellState
	pend       *pendingRecord
	pendLoaded bool
	pendDirty  bool
}

// elemBatch holds the elements an apply batch changes until it writes
// them, with the key states, in its transaction.
type elemBatch struct {
	n       *Node
	txn     *badger.Txn
	keys    map[string]*keyElems
	dirty   int   // cells to write
	tombs   int64 // change of the tombstone index size
	pending [][]byte
}

func (n *Node) newElemBatch(txn *badger.Txn) *elemBatch {
	return &elemBatch{n: n, txn: txn, keys: make(map[string]*keyElems)}
}

// entries estimates how many entries the batch will write.
func (b *elemBatch) entries() int { return 3 * b.dirty }

func (b *elemBatch) keyState(key []byte) *keyElems {
	ks := b.keys[string(key)]
	if ks == nil {
		ks = &keyElems{key: key, cells: make(map[elemID]*cellState)}
		b.keys[string(key)] = ks
	}
	return ks
}

func (b *elemBatch) loadPending(ks *keyElems) error {
	if ks.pendLoaded {
		return nil
	}
	r, err := readPending(b.txn, ks.key)
	if err != nil {
		return err
	}
	ks.pend, ks.pendLoaded = r, true
	return nil
}

// cell returns an element's cell with the key's pending resets applied.
func (b *elemBatch) cell(ks *keyElems, t crdt.Type, elem []byte) (*cellState, error) {
	id := elemID{t, string(elem)}
	if cs, ok := ks.cells[id]; ok {
		return cs, nil
	}
	if err := b.loadPending(ks); err != nil {
		return nil, err
	}
	c, err := readCell(b.txn, ks.key, t, elem)
	if err != nil {
		return nil, err
	}
	cs := &cellState{raw: rawOf(t, c), c: c}
	if c == nil {
		cs.c = &crdt.Cell{}
	}
	applyResets(pendingResets(ks.pend), t, cs.c, elem)
	ks.cells[id] = cs
	return cs, nil
}

func (b *elemBatch) markDirty(cs *cellState) {
	if !cs.dirty {
		cs.dirty = true
		b.dirty++
	}
}

// apply folds the element ops and collection removals of ev, which
// l.k.Apply admitted, into the elements, keeps l.k's element counts, and
// collects garbage Key.Apply left for the caller.
func (b *elemBatch) apply(l *loaded, ev *crdt.Event, stable crdt.Clock) error {
	var ks *keyElems
	elems, list := false, false
	for i := range ev.Ops {
		op := &ev.Ops[i]
		types := removedTypes(op)
		t := op.ElemType()
		if t == crdt.TypeList {
			list = true // the list batch applies it, then collects
			continue
		}
		if t == crdt.TypeNone && types == nil {
			continue
		}
		if ks == nil {
			ks = b.keyState(l.key)
		}
		if t != crdt.TypeNone {
			elems = true
			cs, err := b.cell(ks, t, op.Elem)
			if err != nil {
				return err
			}
			before, after := l.k.ApplyElem(cs.c, ev, op, stable)
			l.k.AddLen(t, liveDelta(before, after))
			b.markDirty(cs)
			continue
		}
		if err := b.reset(ks, l, crdt.NewReset(ev, op, types...), stable); err != nil {
			return err
		}
	}
	if elems && !list {
		l.k.GC(stable)
	}
	return nil
}

// removedTypes returns the collection types a key-level removal resets.
func removedTypes(op *crdt.Op) []crdt.Type {
	switch {
	case op.Kind == crdt.OpDelete:
		return collectionTypes
	case op.Kind == crdt.OpDeleteType && isCollection(op.Type):
		return []crdt.Type{op.Type}
	}
	return nil
}

// reset applies a removal of whole collections to every element of the
// key and sets the live counts. Up to eagerResetMax live elements of a type
// are rewritten now; beyond that only the elements that stay live are, and
// the removal is kept as a pending reset (see elements.go).
func (b *elemBatch) reset(ks *keyElems, l *loaded, r crdt.Reset, stable crdt.Clock) error {
	if err := b.loadPending(ks); err != nil {
		return err
	}
	lazy := false
	for _, t := range r.Types {
		if l.k.Len(t) > b.n.eagerResetMax() {
			lazy = true
		}
	}
	for _, t := range r.Types {
		if l.k.Len(t) == 0 && len(r.Elems) == 0 {
			continue // every element is dead and stays so
		}
		var live int64
		for id, cs := range ks.cells {
			if id.t != t {
				continue
			}
			r.ApplyTo(t, cs.c, []byte(id.e))
			cs.c.GC(stable)
			b.markDirty(cs)
			if cs.c.Live() {
				live++
			}
		}
		prefix := elemTypePrefix(ks.key, t)
		it := b.txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			elem := it.Item().Key()[len(prefix):]
			if _, ok := ks.cells[elemID{t, string(elem)}]; ok {
				continue // applied above
			}
			c, err := decodeCellItem(it.Item(), ks.key)
			if err != nil {
				it.Close()
				return err
			}
			raw := rawOf(t, c)
			applyResets(pendingResets(ks.pend), t, c, elem)
			r.ApplyTo(t, c, elem)
			if c.Live() {
				live++
			} else if lazy {
				continue // the pending reset covers it
			}
			c.GC(stable)
			cs := &cellState{c: c, raw: raw}
			ks.cells[elemID{t, string(elem)}] = cs
			b.markDirty(cs)
		}
		it.Close()
		if !lazy && crdt.HasCounters(t) {
			// Baselines for increments the removal saw that have not
			// arrived here, so they meet their reset.
			for _, es := range r.Elems {
				if _, ok := ks.cells[elemID{t, string(es.Elem)}]; ok {
					continue // stored or written in this batch: done above
				}
				cs, err := b.cell(ks, t, es.Elem)
				if err != nil {
					return err
				}
				r.ApplyTo(t, cs.c, es.Elem)
				cs.c.GC(stable)
				b.markDirty(cs)
				if cs.c.Live() {
					live++
				}
			}
		}
		l.k.AddLen(t, live-l.k.Len(t))
	}
	if lazy {
		if ks.pend == nil {
			ks.pend = &pendingRecord{}
		}
		ks.pend.resets = append(ks.pend.resets, r)
		ks.pend.phase, ks.pend.cursor = 0, nil // every element again
		ks.pendDirty = true
		b.pending = append(b.pending, ks.key)
	}
	return nil
}

// flush writes the batch's cells, their index entries, the pending resets
// and the tombstone index entries of the batch's keys and cells.
func (b *elemBatch) flush(keys map[string]*loaded) error {
	for _, ks := range b.keys {
		for id, cs := range ks.cells {
			if !cs.dirty {
				continue
			}
			if err := b.writeCell(ks.key, id.t, []byte(id.e), cs); err != nil {
				return err
			}
		}
		if ks.pendDirty {
			var err error
			if ks.pend == nil || len(ks.pend.resets) == 0 {
				err = b.txn.Delete(pendingKey(ks.key))
			} else {
				err = b.txn.Set(pendingKey(ks.key), ks.pend.marshal())
			}
			if err != nil {
				return err
			}
		}
	}
	for _, l := range keys {
		if !l.dirty {
			continue
		}
		tomb := !l.k.Empty() && l.k.HasTombstones()
		if err := b.setTomb(l.key, 0, nil, l.oldTomb, tomb); err != nil {
			return err
		}
		l.oldTomb = tomb
	}
	return nil
}

// writeCell stores cs (or deletes it when empty) with its index entries.
func (b *elemBatch) writeCell(key []byte, t crdt.Type, elem []byte, cs *cellState) error {
	return writeCell(b.txn, key, t, elem, cs.c, &cs.raw, &b.tombs)
}

func (b *elemBatch) setTomb(key []byte, t crdt.Type, elem []byte, old, now bool) error {
	return setTomb(b.txn, key, t, elem, old, now, &b.tombs)
}

// writeCell stores c as element elem's cell, or deletes the cell when c is
// empty, and moves its score and tombstone index entries from raw (what
// was stored) to c. raw becomes what is stored now; tombs counts the
// tombstone index entries added.
func writeCell(txn *badger.Txn, key []byte, t crdt.Type, elem []byte, c *crdt.Cell, raw *rawState, tombs *int64) error {
	ek := elemKey(key, t, elem)
	if c.Empty() {
		if raw.exists {
			if err := txn.Delete(ek); err != nil {
				return err
			}
		}
	} else if err := txn.Set(ek, crdt.MarshalCell(nil, c)); err != nil {
		return err
	}
	now := rawOf(t, c)
	if c.Empty() {
		now = rawState{}
	}
	if t == crdt.TypeZSet {
		moved := raw.live != now.live || (now.live && !sameScore(raw.score, now.score))
		if raw.live && moved {
			if err := txn.Delete(scoreKey(key, raw.score, elem)); err != nil {
				return err
			}
		}
		if now.live && moved {
			if err := txn.Set(scoreKey(key, now.score, elem), nil); err != nil {
				return err
			}
		}
	}
	if err := setTomb(txn, key, t, elem, raw.tomb, now.tomb, tombs); err != nil {
		return err
	}
	*raw = now
	return nil
}

func setTomb(txn *badger.Txn, key []byte, t crdt.Type, elem []byte, old, now bool, tombs *int64) error {
	switch {
	case now && !old:
		*tombs++
		return txn.Set(tombKey(key, t, elem), nil)
	case old && !now:
		*tombs--
		return txn.Delete(tombKey(key, t, elem))
	}
	return nil
}
