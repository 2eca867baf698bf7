package crdt

import (
	"encoding/binary"
	"sort"
)

// Lists are sequence CRDTs: see LISTS.md for the design. In short, every
// element is a node of a tree: the left or the right child of an anchor
// element (or a right child of the head). The list is the tree's in-order
// walk: an element's left children (and their subtrees) come before it, its
// right children after it. Children on one side are ordered by a counter,
// then by element id (smaller instance ID first): right children with the
// greatest counter first, left children with the greatest counter last, so
// an insert made after seeing its siblings (counter 1 + their greatest) is
// nearest its anchor. An origin inserting between visible neighbours L and
// R makes the element a right child of L when L has no right child yet, else
// a left child of R; so RPUSH a b c chains right children and LPUSH a; LPUSH
// b chains left children, and a region's run of inserts at one place stays
// contiguous under concurrent runs (no interleaving, in both directions).
//
// The materializer stores a list in a KV (one per list key) and folds
// events into it with ApplyList; the server reads it with OpenList and plans
// the ops of a write with the List's Append* methods.

// ListOptions are what ApplyList needs from the materializer.
type ListOptions struct {
	// Stable is the local stable clock of the key's partition, as for
	// Key.Apply; it bounds how long element value tombstones are kept. nil
	// keeps them.
	Stable Clock
	// Regions is the number of regions of the deployment, this one
	// included. A removed element is collected once every region is known
	// (from its own events on the key) to have seen the removal, and every
	// event any region made before seeing it has been applied here. 0 keeps
	// every removed element.
	Regions int

	leafMax, kidsMax int // index node sizes (tests)
}

// Element flags.
const (
	eInserted = 1 << iota // the insert arrived: anchor, side, counter, slot set
	eIndexed              // placed in the list (its anchor had arrived)
	eBefore               // a left child of its anchor
	eRemoved              // removed for good
	eKept                 // removal stable, kept as the parent of several children
)

// elemRec is an element's structure. An element keeps the place of the
// sibling it replaced when a removed parent with one child is collected:
// slot and counter are then that parent's.
type elemRec struct {
	flags   uint8
	anchor  ElemID
	counter uint64
	slot    ElemID
	gone    Clock // removal witness: collectable once every region had seen it
	dirty   bool
	del     bool
}

func (e *elemRec) has(f uint8) bool { return e.flags&f != 0 }
func (e *elemRec) live() bool       { return e.has(eIndexed) && !e.has(eRemoved) }

func (e *elemRec) marshal() []byte {
	b := []byte{e.flags}
	if e.has(eInserted) {
		b = putID(b, e.anchor)
		b = binary.AppendUvarint(b, e.counter)
		b = putID(b, e.slot)
	}
	if e.has(eRemoved) {
		b = putClock(b, e.gone)
	}
	return b
}

func unmarshalElem(b []byte) (*elemRec, bool) {
	d := decoder{b: b}
	e := &elemRec{flags: d.byte()}
	if e.has(eInserted) {
		e.anchor = d.id()
		e.counter = d.uvarint()
		e.slot = d.id()
	}
	if e.has(eRemoved) {
		e.gone = d.clock()
	}
	return e, d.err == nil && len(d.b) == 0 && e.flags < eKept<<1
}

// kidEntry is one child in its anchor's children on one side.
type kidEntry struct {
	counter     uint64
	slot, child ElemID
}

type kidsRec struct {
	list  []kidEntry
	dirty bool
}

type sideKey struct {
	id     ElemID
	before bool
}

// sibBefore reports whether a comes before b among children on one side.
func sibBefore(before bool, a, b kidEntry) bool {
	if a.counter != b.counter {
		return (a.counter < b.counter) == before
	}
	return a.slot.Less(b.slot)
}

type valRec struct {
	c     Cell
	dirty bool
}

type idsRec struct {
	ids   []ElemID
	dirty bool
}

// gcQueue is a FIFO of removed elements waiting until every region is known
// to have seen their removal, by the origin whose progress they wait for.
type gcQueue struct {
	origin     ReplicaID
	head, tail uint64
	headSeq    uint64 // the head entry's wait: the origin's sequence
}

// listMeta is a list's metadata record.
type listMeta struct {
	seq     seqMeta
	loose   int64    // elements known but not placed (anchor or insert not arrived)
	waiting []ElemID // live inserts waiting for their anchor
	rows    []regionRow
	queues  []gcQueue
}

// regionRow is what one region is known to have seen of the key: the
// contexts of its events applied here, and their own dots.
type regionRow struct {
	origin ReplicaID
	seen   Clock
}

const listVersion = 1

func (m *listMeta) marshal() []byte {
	b := []byte{listVersion}
	b = m.seq.marshal(b)
	b = binary.AppendVarint(b, m.loose)
	b = putIDs(b, m.waiting)
	b = binary.AppendUvarint(b, uint64(len(m.rows)))
	for _, r := range m.rows {
		b = binary.AppendUvarint(b, uint64(r.origin))
		b = putClock(b, r.seen)
	}
	b = binary.AppendUvarint(b, uint64(len(m.queues)))
	for _, q := range m.queues {
		b = binary.AppendUvarint(b, uint64(q.origin))
		b = binary.AppendUvarint(b, q.head)
		b = binary.AppendUvarint(b, q.tail)
		b = binary.AppendUvarint(b, q.headSeq)
	}
	return b
}

func unmarshalListMeta(b []byte) (listMeta, bool) {
	d := decoder{b: b}
	var m listMeta
	if d.byte() != listVersion {
		return m, false
	}
	m.seq = d.seqMeta()
	m.loose = d.varint()
	m.waiting = d.ids()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		o := d.uvarint()
		m.rows = append(m.rows, regionRow{origin: ReplicaID(o), seen: d.clock()})
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		o := d.uvarint()
		m.queues = append(m.queues, gcQueue{origin: ReplicaID(o), head: d.uvarint(), tail: d.uvarint(), headSeq: d.uvarint()})
	}
	return m, d.err == nil && len(d.b) == 0
}

// List is a handle on one list stored in a KV, for reads and for planning
// the ops of a write; events are applied with ApplyList. A handle reflects
// the KV when it was opened (open a new one after applying events). A List
// is used by one goroutine.
type List struct {
	st     kvErr
	meta   listMeta
	idx    *seqIndex
	dirty  bool // meta changed (besides the index's part)
	elems  map[ElemID]*elemRec
	kids   map[sideKey]*kidsRec
	vals   map[ElemID]*valRec
	waits  map[ElemID]*idsRec
	stable Clock
}

// OpenList returns a handle on the list stored in kv (empty if there is
// none).
func OpenList(kv KV) (*List, error) {
	l := &List{
		st:    kvErr{kv: kv},
		elems: map[ElemID]*elemRec{},
		kids:  map[sideKey]*kidsRec{},
		vals:  map[ElemID]*valRec{},
		waits: map[ElemID]*idsRec{},
	}
	if b, ok := l.st.get(metaKey); ok {
		m, ok := unmarshalListMeta(b)
		if !ok {
			l.st.corrupt("meta", metaKey)
		}
		l.meta = m
	}
	if l.st.err != nil {
		return nil, l.st.err
	}
	l.idx = newSeqIndex(&l.st, l.meta.seq)
	return l, nil
}

// flush writes the handle's changes to its KV. When the list holds nothing
// any more (no element, tombstone or pending op) its records are all gone.
func (l *List) flush() error {
	for id, e := range l.elems {
		switch {
		case !e.dirty:
		case e.del:
			l.st.del(idKey(tabElem, id))
		default:
			l.st.set(idKey(tabElem, id), e.marshal())
		}
		e.dirty = false
	}
	for k, r := range l.kids {
		if r.dirty {
			if len(r.list) == 0 {
				l.st.del(kidsKey(k.id, k.before))
			} else {
				l.st.set(kidsKey(k.id, k.before), marshalKids(r.list))
			}
			r.dirty = false
		}
	}
	for id, v := range l.vals {
		if v.dirty {
			if v.c.Empty() {
				l.st.del(idKey(tabValue, id))
			} else {
				l.st.set(idKey(tabValue, id), MarshalCell(nil, &v.c))
			}
			v.dirty = false
		}
	}
	for id, w := range l.waits {
		if w.dirty {
			if len(w.ids) == 0 {
				l.st.del(idKey(tabWait, id))
			} else {
				l.st.set(idKey(tabWait, id), putIDs(nil, w.ids))
			}
			w.dirty = false
		}
	}
	l.idx.flush()
	if l.dirty || l.idx.metaDirty {
		l.meta.seq = l.idx.m
		if l.meta.seq.total == 0 && l.meta.loose == 0 {
			l.st.del(metaKey)
		} else {
			l.st.set(metaKey, l.meta.marshal())
		}
		l.dirty, l.idx.metaDirty = false, false
	}
	return l.st.err
}

func marshalKids(ks []kidEntry) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ks)))
	for _, k := range ks {
		b = binary.AppendUvarint(b, k.counter)
		b = putID(b, k.slot)
		b = putID(b, k.child)
	}
	return b
}

func (l *List) elem(id ElemID) *elemRec {
	if e, ok := l.elems[id]; ok {
		if e.del {
			return nil
		}
		return e
	}
	k := idKey(tabElem, id)
	b, ok := l.st.get(k)
	if !ok {
		return nil
	}
	e, ok := unmarshalElem(b)
	if !ok {
		l.st.corrupt("element", k)
		return nil
	}
	l.elems[id] = e
	return e
}

// newElem records an element not placed yet.
func (l *List) newElem(id ElemID) *elemRec {
	e := &elemRec{dirty: true}
	l.elems[id] = e
	l.meta.loose++
	l.dirty = true
	return e
}

func (l *List) children(id ElemID, before bool) *kidsRec {
	sk := sideKey{id, before}
	if r, ok := l.kids[sk]; ok {
		return r
	}
	r := &kidsRec{}
	k := kidsKey(id, before)
	if b, ok := l.st.get(k); ok {
		d := decoder{b: b}
		for n := d.count(); n > 0 && d.err == nil; n-- {
			r.list = append(r.list, kidEntry{counter: d.uvarint(), slot: d.id(), child: d.id()})
		}
		if d.err != nil || len(d.b) != 0 {
			l.st.corrupt("children", k)
		}
	}
	l.kids[sk] = r
	return r
}

func (l *List) val(id ElemID) *valRec {
	if v, ok := l.vals[id]; ok {
		return v
	}
	v := &valRec{}
	k := idKey(tabValue, id)
	if b, ok := l.st.get(k); ok {
		c, ok := unmarshalListValue(b)
		if !ok {
			l.st.corrupt("value", k)
		}
		v.c = c
	}
	l.vals[id] = v
	return v
}

// unmarshalListValue decodes an element value: a Cell with register
// versions only (a list value has no counter).
func unmarshalListValue(b []byte) (Cell, bool) {
	c, err := UnmarshalCell(b)
	if err != nil || len(c.Shares) > 0 || len(c.Bases) > 0 {
		return Cell{}, false
	}
	return c, true
}

func (l *List) dropVal(id ElemID) { l.vals[id] = &valRec{dirty: true} }

func (l *List) waiters(id ElemID) *idsRec {
	if w, ok := l.waits[id]; ok {
		return w
	}
	w := &idsRec{}
	k := idKey(tabWait, id)
	if b, ok := l.st.get(k); ok {
		d := decoder{b: b}
		w.ids = d.ids()
		if d.err != nil || len(d.b) != 0 {
			l.st.corrupt("waiters", k)
		}
	}
	l.waits[id] = w
	return w
}

// IsListOp reports whether ApplyList has something to do with op: a list
// element op, or a removal of the whole key or of its list.
func IsListOp(op *Op) bool {
	switch op.Kind {
	case OpLInsert, OpLSet, OpLRem, OpDelete:
		return true
	case OpDeleteType:
		return op.Type == TypeList
	}
	return false
}

// ApplyList folds the list part of ev, which k.Apply admitted (returned
// true), into the list stored in kv: its list element ops and, for
// OpDelete and OpDeleteType of TypeList, the observed removal of every
// element. It keeps k's list length (Key.Len) and type-rule records, and
// then collects the tombstones opt allows. Call it for every admitted event
// with an op IsListOp reports, before Key.GC (see Key.Apply); with a KV
// error or corrupt state it returns the error and the caller discards the
// KV's writes.
func ApplyList(kv KV, k *Key, ev *Event, opt ListOptions) error {
	l, err := OpenList(kv)
	if err != nil {
		return err
	}
	list := false
	for i := range ev.Ops {
		list = list || ev.Ops[i].ElemType() == TypeList
	}
	if !list && l.meta.seq.total == 0 && l.meta.loose == 0 {
		return nil // a key removal and no list here
	}
	if opt.leafMax > 0 {
		l.idx.leafMax, l.idx.kidsMax = opt.leafMax, opt.kidsMax
	}
	l.stable = opt.Stable
	l.noteRow(ev)
	for i := range ev.Ops {
		op := &ev.Ops[i]
		switch op.Kind {
		case OpLInsert:
			l.applyInsert(k, ev, op)
		case OpLSet:
			l.applySet(k, ev, op)
		case OpLRem:
			if id, ok := opElem(op.Elem, ev.Dot); ok {
				e := l.elem(id)
				if e == nil {
					e = l.newElem(id)
				}
				l.remove(k, id, e, Clock{ev.Dot})
			}
		case OpDelete:
			l.removeObserved(k, ev)
		case OpDeleteType:
			if op.Type == TypeList {
				l.removeObserved(k, ev)
			}
		}
		if l.st.err != nil {
			return l.st.err
		}
	}
	l.collect(opt.Regions)
	return l.flush()
}

// opElem decodes an element reference of an op of the event at d.
func opElem(b []byte, d Dot) (ElemID, bool) {
	id, err := ParseElemID(b)
	if err != nil || id.IsHead() {
		return ElemID{}, false
	}
	return id.resolve(d), true
}

// noteRow records what ev's origin had seen when it made ev. Its events on
// the key arrive in order, so once a row covers an event, every event the
// region made before seeing it has been applied here.
func (l *List) noteRow(ev *Event) {
	o := ev.Dot.Origin
	i := sort.Search(len(l.meta.rows), func(i int) bool { return l.meta.rows[i].origin >= o })
	if i == len(l.meta.rows) || l.meta.rows[i].origin != o {
		l.meta.rows = append(l.meta.rows, regionRow{})
		copy(l.meta.rows[i+1:], l.meta.rows[i:])
		l.meta.rows[i] = regionRow{origin: o}
	}
	r := &l.meta.rows[i]
	r.seen = r.seen.Merge(ev.Observed).With(o, ev.Dot.Seq)
	l.dirty = true
}

// stableClock returns what every region is known to have seen, nil unless
// every region has a row.
func (l *List) stableClock(regions int) Clock {
	rows := l.meta.rows
	if regions <= 0 || len(rows) < regions {
		return nil
	}
	var cs Clock
	for _, d := range rows[0].seen {
		s := d.Seq
		for _, r := range rows[1:] {
			s = min(s, r.seen.Get(d.Origin))
		}
		cs = cs.With(d.Origin, s)
	}
	return cs
}

func (l *List) applyInsert(k *Key, ev *Event, op *Op) {
	id, ok := opElem(op.Elem, ev.Dot)
	if !ok || id.Dot() != ev.Dot {
		return // not an element of this event
	}
	var anchor ElemID
	if len(op.Anchor) > 0 {
		if anchor, ok = opElem(op.Anchor, ev.Dot); !ok {
			return
		}
		if anchor.Dot() == ev.Dot && anchor.Idx >= id.Idx {
			return // anchored to itself or to a later insert
		}
	}
	e := l.elem(id)
	if e != nil && e.has(eInserted) {
		return
	}
	if e == nil {
		e = l.newElem(id)
	}
	e.flags |= eInserted
	if op.Before && !anchor.IsHead() {
		e.flags |= eBefore
	}
	e.anchor, e.counter, e.slot, e.dirty = anchor, op.Counter, id, true
	k.NoteWrite(TypeList, ev)
	if !e.has(eRemoved) && k.Dead(TypeList, ev.Dot) {
		e.flags |= eRemoved
		e.gone = k.VV.Clone() // the covering removal is among what was applied
	}
	if e.has(eRemoved) {
		l.dropVal(id)
	} else {
		v := l.val(id)
		if !v.c.Tomb.Covers(ev.Dot) {
			v.c.Regs = addReg(v.c.Regs, Reg{Dot: ev.Dot, HLC: ev.HLC, Value: op.Value})
		}
		v.c.GC(l.stable)
		v.dirty = true
	}
	if !anchor.IsHead() {
		if a := l.elem(anchor); a == nil || !a.has(eIndexed) {
			w := l.waiters(anchor)
			w.ids = append(w.ids, id)
			w.dirty = true
			if !e.has(eRemoved) {
				l.meta.waiting = append(l.meta.waiting, id)
				l.dirty = true
			}
			return
		}
	}
	l.place(k, id)
}

func (l *List) applySet(k *Key, ev *Event, op *Op) {
	id, ok := opElem(op.Elem, ev.Dot)
	if !ok {
		return
	}
	k.NoteWrite(TypeList, ev)
	e := l.elem(id)
	if e == nil {
		e = l.newElem(id)
	}
	if e.has(eRemoved) {
		return // removal wins
	}
	v := l.val(id)
	v.c.reset(ev.Dot.Origin, ev.Observed, nil)
	v.c.Tomb = v.c.Tomb.Merge(ev.Observed)
	if !k.Dead(TypeList, ev.Dot) && !v.c.Tomb.Covers(ev.Dot) {
		v.c.Regs = addReg(v.c.Regs, Reg{Dot: ev.Dot, HLC: ev.HLC, Value: op.Value})
	}
	v.c.GC(l.stable)
	v.dirty = true
}

// remove removes element id for good, witness being a clock that covers a
// removal of it.
func (l *List) remove(k *Key, id ElemID, e *elemRec, witness Clock) {
	if e.has(eRemoved) {
		return
	}
	live := e.live()
	e.flags |= eRemoved
	e.gone = witness
	e.dirty = true
	l.dropVal(id)
	if e.has(eIndexed) {
		if live {
			l.idx.SetLive(id, false)
			k.AddLen(TypeList, -1)
		}
		l.enqueue(id, e)
		return
	}
	l.unwait(id)
}

func (l *List) unwait(id ElemID) {
	for i, w := range l.meta.waiting {
		if w == id {
			l.meta.waiting = append(l.meta.waiting[:i], l.meta.waiting[i+1:]...)
			l.dirty = true
			return
		}
	}
}

// removeObserved applies a removal of the whole list by ev: the elements
// whose insert ev's origin had seen go.
func (l *List) removeObserved(k *Key, ev *Event) {
	var gone []ElemID
	l.idx.Scan(0, false, func(id ElemID) bool {
		if ev.Observed.Covers(id.Dot()) {
			gone = append(gone, id)
		}
		return true
	})
	for _, id := range l.meta.waiting {
		if ev.Observed.Covers(id.Dot()) {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		if e := l.elem(id); e != nil {
			l.remove(k, id, e, Clock{ev.Dot})
		}
	}
}

// place puts element id, whose anchor is placed, into the list, then the
// inserts that were waiting for it.
func (l *List) place(k *Key, id ElemID) {
	work := []ElemID{id}
	for len(work) > 0 && l.st.err == nil {
		id := work[len(work)-1]
		work = work[:len(work)-1]
		e := l.elem(id)
		if e == nil || e.has(eIndexed) {
			continue
		}
		l.placeOne(id, e)
		e.flags |= eIndexed
		e.dirty = true
		l.meta.loose--
		l.dirty = true
		if e.has(eRemoved) {
			l.enqueue(id, e)
		} else {
			k.AddLen(TypeList, 1)
			l.unwait(id)
		}
		if l.meta.loose > 0 {
			w := l.waiters(id)
			work = append(work, w.ids...)
			if len(w.ids) > 0 {
				w.ids, w.dirty = nil, true
			}
		}
	}
}

// placeOne inserts id into its anchor's children and the index at the spot
// the in-order walk gives it.
func (l *List) placeOne(id ElemID, e *elemRec) {
	before := e.has(eBefore)
	sibs := l.children(e.anchor, before)
	me := kidEntry{counter: e.counter, slot: e.slot, child: id}
	j := sort.Search(len(sibs.list), func(i int) bool { return sibBefore(before, me, sibs.list[i]) })
	hasPrev, hasNext := j > 0, j < len(sibs.list)
	var ref ElemID
	var refBefore bool
	switch {
	case !before && !hasPrev:
		ref = e.anchor // right after the anchor (the front for the head)
	case before && !hasNext:
		ref, refBefore = e.anchor, true // right before the anchor
	default:
		var next, prev *ElemID
		if hasNext {
			next = &sibs.list[j].child
		}
		if hasPrev {
			prev = &sibs.list[j-1].child
		}
		ref, refBefore = l.boundary(next, prev)
	}
	l.idx.insert(ref, refBefore, id, !e.has(eRemoved))
	sibs.list = append(sibs.list, kidEntry{})
	copy(sibs.list[j+1:], sibs.list[j:])
	sibs.list[j] = me
	sibs.dirty = true
}

// boundary returns where an element goes that follows the subtree of prev
// and precedes that of next (either may be nil): right before next's first
// descendant or right after prev's last one, walking both in turn so the
// shorter walk decides. Those walks only meet elements inserted
// concurrently with the one placed.
func (l *List) boundary(next, prev *ElemID) (ElemID, bool) {
	n, p := next, prev
	steps := int64(0)
	var nv, pv ElemID
	if n != nil {
		nv = *n
	}
	if p != nil {
		pv = *p
	}
	for l.st.err == nil {
		if steps++; steps > l.idx.m.total+1 {
			l.st.corrupt("children", kidsKey(nv, true))
			break
		}
		if n != nil {
			ks := l.children(nv, true)
			if len(ks.list) == 0 {
				return nv, true
			}
			nv = ks.list[0].child
		}
		if p != nil {
			ks := l.children(pv, false)
			if len(ks.list) == 0 {
				return pv, false
			}
			pv = ks.list[len(ks.list)-1].child
		}
	}
	return ElemID{}, false
}

// enqueue queues removed, placed element id for collection.
func (l *List) enqueue(id ElemID, e *elemRec) {
	if len(e.gone) == 0 {
		return
	}
	l.queueUnder(id, e.gone[0])
}

func (l *List) queueUnder(id ElemID, w Dot) {
	i := 0
	for i < len(l.meta.queues) && l.meta.queues[i].origin != w.Origin {
		i++
	}
	if i == len(l.meta.queues) {
		l.meta.queues = append(l.meta.queues, gcQueue{origin: w.Origin, head: 1, tail: 1})
	}
	q := &l.meta.queues[i]
	if q.head == q.tail {
		q.headSeq = w.Seq
	}
	v := binary.AppendUvarint(id.appendTo(nil), w.Seq)
	l.st.set(gcKey(q.origin, q.tail), v)
	q.tail++
	l.dirty = true
}

// collect reaps the removed elements whose removal every region has seen.
func (l *List) collect(regions int) {
	cs := l.stableClock(regions)
	if cs == nil {
		return
	}
	for qi := 0; qi < len(l.meta.queues) && l.st.err == nil; qi++ {
		for l.st.err == nil {
			q := &l.meta.queues[qi]
			if q.head == q.tail || q.headSeq > cs.Get(q.origin) {
				break
			}
			o := q.origin
			k := gcKey(o, q.head)
			b, ok := l.st.get(k)
			if !ok {
				l.st.corrupt("collection queue", k)
				return
			}
			id, err := ParseElemID(b[:min(len(b), ElemIDLen)])
			if err != nil {
				l.st.corrupt("collection queue", k)
				return
			}
			l.st.del(k)
			q.head++
			if q.head < q.tail {
				nb, ok := l.st.get(gcKey(o, q.head))
				if !ok || len(nb) <= ElemIDLen {
					l.st.corrupt("collection queue", gcKey(o, q.head))
					return
				}
				s, n := binary.Uvarint(nb[ElemIDLen:])
				if n <= 0 {
					l.st.corrupt("collection queue", gcKey(o, q.head))
					return
				}
				q.headSeq = s
			}
			l.dirty = true
			e := l.elem(id)
			if e == nil || !e.has(eRemoved) || !e.has(eIndexed) || e.has(eKept) {
				continue
			}
			if w, ok := uncovered(e.gone, cs); ok {
				l.queueUnder(id, w) // seen by all for o, not yet for w.Origin
				continue
			}
			l.reap(id, e)
		}
	}
	l.dropEmptyQueues()
}

func (l *List) dropEmptyQueues() {
	out := l.meta.queues[:0]
	for _, q := range l.meta.queues {
		if q.head != q.tail {
			out = append(out, q)
		}
	}
	if len(out) != len(l.meta.queues) {
		l.dirty = true
	}
	l.meta.queues = out
}

// uncovered returns an entry of w that cs does not cover.
func uncovered(w, cs Clock) (Dot, bool) {
	for _, d := range w {
		if !cs.Covers(d) {
			return d, true
		}
	}
	return Dot{}, false
}

// reap collects removed element id, whose removal every region has seen:
// no insert can name it as its anchor any more, and every insert that did
// has arrived. Without children it goes; with one child, the child takes
// its place among its siblings (same slot and counter, so the order does
// not change for any later insert); with more it stays, marked kept, until
// its children are down to one.
func (l *List) reap(id ElemID, e *elemRec) {
	for l.st.err == nil {
		lk, rk := l.children(id, true), l.children(id, false)
		n := len(lk.list) + len(rk.list)
		if n > 1 {
			e.flags |= eKept
			e.dirty = true
			return
		}
		sibs := l.children(e.anchor, e.has(eBefore))
		i := -1
		for j, s := range sibs.list {
			if s.child == id {
				i = j
				break
			}
		}
		if i < 0 {
			l.st.corrupt("children", kidsKey(e.anchor, e.has(eBefore)))
			return
		}
		l.idx.Remove(id)
		l.elems[id] = &elemRec{del: true, dirty: true}
		sibs.dirty = true
		if n == 1 {
			only := lk
			if len(rk.list) == 1 {
				only = rk
			}
			c := only.list[0].child
			only.list, only.dirty = nil, true
			sibs.list[i].child = c
			ce := l.elem(c)
			if ce == nil {
				l.st.corrupt("element", idKey(tabElem, c))
				return
			}
			ce.anchor, ce.counter, ce.slot = e.anchor, e.counter, e.slot
			ce.flags = ce.flags&^eBefore | e.flags&eBefore
			ce.dirty = true
			return
		}
		sibs.list = append(sibs.list[:i], sibs.list[i+1:]...)
		if e.anchor.IsHead() {
			return
		}
		// The anchor lost a child: collect it if it was kept for them.
		id = e.anchor
		if e = l.elem(id); e == nil || !e.has(eKept) {
			return
		}
		e.flags &^= eKept
	}
}

// Len returns the number of elements.
func (l *List) Len() int64 { return l.idx.Len() }

// Tombstones returns the number of removed elements kept for anchoring.
func (l *List) Tombstones() int64 { return l.idx.m.total - l.idx.m.live }

// Empty reports whether the list has no records at all: no element,
// tombstone or op waiting for its element. The materializer must not
// forget a list key's state (its Key) while the list is not empty.
func (l *List) Empty() bool { return l.idx.m.total == 0 && l.meta.loose == 0 }

// Value returns element id's value, false if it is not in the list.
func (l *List) Value(id ElemID) ([]byte, bool, error) {
	e := l.elem(id)
	if e == nil || !e.live() {
		return nil, false, l.st.err
	}
	v, ok := l.val(id).c.Value()
	return v, ok, l.st.err
}

// At returns the element at index i and its value, false unless 0 <= i <
// Len.
func (l *List) At(i int64) (ElemID, []byte, bool, error) {
	id, ok := l.idx.At(i)
	if !ok {
		return ElemID{}, nil, false, l.st.err
	}
	v, _ := l.val(id).c.Value() // live: the index says so
	return id, v, l.st.err == nil, l.st.err
}

// Index returns element id's index, false if it is not in the list.
func (l *List) Index(id ElemID) (int64, bool, error) {
	if e := l.elem(id); e == nil || !e.live() {
		return 0, false, l.st.err
	}
	r, ok := l.idx.Rank(id)
	return r, ok, l.st.err
}

// First returns the first element, false if the list is empty.
func (l *List) First() (ElemID, bool, error) {
	id, ok := l.idx.First()
	return id, ok, l.st.err
}

// Last returns the last element, false if the list is empty.
func (l *List) Last() (ElemID, bool, error) {
	id, ok := l.idx.Last()
	return id, ok, l.st.err
}

// Range calls fn with the elements from index i (0 <= i < Len) on, toward
// the tail (toward the head when reverse), until fn returns false.
func (l *List) Range(i int64, reverse bool, fn func(id ElemID, value []byte) bool) error {
	l.idx.Scan(i, reverse, func(id ElemID) bool {
		k := idKey(tabValue, id)
		b, ok := l.st.get(k)
		if !ok {
			l.st.corrupt("value", k)
			return false
		}
		c, ok := unmarshalListValue(b)
		if !ok {
			l.st.corrupt("value", k)
			return false
		}
		v, _ := c.Value()
		return fn(id, v)
	})
	return l.st.err
}

// The planning of writes. Each Append* method appends to ops the effects of
// a write as the origin sees the list now; new elements are named relative
// to the event (ElemID{Idx: n}), numbered after the inserts already in
// ops, so one event may carry several plans (LMOVE within a list: a removal
// and an insert).

// AppendPush appends the ops of LPUSH (left) or RPUSH of values: each value
// goes to the end after the previous one, so LPUSH a b c makes the list
// start with c b a.
func (l *List) AppendPush(ops []Op, left bool, values ...[]byte) ([]Op, error) {
	if left {
		first, ok, err := l.First()
		if err != nil {
			return ops, err
		}
		var rv *ElemID
		if ok {
			rv = &first
		}
		return l.plan(ops, ElemID{}, rv, true, values), l.st.err
	}
	last, _, err := l.Last()
	if err != nil {
		return ops, err
	}
	return l.plan(ops, last, nil, false, values), l.st.err
}

// AppendInsert appends the ops that insert values at index i (0 <= i <=
// Len), in order: values[0] ends up at index i.
func (l *List) AppendInsert(ops []Op, i int64, values ...[]byte) ([]Op, error) {
	var lv ElemID
	var rv *ElemID
	if i > 0 {
		id, ok := l.idx.At(i - 1)
		if !ok {
			return ops, l.st.err
		}
		lv = id
	}
	if id, ok := l.idx.At(i); ok {
		rv = &id
	}
	return l.plan(ops, lv, rv, false, values), l.st.err
}

// AppendInsertAt appends the ops of LINSERT: values right after pivot
// (right before it unless after), in order. pivot must be in the list.
func (l *List) AppendInsertAt(ops []Op, pivot ElemID, after bool, values ...[]byte) ([]Op, error) {
	r, ok, err := l.Index(pivot)
	if err != nil || !ok {
		return ops, err
	}
	if after {
		r++
	}
	return l.AppendInsert(ops, r, values...)
}

// ListSetOp returns the op of LSET on element id.
func ListSetOp(id ElemID, value []byte) Op { return Op{Kind: OpLSet, Elem: id.Bytes(), Value: value} }

// ListRemOp returns the op that removes element id (pops, LREM, LTRIM).
func ListRemOp(id ElemID) Op { return Op{Kind: OpLRem, Elem: id.Bytes()} }

// plan appends inserts of values between visible neighbours lv (the head
// if zero) and rv (the end if nil); each next value is chained to the
// previous one: after it, or before it when backward (LPUSH).
func (l *List) plan(ops []Op, lv ElemID, rv *ElemID, backward bool, values [][]byte) []Op {
	n := nextInsertIdx(ops)
	for i, v := range values {
		var anchor ElemID
		var before bool
		var counter uint64
		if i == 0 {
			anchor, before, counter = l.between(lv, rv)
		} else {
			anchor, before, counter = ElemID{Idx: n - 1}, backward, 1
		}
		op := Op{Kind: OpLInsert, Elem: ElemID{Idx: n}.Bytes(), Before: before, Counter: counter, Value: v}
		if !anchor.IsHead() {
			op.Anchor = anchor.Bytes()
		}
		ops = append(ops, op)
		n++
	}
	return ops
}

// between returns where an element goes between visible neighbours lv and
// rv: a right child of lv when it has none (or rv is the end), else a left
// child of rv; placed first after lv or last before rv among the children
// seen (removed ones included).
func (l *List) between(lv ElemID, rv *ElemID) (anchor ElemID, before bool, counter uint64) {
	rk := l.children(lv, false)
	if rv == nil || len(rk.list) == 0 {
		return lv, false, maxCounter(rk.list) + 1
	}
	return *rv, true, maxCounter(l.children(*rv, true).list) + 1
}

func maxCounter(ks []kidEntry) uint64 {
	var m uint64
	for _, k := range ks {
		m = max(m, k.counter)
	}
	return m
}

// nextInsertIdx returns the first relative element index not used by the
// inserts in ops.
func nextInsertIdx(ops []Op) uint32 {
	n := uint32(1)
	for i := range ops {
		if ops[i].Kind != OpLInsert {
			continue
		}
		if id, err := ParseElemID(ops[i].Elem); err == nil && id.relative() && id.Idx >= n {
			n = id.Idx + 1
		}
	}
	return n
}
