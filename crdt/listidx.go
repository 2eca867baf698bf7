package crdt

import (
	"encoding/binary"
	"fmt"
)

// The order-statistics index of a list: a counted B+tree whose leaves hold
// the element ids in list order, removed ones (tombstones) included, each
// with a live flag. Internal nodes hold, per child, the number of live
// elements under it, so the element at an index and the index of an element
// take O(log n) node reads (LINDEX, LSET, LRANGE at any offset). Nodes are
// KV records ('n' + id); each element's leaf is recorded under 'l' + id, so
// an element is found without a search; nodes know their parent.
//
// Cost at the ends does not grow with the list: the metadata names the first
// and the last leaf, and changes of the live count in either of them are not
// written up the tree at once. They accumulate in dFirst and dLast: the
// stored count of every first child on the leftmost path lacks dFirst, that
// of every last child on the rightmost path lacks dLast. A push or pop at an
// end therefore writes one leaf and the metadata, as on a short list; the
// deltas are written down the two paths before any split or merge (once per
// leafMax/2 pushes or so).

type nodeID uint64

const (
	defaultLeafMax = 64 // entries per leaf
	defaultKidsMax = 64 // children per internal node
)

// seqMeta is the index's part of the list metadata.
type seqMeta struct {
	root        nodeID // 0: empty
	height      uint64 // 0: the root is a leaf
	live, total int64  // live entries; all entries
	first, last nodeID // leftmost and rightmost leaves
	dFirst      int64  // live-count change of the first leaf not in the leftmost path's counts
	dLast       int64  // same for the last leaf and the rightmost path
	next        nodeID // next node id to allocate (from 1)
}

func (m *seqMeta) marshal(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(m.root))
	b = binary.AppendUvarint(b, m.height)
	b = binary.AppendVarint(b, m.live)
	b = binary.AppendVarint(b, m.total)
	b = binary.AppendUvarint(b, uint64(m.first))
	b = binary.AppendUvarint(b, uint64(m.last))
	b = binary.AppendVarint(b, m.dFirst)
	b = binary.AppendVarint(b, m.dLast)
	return binary.AppendUvarint(b, uint64(m.next))
}

func (d *decoder) seqMeta() seqMeta {
	return seqMeta{
		root: nodeID(d.uvarint()), height: d.uvarint(), live: d.varint(), total: d.varint(),
		first: nodeID(d.uvarint()), last: nodeID(d.uvarint()),
		dFirst: d.varint(), dLast: d.varint(), next: nodeID(d.uvarint()),
	}
}

// seqNode is a leaf (ids, live) or an internal node (kids, counts).
type seqNode struct {
	id         nodeID
	leaf       bool
	parent     nodeID
	prev, next nodeID // leaves: neighbours in list order
	ids        []ElemID
	live       []bool
	kids       []nodeID
	counts     []int64
	dirty      bool
	gone       bool
}

func (n *seqNode) marshal() []byte {
	b := make([]byte, 0, 16+len(n.ids)*8+len(n.kids)*6)
	if n.leaf {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	b = binary.AppendUvarint(b, uint64(n.parent))
	if n.leaf {
		b = binary.AppendUvarint(b, uint64(n.prev))
		b = binary.AppendUvarint(b, uint64(n.next))
		b = binary.AppendUvarint(b, uint64(len(n.ids)))
		for i, id := range n.ids {
			b = binary.AppendUvarint(b, uint64(id.Origin))
			b = binary.AppendUvarint(b, id.Seq)
			l := uint64(id.Idx) << 1
			if n.live[i] {
				l |= 1
			}
			b = binary.AppendUvarint(b, l)
		}
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(n.kids)))
	for i, k := range n.kids {
		b = binary.AppendUvarint(b, uint64(k))
		b = binary.AppendVarint(b, n.counts[i])
	}
	return b
}

func unmarshalNode(id nodeID, b []byte) (*seqNode, bool) {
	d := decoder{b: b}
	n := &seqNode{id: id}
	switch d.byte() {
	case 0:
		n.leaf = true
	case 1:
	default:
		return nil, false
	}
	n.parent = nodeID(d.uvarint())
	if n.leaf {
		n.prev = nodeID(d.uvarint())
		n.next = nodeID(d.uvarint())
		c := d.count()
		n.ids = make([]ElemID, 0, c)
		n.live = make([]bool, 0, c)
		for ; c > 0 && d.err == nil; c-- {
			o, s, l := d.uvarint(), d.uvarint(), d.uvarint()
			if o > 1<<32-1 || l>>1 > 1<<32-1 {
				return nil, false
			}
			n.ids = append(n.ids, ElemID{Origin: ReplicaID(o), Seq: s, Idx: uint32(l >> 1)})
			n.live = append(n.live, l&1 == 1)
		}
	} else {
		c := d.count()
		n.kids = make([]nodeID, 0, c)
		n.counts = make([]int64, 0, c)
		for ; c > 0 && d.err == nil; c-- {
			n.kids = append(n.kids, nodeID(d.uvarint()))
			n.counts = append(n.counts, d.varint())
		}
	}
	if d.err != nil || len(d.b) != 0 || (!n.leaf && len(n.kids) == 0) {
		return nil, false
	}
	return n, true
}

type leafRef struct {
	node  nodeID // 0: deleted
	dirty bool
}

// seqIndex is the index over a KV; its metadata (m) is stored by the owner.
type seqIndex struct {
	st               *kvErr
	m                seqMeta
	metaDirty        bool
	nodes            map[nodeID]*seqNode
	leafs            map[ElemID]*leafRef
	leafMax, kidsMax int
}

func newSeqIndex(st *kvErr, m seqMeta) *seqIndex {
	return &seqIndex{
		st: st, m: m, nodes: map[nodeID]*seqNode{}, leafs: map[ElemID]*leafRef{},
		leafMax: defaultLeafMax, kidsMax: defaultKidsMax,
	}
}

// within reports whether a walk of steps node hops along stored links is
// still plausible, and records corruption (a cycle) when it is not: a walk
// up or down the tree takes at most height+1 hops, along the leaves at most
// one per entry.
func (s *seqIndex) within(steps int, vertical bool) bool {
	limit := min(int64(s.m.height)+1, 64)
	if !vertical {
		limit = s.m.total + 1
	}
	if int64(steps) <= limit {
		return true
	}
	s.broken("a walk of the tree does not end")
	return false
}

// broken records a broken invariant of the stored index (corrupt state).
func (s *seqIndex) broken(format string, args ...any) {
	if s.st.err == nil {
		s.st.err = fmt.Errorf("list index: "+format+": %w", append(args, ErrCorrupt)...)
	}
}

func (s *seqIndex) node(id nodeID) *seqNode {
	if n, ok := s.nodes[id]; ok {
		if n.gone {
			s.broken("node %d used after removal", id)
			return nil
		}
		return n
	}
	k := nodeKey(id)
	b, ok := s.st.get(k)
	if !ok {
		if s.st.err == nil {
			s.broken("missing node %d", id)
		}
		return nil
	}
	n, ok := unmarshalNode(id, b)
	if !ok {
		s.st.corrupt("node", k)
		return nil
	}
	s.nodes[id] = n
	return n
}

func (s *seqIndex) newNode(leaf bool) *seqNode {
	if s.m.next == 0 {
		s.m.next = 1
	}
	n := &seqNode{id: s.m.next, leaf: leaf, dirty: true}
	s.m.next++
	s.metaDirty = true
	s.nodes[n.id] = n
	return n
}

func (s *seqIndex) dropNode(n *seqNode) { n.gone, n.dirty = true, true }

func (s *seqIndex) leafOf(id ElemID) *seqNode {
	if r, ok := s.leafs[id]; ok {
		if r.node == 0 {
			s.broken("element %v not indexed", id)
			return nil
		}
		return s.node(r.node)
	}
	k := idKey(tabLeaf, id)
	b, ok := s.st.get(k)
	if !ok {
		if s.st.err == nil {
			s.broken("element %v not indexed", id)
		}
		return nil
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) || v == 0 {
		s.st.corrupt("leaf", k)
		return nil
	}
	s.leafs[id] = &leafRef{node: nodeID(v)}
	return s.node(nodeID(v))
}

func (s *seqIndex) setLeaf(id ElemID, n nodeID) { s.leafs[id] = &leafRef{node: n, dirty: true} }

// flush writes the changed nodes and leaf records (not the metadata).
func (s *seqIndex) flush() {
	for id, n := range s.nodes {
		if !n.dirty {
			continue
		}
		if n.gone {
			s.st.del(nodeKey(id))
			delete(s.nodes, id)
			continue
		}
		s.st.set(nodeKey(id), n.marshal())
		n.dirty = false
	}
	for id, r := range s.leafs {
		if !r.dirty {
			continue
		}
		if r.node == 0 {
			s.st.del(idKey(tabLeaf, id))
		} else {
			s.st.set(idKey(tabLeaf, id), binary.AppendUvarint(nil, uint64(r.node)))
		}
		r.dirty = false
	}
}

func (n *seqNode) pos(id ElemID) int {
	for i, x := range n.ids {
		if x == id {
			return i
		}
	}
	return -1
}

func (n *seqNode) kidPos(k nodeID) int {
	for i, x := range n.kids {
		if x == k {
			return i
		}
	}
	return -1
}

func (n *seqNode) liveCount() int64 {
	var c int64
	for _, l := range n.live {
		if l {
			c++
		}
	}
	return c
}

// Len returns the number of live entries.
func (s *seqIndex) Len() int64 { return s.m.live }

// insert puts id right after ref (right before it when before is set); the
// zero ref with before unset means the front of the list.
func (s *seqIndex) insert(ref ElemID, before bool, id ElemID, live bool) {
	if s.st.err != nil {
		return
	}
	if s.m.root == 0 {
		n := s.newNode(true)
		s.m.root, s.m.first, s.m.last, s.m.height = n.id, n.id, n.id, 0
		s.metaDirty = true
		s.insertAt(n, 0, id, live)
		return
	}
	var leaf *seqNode
	var at int
	if ref.IsHead() && !before {
		leaf, at = s.node(s.m.first), 0
	} else {
		leaf = s.leafOf(ref)
		if leaf == nil {
			return
		}
		if at = leaf.pos(ref); at < 0 {
			s.broken("element %v not in its leaf %d", ref, leaf.id)
			return
		}
		if !before {
			at++
		}
	}
	if leaf != nil {
		s.insertAt(leaf, at, id, live)
	}
}

func (s *seqIndex) insertAt(leaf *seqNode, at int, id ElemID, live bool) {
	if len(leaf.ids) >= s.leafMax {
		// At the edge of a full leaf, a neighbour with room takes it.
		if at == len(leaf.ids) && leaf.next != 0 {
			if nx := s.node(leaf.next); nx != nil && len(nx.ids) < s.leafMax {
				leaf, at = nx, 0
			}
		} else if at == 0 && leaf.prev != 0 {
			if pv := s.node(leaf.prev); pv != nil && len(pv.ids) < s.leafMax {
				leaf, at = pv, len(pv.ids)
			}
		}
	}
	if len(leaf.ids) >= s.leafMax {
		leaf, at = s.splitLeaf(leaf, at)
		if leaf == nil {
			return
		}
	}
	leaf.ids = append(leaf.ids, ElemID{})
	copy(leaf.ids[at+1:], leaf.ids[at:])
	leaf.ids[at] = id
	leaf.live = append(leaf.live, false)
	copy(leaf.live[at+1:], leaf.live[at:])
	leaf.live[at] = live
	leaf.dirty = true
	s.setLeaf(id, leaf.id)
	s.m.total++
	s.metaDirty = true
	if live {
		s.adjust(leaf, 1)
	}
}

// splitLeaf makes room in a full leaf for an entry at position at, and
// returns the leaf and position where it goes. A push at an end of the list
// starts a new end leaf with a quarter of the entries (the rest stay put):
// a pop right after it cannot empty it again, so a list that grows and
// shrinks at an end reshapes the tree at most once per leafMax/4
// operations. Elsewhere the leaf splits in halves.
func (s *seqIndex) splitLeaf(leaf *seqNode, at int) (*seqNode, int) {
	s.settle()
	nl := s.newNode(true)
	n := len(leaf.ids)
	q := s.leafMax / 4
	var lo, hi int // the entries moving to nl
	before := false
	switch {
	case leaf.id == s.m.last && at == n:
		lo, hi = n-q, n
	case leaf.id == s.m.first && at == 0:
		lo, hi, before = 0, q, true
	default:
		lo, hi = n/2, n
	}
	nl.ids = append(nl.ids, leaf.ids[lo:hi]...)
	nl.live = append(nl.live, leaf.live[lo:hi]...)
	leaf.ids = append(leaf.ids[:lo:lo], leaf.ids[hi:]...)
	leaf.live = append(leaf.live[:lo:lo], leaf.live[hi:]...)
	leaf.dirty = true
	for _, id := range nl.ids {
		s.setLeaf(id, nl.id)
	}
	if before {
		s.linkLeafBefore(leaf, nl)
	} else {
		s.linkLeafAfter(leaf, nl)
	}
	s.addKid(leaf, nl, before, nl.liveCount())
	switch {
	case before && at <= hi:
		return nl, at
	case before:
		return leaf, at - hi
	case at >= lo:
		return nl, at - lo
	}
	return leaf, at
}

func (s *seqIndex) linkLeafAfter(l, nl *seqNode) {
	nl.prev, nl.next = l.id, l.next
	if l.next != 0 {
		if nx := s.node(l.next); nx != nil {
			nx.prev, nx.dirty = nl.id, true
		}
	} else {
		s.m.last = nl.id
	}
	l.next, l.dirty = nl.id, true
	s.metaDirty = true
}

func (s *seqIndex) linkLeafBefore(l, nl *seqNode) {
	nl.next, nl.prev = l.id, l.prev
	if l.prev != 0 {
		if pv := s.node(l.prev); pv != nil {
			pv.next, pv.dirty = nl.id, true
		}
	} else {
		s.m.first = nl.id
	}
	l.prev, l.dirty = nl.id, true
	s.metaDirty = true
}

// addKid inserts node nn next to its sibling n (before or after it) in n's
// parent, nn holding moved of the live entries n was counted with (the
// deltas are settled). It grows a new root when n is the root and splits
// parents that overflow.
func (s *seqIndex) addKid(n, nn *seqNode, before bool, moved int64) {
	s.addKidAt(n, nn, before, moved, 1)
}

func (s *seqIndex) addKidAt(n, nn *seqNode, before bool, moved int64, depth int) {
	if !s.within(depth, true) {
		return
	}
	if n.parent == 0 {
		r := s.newNode(false)
		total := s.m.live // n is the root: its count is the list's
		if before {
			r.kids = []nodeID{nn.id, n.id}
			r.counts = []int64{moved, total - moved}
		} else {
			r.kids = []nodeID{n.id, nn.id}
			r.counts = []int64{total - moved, moved}
		}
		n.parent, nn.parent = r.id, r.id
		n.dirty, nn.dirty = true, true
		s.m.root = r.id
		s.m.height++
		s.metaDirty = true
		return
	}
	p := s.node(n.parent)
	if p == nil {
		return
	}
	i := p.kidPos(n.id)
	if i < 0 {
		s.broken("node %d not a child of %d", n.id, p.id)
		return
	}
	p.counts[i] -= moved
	if !before {
		i++
	}
	p.kids = append(p.kids, 0)
	copy(p.kids[i+1:], p.kids[i:])
	p.kids[i] = nn.id
	p.counts = append(p.counts, 0)
	copy(p.counts[i+1:], p.counts[i:])
	p.counts[i] = moved
	p.dirty = true
	nn.parent, nn.dirty = p.id, true
	if len(p.kids) > s.kidsMax {
		s.splitInternal(p, depth+1)
	}
}

func (s *seqIndex) splitInternal(p *seqNode, depth int) {
	np := s.newNode(false)
	h := len(p.kids) / 2
	np.kids = append(np.kids, p.kids[h:]...)
	np.counts = append(np.counts, p.counts[h:]...)
	p.kids = p.kids[:h:h]
	p.counts = p.counts[:h:h]
	p.dirty = true
	var moved int64
	for i, k := range np.kids {
		moved += np.counts[i]
		if c := s.node(k); c != nil {
			c.parent, c.dirty = np.id, true
		}
	}
	s.addKidAt(p, np, false, moved, depth)
}

// adjust records a change d of leaf's live entries.
func (s *seqIndex) adjust(leaf *seqNode, d int64) {
	s.m.live += d
	s.metaDirty = true
	switch {
	case s.m.height == 0:
	case leaf.id == s.m.first:
		s.m.dFirst += d
	case leaf.id == s.m.last:
		s.m.dLast += d
	default:
		c := leaf
		for hops := 1; c.parent != 0 && s.within(hops, true); hops++ {
			p := s.node(c.parent)
			if p == nil {
				return
			}
			i := p.kidPos(c.id)
			if i < 0 {
				s.broken("node %d not a child of %d", c.id, p.id)
				return
			}
			p.counts[i] += d
			p.dirty = true
			c = p
		}
	}
}

// settle writes dFirst and dLast into the counts of the two end paths, so
// that every stored count is exact (before the tree changes shape).
func (s *seqIndex) settle() {
	if s.m.dFirst != 0 {
		for n, hops := s.node(s.m.root), 1; n != nil && !n.leaf && s.within(hops, true); n, hops = s.node(n.kids[0]), hops+1 {
			n.counts[0] += s.m.dFirst
			n.dirty = true
		}
		s.m.dFirst = 0
		s.metaDirty = true
	}
	if s.m.dLast != 0 {
		for n, hops := s.node(s.m.root), 1; n != nil && !n.leaf && s.within(hops, true); n, hops = s.node(n.kids[len(n.kids)-1]), hops+1 {
			n.counts[len(n.counts)-1] += s.m.dLast
			n.dirty = true
		}
		s.m.dLast = 0
		s.metaDirty = true
	}
}

// kidCount returns the exact live count of n's child i, given whether n is
// on the leftmost and on the rightmost path.
func (s *seqIndex) kidCount(n *seqNode, i int, onFirst, onLast bool) int64 {
	c := n.counts[i]
	if onFirst && i == 0 {
		c += s.m.dFirst
	}
	if onLast && i == len(n.kids)-1 {
		c += s.m.dLast
	}
	return c
}

// locate returns the leaf and entry position of the live entry at index i
// (0 <= i < Len).
func (s *seqIndex) locate(i int64) (*seqNode, int) {
	if i < 0 || i >= s.m.live || s.st.err != nil {
		return nil, 0
	}
	n := s.node(s.m.root)
	onFirst, onLast := true, true
	for hops := 1; n != nil && !n.leaf; hops++ {
		if !s.within(hops, true) {
			return nil, 0
		}
		k := len(n.kids) - 1
		for j := range n.kids {
			c := s.kidCount(n, j, onFirst, onLast)
			if i < c || j == k {
				onFirst = onFirst && j == 0
				onLast = onLast && j == k
				n = s.node(n.kids[j])
				break
			}
			i -= c
		}
	}
	if n == nil {
		return nil, 0
	}
	for j, l := range n.live {
		if l {
			if i == 0 {
				return n, j
			}
			i--
		}
	}
	s.broken("index count off in leaf %d", n.id)
	return nil, 0
}

// At returns the live element at index i (0 <= i < Len).
func (s *seqIndex) At(i int64) (ElemID, bool) {
	n, j := s.locate(i)
	if n == nil {
		return ElemID{}, false
	}
	return n.ids[j], true
}

// Rank returns the number of live entries before id and whether id is live.
func (s *seqIndex) Rank(id ElemID) (int64, bool) {
	leaf := s.leafOf(id)
	if leaf == nil {
		return 0, false
	}
	j := leaf.pos(id)
	if j < 0 {
		s.broken("element %v not in its leaf %d", id, leaf.id)
		return 0, false
	}
	var r int64
	for _, l := range leaf.live[:j] {
		if l {
			r++
		}
	}
	if s.m.height > 0 && leaf.id != s.m.first {
		r += s.m.dFirst
	}
	for c, hops := leaf, 1; c.parent != 0; hops++ {
		if !s.within(hops, true) {
			return 0, false
		}
		p := s.node(c.parent)
		if p == nil {
			return 0, false
		}
		i := p.kidPos(c.id)
		for _, x := range p.counts[:max(i, 0)] {
			r += x
		}
		c = p
	}
	return r, leaf.live[j]
}

// SetLive marks id live or removed.
func (s *seqIndex) SetLive(id ElemID, live bool) {
	leaf := s.leafOf(id)
	if leaf == nil {
		return
	}
	j := leaf.pos(id)
	if j < 0 {
		s.broken("element %v not in its leaf %d", id, leaf.id)
		return
	}
	if leaf.live[j] == live {
		return
	}
	leaf.live[j] = live
	leaf.dirty = true
	if live {
		s.adjust(leaf, 1)
	} else {
		s.adjust(leaf, -1)
	}
}

// Remove deletes id's entry (collection of a tombstone).
func (s *seqIndex) Remove(id ElemID) {
	leaf := s.leafOf(id)
	if leaf == nil {
		return
	}
	j := leaf.pos(id)
	if j < 0 {
		s.broken("element %v not in its leaf %d", id, leaf.id)
		return
	}
	if leaf.live[j] {
		s.adjust(leaf, -1)
	}
	leaf.ids = append(leaf.ids[:j], leaf.ids[j+1:]...)
	leaf.live = append(leaf.live[:j], leaf.live[j+1:]...)
	leaf.dirty = true
	s.leafs[id] = &leafRef{dirty: true}
	s.m.total--
	s.metaDirty = true
	end := leaf.id == s.m.first || leaf.id == s.m.last
	switch {
	case s.m.total == 0:
		s.clear()
	case len(leaf.ids) == 0:
		s.settle()
		s.removeNode(leaf)
	case len(leaf.ids) < s.leafMax/4 && !end:
		s.mergeLeaf(leaf)
	}
}

// clear drops every node of an index without entries.
func (s *seqIndex) clear() {
	var drop func(id nodeID, depth int)
	drop = func(id nodeID, depth int) {
		n := s.node(id)
		if n == nil || !s.within(depth, true) {
			return
		}
		for _, k := range n.kids {
			drop(k, depth+1)
		}
		s.dropNode(n)
	}
	drop(s.m.root, 1)
	s.m = seqMeta{next: s.m.next}
	s.metaDirty = true
}

// mergeLeaf moves a small leaf's entries into a neighbour with the same
// parent when they fit, and removes it.
func (s *seqIndex) mergeLeaf(leaf *seqNode) {
	if leaf.parent == 0 {
		return
	}
	for _, nb := range []nodeID{leaf.next, leaf.prev} {
		if nb == 0 {
			continue
		}
		o := s.node(nb)
		if o == nil || o.parent != leaf.parent || len(o.ids)+len(leaf.ids) > s.leafMax*3/4 {
			continue
		}
		s.settle()
		p := s.node(leaf.parent)
		if p == nil {
			return
		}
		i, oi := p.kidPos(leaf.id), p.kidPos(o.id)
		if i < 0 || oi < 0 {
			s.broken("leaf %d or %d not a child of %d", leaf.id, o.id, p.id)
			return
		}
		if o.id == leaf.next {
			o.ids = append(append([]ElemID(nil), leaf.ids...), o.ids...)
			o.live = append(append([]bool(nil), leaf.live...), o.live...)
		} else {
			o.ids = append(o.ids, leaf.ids...)
			o.live = append(o.live, leaf.live...)
		}
		o.dirty = true
		for _, id := range leaf.ids {
			s.setLeaf(id, o.id)
		}
		p.counts[oi] += p.counts[i]
		p.counts[i] = 0
		leaf.ids, leaf.live = nil, nil
		s.removeNode(leaf)
		return
	}
}

// removeNode unlinks an empty node (its live count in the parent is 0, the
// deltas settled) and removes parents left empty; a root left with one
// child gives way to it.
func (s *seqIndex) removeNode(n *seqNode) { s.removeNodeAt(n, 1) }

func (s *seqIndex) removeNodeAt(n *seqNode, depth int) {
	if !s.within(depth, true) {
		return
	}
	if n.leaf {
		if n.prev != 0 {
			if pv := s.node(n.prev); pv != nil {
				pv.next, pv.dirty = n.next, true
			}
		} else {
			s.m.first = n.next
		}
		if n.next != 0 {
			if nx := s.node(n.next); nx != nil {
				nx.prev, nx.dirty = n.prev, true
			}
		} else {
			s.m.last = n.prev
		}
		s.metaDirty = true
	}
	s.dropNode(n)
	if n.parent == 0 {
		s.m = seqMeta{next: s.m.next}
		s.metaDirty = true
		return
	}
	p := s.node(n.parent)
	if p == nil {
		return
	}
	i := p.kidPos(n.id)
	if i < 0 {
		s.broken("node %d not a child of %d", n.id, p.id)
		return
	}
	p.kids = append(p.kids[:i], p.kids[i+1:]...)
	p.counts = append(p.counts[:i], p.counts[i+1:]...)
	p.dirty = true
	if len(p.kids) == 0 {
		s.removeNodeAt(p, depth+1)
		return
	}
	for p.parent == 0 && !p.leaf && len(p.kids) == 1 && s.m.height > 0 {
		c := s.node(p.kids[0])
		if c == nil {
			return
		}
		s.dropNode(p)
		c.parent, c.dirty = 0, true
		s.m.root = c.id
		s.m.height--
		s.metaDirty = true
		p = c
	}
}

// First returns the first live element, looking in the first leaf before
// searching the tree.
func (s *seqIndex) First() (ElemID, bool) {
	if s.m.live == 0 || s.st.err != nil {
		return ElemID{}, false
	}
	n := s.node(s.m.first)
	for hop := 0; hop < 2 && n != nil; hop++ {
		for j, l := range n.live {
			if l {
				return n.ids[j], true
			}
		}
		if n.next == 0 {
			break
		}
		n = s.node(n.next)
	}
	return s.At(0)
}

// Last returns the last live element.
func (s *seqIndex) Last() (ElemID, bool) {
	if s.m.live == 0 || s.st.err != nil {
		return ElemID{}, false
	}
	n := s.node(s.m.last)
	for hop := 0; hop < 2 && n != nil; hop++ {
		for j := len(n.live) - 1; j >= 0; j-- {
			if n.live[j] {
				return n.ids[j], true
			}
		}
		if n.prev == 0 {
			break
		}
		n = s.node(n.prev)
	}
	return s.At(s.m.live - 1)
}

// Scan calls fn with the live elements from index i on (down to index 0
// when reverse), until fn returns false.
func (s *seqIndex) Scan(i int64, reverse bool, fn func(ElemID) bool) {
	var n *seqNode
	var j int
	switch {
	case i < 0 || i >= s.m.live || s.st.err != nil:
		return
	case i == 0 && !reverse: // from the head: start in the first leaf
		n = s.node(s.m.first)
	case i == s.m.live-1 && reverse: // from the tail
		if n = s.node(s.m.last); n != nil {
			j = len(n.ids) - 1
		}
	default:
		n, j = s.locate(i)
	}
	var seen map[nodeID]bool // after many leaves, to catch a corrupt cycle
	for hops := 1; n != nil && s.within(hops, false); hops++ {
		if hops > 1024 {
			if seen == nil {
				seen = map[nodeID]bool{}
			}
			if seen[n.id] {
				s.broken("leaf %d reached twice", n.id)
				return
			}
			seen[n.id] = true
		}
		if reverse {
			for ; j >= 0; j-- {
				if n.live[j] && !fn(n.ids[j]) {
					return
				}
			}
			if n.prev == 0 {
				return
			}
			n = s.node(n.prev)
			if n != nil {
				j = len(n.ids) - 1
			}
			continue
		}
		for ; j < len(n.ids); j++ {
			if n.live[j] && !fn(n.ids[j]) {
				return
			}
		}
		if n.next == 0 {
			return
		}
		n, j = s.node(n.next), 0
	}
}

// check verifies the index's invariants (tests): counts, parents, leaf
// links and leaf records. It returns the entries in order.
func (s *seqIndex) check() ([]ElemID, []bool, error) {
	var ids []ElemID
	var live []bool
	if s.m.root == 0 {
		if s.m.live != 0 || s.m.total != 0 {
			return nil, nil, fmt.Errorf("empty index counts %d/%d", s.m.live, s.m.total)
		}
		return nil, nil, s.st.err
	}
	var prevLeaf nodeID
	var walk func(id, parent nodeID, depth uint64, onFirst, onLast bool) (int64, error)
	walk = func(id, parent nodeID, depth uint64, onFirst, onLast bool) (int64, error) {
		n := s.node(id)
		if n == nil {
			return 0, fmt.Errorf("node %d: %v", id, s.st.err)
		}
		if n.parent != parent {
			return 0, fmt.Errorf("node %d parent %d, want %d", id, n.parent, parent)
		}
		if n.leaf {
			if depth != s.m.height {
				return 0, fmt.Errorf("leaf %d at depth %d, height %d", id, depth, s.m.height)
			}
			if n.prev != prevLeaf {
				return 0, fmt.Errorf("leaf %d prev %d, want %d", id, n.prev, prevLeaf)
			}
			if prevLeaf == 0 && s.m.first != id {
				return 0, fmt.Errorf("first leaf %d, want %d", s.m.first, id)
			}
			prevLeaf = id
			if len(n.ids) == 0 || len(n.ids) > s.leafMax || len(n.ids) != len(n.live) {
				return 0, fmt.Errorf("leaf %d has %d entries", id, len(n.ids))
			}
			for j, e := range n.ids {
				if l := s.leafOf(e); l == nil || l.id != id {
					return 0, fmt.Errorf("element %v leaf record wrong", e)
				}
				ids = append(ids, e)
				live = append(live, n.live[j])
			}
			return n.liveCount(), nil
		}
		if len(n.kids) == 0 || len(n.kids) > s.kidsMax || (parent == 0 && len(n.kids) < 2) {
			return 0, fmt.Errorf("node %d has %d children", id, len(n.kids))
		}
		var sum int64
		for j, k := range n.kids {
			c, err := walk(k, id, depth+1, onFirst && j == 0, onLast && j == len(n.kids)-1)
			if err != nil {
				return 0, err
			}
			if want := s.kidCount(n, j, onFirst, onLast); c != want {
				return 0, fmt.Errorf("node %d child %d counts %d, has %d", id, k, want, c)
			}
			sum += c
		}
		return sum, nil
	}
	c, err := walk(s.m.root, 0, 0, true, true)
	if err != nil {
		return nil, nil, err
	}
	if c != s.m.live || int64(len(ids)) != s.m.total {
		return nil, nil, fmt.Errorf("counts %d/%d, has %d/%d", s.m.live, s.m.total, c, len(ids))
	}
	if s.m.last != prevLeaf {
		return nil, nil, fmt.Errorf("last leaf %d, want %d", s.m.last, prevLeaf)
	}
	return ids, live, nil
}
