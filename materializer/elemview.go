package materializer

import (
	"bytes"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// keyView is a key's state in the write path: the applied state plus the
// effects in flight and those the running Tx emitted, elements included.
//
// k is the key's crdt.Key with every effect applied (its element counts
// too). The elements are derived on demand: an element that an effect of
// the view changed is kept in cells, fully derived; any other one is read
// from the state (with its pending resets) and the view's collection
// removals (resets) are applied to it. Both stay correct while the applied
// state changes by nothing but the view's own effects being applied
// (element ops only touch elements in cells; a reset applied twice changes
// nothing more), which is the condition under which a partition keeps a
// view between writes (partition.views).
type keyView struct {
	key    []byte
	k      *crdt.Key
	cells  map[elemID]*crdt.Cell
	absent map[elemID]bool // elements read and found nowhere
	resets []crdt.Reset
	// rd reads the state: the snapshot k was read from while the Tx that
	// built the view runs (snap), otherwise the running Tx's snapshot. Nil
	// between Txs.
	rd   *elemReader
	snap *badger.Txn
	// list is the key's list with the view's effects (lists.go), over the
	// snapshot the view was read from, which it owns (nil until needed).
	list *cowKV
}

func newKeyView(key []byte, k *crdt.Key, snap *badger.Txn) *keyView {
	if k == nil {
		k = &crdt.Key{}
	}
	return &keyView{key: key, k: k, cells: make(map[elemID]*crdt.Cell), rd: &elemReader{txn: snap}, snap: snap}
}

// release ends the view's use by a Tx. The snapshot stays open when the
// view's list reads it (a key with a list keeps it for the next write);
// dropList discards it.
func (kv *keyView) release() {
	if kv.list == nil && kv.snap != nil && kv.mayHaveList() {
		kv.list = newCowKV(kv.snap, kv.key)
	}
	if kv.snap != nil && (kv.list == nil || kv.list.txn != kv.snap) {
		kv.snap.Discard()
	}
	kv.snap = nil
	kv.rd = nil
}

// apply folds ev into the view (a duplicate of an applied effect is
// skipped by the key's dedup).
func (kv *keyView) apply(ev *crdt.Event) error {
	if ev.Dot.Seq <= kv.k.VV.Get(ev.Dot.Origin) {
		return nil
	}
	list := kv.needsList(ev)
	if list {
		if _, err := kv.listKV(); err != nil {
			return err
		}
	}
	if !kv.k.Apply(ev, nil) {
		return nil
	}
	if list {
		if err := kv.applyList(ev); err != nil {
			return err
		}
	}
	for i := range ev.Ops {
		op := &ev.Ops[i]
		if t := op.ElemType(); t != crdt.TypeNone && t != crdt.TypeList {
			c, err := kv.cell(t, op.Elem)
			if err != nil {
				return err
			}
			before, after := kv.k.ApplyElem(c, ev, op, nil)
			kv.k.AddLen(t, liveDelta(before, after))
			continue
		}
		if types := removedTypes(op); types != nil {
			if err := kv.reset(crdt.NewReset(ev, op, types...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reset applies a removal of whole collections: to the derived cells now,
// to the others when they are read. It recounts the live elements, which
// reads every stored element of the types (a DEL is O(N), as in Redis).
func (kv *keyView) reset(r crdt.Reset) error {
	for _, t := range r.Types {
		if kv.k.Len(t) == 0 && len(r.Elems) == 0 {
			continue // every element is dead and stays so
		}
		var live int64
		for id, c := range kv.cells {
			if id.t != t {
				continue
			}
			if r.ApplyTo(t, c, []byte(id.e)); c.Live() {
				live++
			}
		}
		err := kv.rd.scan(kv.key, t, nil, func(elem []byte, c *crdt.Cell) bool {
			if _, ok := kv.cells[elemID{t, string(elem)}]; ok {
				return true
			}
			applyResets(kv.resets, t, c, elem)
			if r.ApplyTo(t, c, elem); c.Live() {
				live++
			}
			return true
		})
		if err != nil {
			return err
		}
		kv.k.AddLen(t, live-kv.k.Len(t))
	}
	kv.resets = append(kv.resets, r)
	kv.absent = nil // the reset may give them baselines
	return nil
}

// peek returns an element's cell in the view, nil if it has none. The
// result must not be modified. A cell read from the state stays in cells
// (derived like the others: a write reading an element and then changing
// it reads the state once).
func (kv *keyView) peek(t crdt.Type, elem []byte) (*crdt.Cell, error) {
	id := elemID{t, string(elem)}
	if c, ok := kv.cells[id]; ok {
		return c, nil
	}
	if kv.absent[id] {
		return nil, nil
	}
	c, err := kv.rd.cell(kv.key, t, elem)
	if err != nil {
		return nil, err
	}
	if c == nil {
		if !coversType(kv.resets, t) {
			if kv.absent == nil {
				kv.absent = make(map[elemID]bool)
			}
			kv.absent[id] = true
			return nil, nil
		}
		c = &crdt.Cell{}
	}
	applyResets(kv.resets, t, c, elem)
	kv.cells[id] = c
	return c, nil
}

// cell returns an element's cell for an effect to change; it stays in the
// view.
func (kv *keyView) cell(t crdt.Type, elem []byte) (*crdt.Cell, error) {
	c, err := kv.peek(t, elem)
	if err != nil || c != nil {
		return c, err
	}
	id := elemID{t, string(elem)}
	delete(kv.absent, id)
	c = &crdt.Cell{}
	kv.cells[id] = c
	return c, nil
}

func coversType(rs []crdt.Reset, t crdt.Type) bool {
	for i := range rs {
		if rs[i].Covers(t) {
			return true
		}
	}
	return false
}

// touched returns the names of the derived elements of type t after
// element after, sorted.
func (kv *keyView) touched(t crdt.Type, after []byte) []string {
	var out []string
	for id := range kv.cells {
		if id.t == t && (after == nil || id.e > string(after)) {
			out = append(out, id.e)
		}
	}
	sort.Strings(out)
	return out
}

// scan calls fn for every element of type t in the view (live or not)
// after element after, in element order, until fn returns false.
func (kv *keyView) scan(t crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	return kv.merge(t, kv.touched(t, after), false, func(f func(elem []byte, c *crdt.Cell) bool) error {
		return kv.rd.scan(kv.key, t, after, f)
	}, fn)
}

// merge calls fn for the elements of type t that walk reads from the state
// merged with touched (elements the view holds cells for, in walk order:
// ascending, or descending when reverse), each with its cell as the view
// sees it, until fn returns false.
func (kv *keyView) merge(t crdt.Type, touched []string, reverse bool, walk func(func(elem []byte, c *crdt.Cell) bool) error, fn func(elem []byte, c *crdt.Cell) bool) error {
	ahead := func(a, b string) bool { // a comes first in walk order
		if reverse {
			return a > b
		}
		return a < b
	}
	i := 0
	stopped := false
	err := walk(func(elem []byte, c *crdt.Cell) bool {
		for i < len(touched) && ahead(touched[i], string(elem)) {
			if !fn([]byte(touched[i]), kv.cells[elemID{t, touched[i]}]) {
				stopped = true
				return false
			}
			i++
		}
		if i < len(touched) && touched[i] == string(elem) {
			i++
			c = kv.cells[elemID{t, string(elem)}]
		} else {
			applyResets(kv.resets, t, c, elem)
		}
		if !fn(elem, c) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for ; i < len(touched); i++ {
		if !fn([]byte(touched[i]), kv.cells[elemID{t, touched[i]}]) {
			return nil
		}
	}
	return nil
}

// scoredMember is a live sorted-set member with its score.
type scoredMember struct {
	member []byte
	score  float64
}

// scoreLess orders members as the score index does.
func scoreLess(s1 float64, m1 []byte, s2 float64, m2 []byte) bool {
	a, b := sortableScore(s1), sortableScore(s2)
	if a != b {
		return a < b
	}
	return bytes.Compare(m1, m2) < 0
}

// atOrAfter reports whether (s, m) is at or after the position (score,
// member) in the direction of the scan (member nil: every member of score
// is at the position).
func atOrAfter(s float64, m []byte, score float64, member []byte, reverse bool) bool {
	a, b := sortableScore(s), sortableScore(score)
	if a != b {
		return (a > b) != reverse
	}
	if member == nil {
		return true
	}
	c := bytes.Compare(m, member)
	return c == 0 || (c > 0) != reverse
}

// scanScores is elemReader.scanScores over the view.
func (kv *keyView) scanScores(score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	var list []scoredMember
	if coversType(kv.resets, crdt.TypeZSet) {
		// A removal in flight may have changed any member's score: sort
		// the whole set (rare: a DEL of the key is in flight).
		err := kv.scan(crdt.TypeZSet, nil, func(elem []byte, c *crdt.Cell) bool {
			if s, ok := cellScore(c); ok {
				list = append(list, scoredMember{elem, s})
			}
			return true
		})
		if err != nil {
			return err
		}
		return iterScored(list, score, member, reverse, fn)
	}
	for id, c := range kv.cells {
		if id.t != crdt.TypeZSet {
			continue
		}
		if s, ok := cellScore(c); ok {
			list = append(list, scoredMember{[]byte(id.e), s})
		}
	}
	sortScored(list, reverse)
	i := 0
	for i < len(list) && !atOrAfter(list[i].score, list[i].member, score, member, reverse) {
		i++
	}
	stopped := false
	err := kv.rd.scanScores(kv.key, score, member, reverse, func(m []byte, s float64) bool {
		if _, ok := kv.cells[elemID{crdt.TypeZSet, string(m)}]; ok {
			return true
		}
		for i < len(list) && scoreLess(list[i].score, list[i].member, s, m) != reverse {
			if !fn(list[i].member, list[i].score) {
				stopped = true
				return false
			}
			i++
		}
		if !fn(m, s) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for ; i < len(list); i++ {
		if !fn(list[i].member, list[i].score) {
			return nil
		}
	}
	return nil
}

func sortScored(list []scoredMember, reverse bool) {
	sort.Slice(list, func(i, j int) bool {
		return scoreLess(list[i].score, list[i].member, list[j].score, list[j].member) != reverse
	})
}

// iterScored calls fn for the members of list from the position on.
func iterScored(list []scoredMember, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	sortScored(list, reverse)
	for _, x := range list {
		if !atOrAfter(x.score, x.member, score, member, reverse) {
			continue
		}
		if !fn(x.member, x.score) {
			return nil
		}
	}
	return nil
}

// observedElems returns Op.Elems of a removal of types ts: the counter
// totals of every element of those types that has counter shares.
func (kv *keyView) observedElems(ts []crdt.Type) ([]crdt.ElemShares, error) {
	var lists [][]crdt.ElemShares
	for _, t := range ts {
		if kv.k.Len(t) == 0 && !kv.hasCells(t) {
			// Dead elements' shares are fully reset already, by removals
			// every region applies.
			continue
		}
		var list []crdt.ElemShares
		err := kv.scan(t, nil, func(elem []byte, c *crdt.Cell) bool {
			if len(c.Shares) > 0 {
				list = append(list, crdt.ElemShares{Elem: bytes.Clone(elem), Shares: c.ObservedShares()})
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		lists = append(lists, list)
	}
	return crdt.MergeElemShares(lists...), nil
}

func (kv *keyView) hasCells(t crdt.Type) bool {
	for id := range kv.cells {
		if id.t == t {
			return true
		}
	}
	return false
}

// hasElems reports whether the key has or had collection elements in the
// view (whether its element reads go to the state).
func (kv *keyView) hasElems() bool {
	if len(kv.cells) > 0 || len(kv.resets) > 0 || len(kv.k.Writes) > 0 {
		return true
	}
	for _, t := range collectionTypes {
		if kv.k.Len(t) > 0 {
			return true
		}
	}
	return false
}
