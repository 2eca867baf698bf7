package crdttest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/georep/georep/crdt"
)

// Msg is one emitted event with what the simulator needs to deliver it.
type Msg struct {
	Key  string
	Part int
	Ev   *crdt.Event
}

// Link is a FIFO channel of one origin's events of one partition to one
// destination replica.
type Link struct {
	From, To crdt.ReplicaID
	Part     int
}

// Sim is a set of replicas with instance IDs 1..N and the links between
// them. The zero value is not usable; use New.
type Sim struct {
	Replicas []*Replica // Replicas[i].ID == i+1
	// Now is the real time in ms; a replica's wall clock is Now+Skew.
	Now int64
	// GC passes each replica's stable clock of the key's partition to
	// Apply, so tombstones and reset shares are collected. With GC false,
	// Apply gets nil and keeps everything.
	GC bool
	// MergeHLC makes a replica's HLC advance past every event it applies
	// (the usual HLC receive rule). Without it a replica's HLC only follows
	// its own wall clock and its own events.
	MergeHLC bool
	// Partition maps a key to its partition; nil puts every key in 0.
	Partition func(key string) int
	// DropEmpty makes replicas behave like the materializer's storage: a
	// key whose state is Empty (and has no element cells) is deleted,
	// forgetting its VV, and duplicates are dropped by the partition's
	// stable clock before they reach Key.Apply.
	DropEmpty bool

	queues map[Link][]*Msg
	sent   []*Msg
}

// New returns a simulation of n replicas (IDs 1..n) at real time now.
func New(n int, now int64) *Sim {
	s := &Sim{Now: now, queues: map[Link][]*Msg{}}
	for i := 1; i <= n; i++ {
		s.Replicas = append(s.Replicas, newReplica(s, crdt.ReplicaID(i)))
	}
	return s
}

// R returns the replica with instance ID id.
func (s *Sim) R(id crdt.ReplicaID) *Replica { return s.Replicas[id-1] }

func (s *Sim) part(key string) int {
	if s.Partition == nil {
		return 0
	}
	return s.Partition(key)
}

// Sent returns every event emitted so far, in emission order.
func (s *Sim) Sent() []*Msg { return s.sent }

// Pending returns the links that hold undelivered events, in a
// deterministic order.
func (s *Sim) Pending() []Link {
	var out []Link
	for l, q := range s.queues {
		if len(q) > 0 {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Part < b.Part
	})
	return out
}

// Deliver applies the oldest undelivered event of l at its destination and
// reports whether Apply changed anything (it must, for a first delivery).
func (s *Sim) Deliver(l Link) bool {
	q := s.queues[l]
	if len(q) == 0 {
		panic(fmt.Sprintf("crdttest: nothing to deliver on %+v", l))
	}
	m := q[0]
	s.queues[l] = q[1:]
	r := s.R(l.To)
	r.history[l] = append(r.history[l], m)
	return r.Receive(m)
}

// Redeliver applies again the i-th event already delivered on l (a
// duplicate) and reports whether Apply changed anything (it must not).
func (s *Sim) Redeliver(l Link, i int) bool {
	return s.R(l.To).Receive(s.R(l.To).history[l][i])
}

// Delivered returns how many events l has delivered.
func (s *Sim) Delivered(l Link) int { return len(s.R(l.To).history[l]) }

// Links returns every link that has delivered at least one event.
func (s *Sim) Links() []Link {
	var out []Link
	for _, r := range s.Replicas {
		for l := range r.history {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Part < b.Part
	})
	return out
}

// Sync delivers everything pending, choosing the next link with pick (given
// the number of pending links, it returns an index); nil picks the first.
func (s *Sim) Sync(pick func(n int) int) {
	for {
		p := s.Pending()
		if len(p) == 0 {
			return
		}
		i := 0
		if pick != nil {
			i = pick(len(p))
		}
		s.Deliver(p[i])
	}
}

// SyncTo delivers everything pending towards replica to only.
func (s *Sim) SyncTo(to crdt.ReplicaID) {
	for _, l := range s.Pending() {
		if l.To == to {
			for len(s.queues[l]) > 0 {
				s.Deliver(l)
			}
		}
	}
}

// Replica is one region: its keys, sequence, HLC and wall clock skew.
type Replica struct {
	ID crdt.ReplicaID
	// Skew is added to the simulation's Now to give this replica's wall
	// clock (negative: behind).
	Skew int64
	Seq  uint64
	Last crdt.HLC
	Keys map[string]*crdt.Key
	// Cells holds the collection elements per key, type and element name,
	// as the materializer stores them beside the key's state.
	Cells map[string]map[crdt.Type]map[string]*crdt.Cell
	// Stable is, per partition, the highest sequence delivered from each
	// origin (own events included).
	Stable map[int]crdt.Clock

	sim     *Sim
	history map[Link][]*Msg
}

func newReplica(s *Sim, id crdt.ReplicaID) *Replica {
	return &Replica{
		ID: id, Keys: map[string]*crdt.Key{}, Cells: map[string]map[crdt.Type]map[string]*crdt.Cell{},
		Stable: map[int]crdt.Clock{}, sim: s, history: map[Link][]*Msg{},
	}
}

// NewObserver returns a replica outside the simulation (ID 0, no links): it
// only applies events handed to Receive. Replays use it.
func (s *Sim) NewObserver() *Replica { return newReplica(s, 0) }

// Wall returns the replica's wall clock in ms.
func (r *Replica) Wall() int64 { return r.sim.Now + r.Skew }

// Key returns the state of key, creating an empty one.
func (r *Replica) Key(key string) *crdt.Key {
	k := r.Keys[key]
	if k == nil {
		k = &crdt.Key{}
		r.Keys[key] = k
	}
	return k
}

// StableFor returns the stable clock of key's partition.
func (r *Replica) StableFor(key string) crdt.Clock { return r.Stable[r.sim.part(key)] }

// Emit makes a local write on key with ops, the way the server's Store.Emit
// does: it prepends an observed OpDelete if the key has expired here, or an
// OpDeleteType for every hidden type and, for a write that creates a type,
// for every other live type; it fills what ops need from the local state
// (Shares of string and element resets, Elems of collection removals, Start
// of increments); it stamps the event and applies it here at once. Emit
// returns nil when ops is empty.
func (r *Replica) Emit(key string, ops ...crdt.Op) *Msg {
	if len(ops) == 0 {
		return nil
	}
	k := r.Key(key)
	now := r.Wall()
	var pre []crdt.Op
	if k.Stale(now) {
		if ops[0].Kind != crdt.OpDelete {
			pre = append(pre, crdt.Op{Kind: crdt.OpDelete})
		}
	} else {
		creates := crdt.TypeNone
		isDel := false
		for i := range ops {
			if t := ops[i].Creates(); t != crdt.TypeNone {
				creates = t
			}
			isDel = isDel || ops[i].Kind == crdt.OpDelete
		}
		if !isDel {
			var del []crdt.Type
			if vt := k.Type(now); creates != crdt.TypeNone && vt != crdt.TypeNone && vt != creates {
				del = append(del, vt)
			}
			for _, h := range k.Hidden() {
				if h != creates && !containsType(del, h) {
					del = append(del, h)
				}
			}
			for _, t := range del {
				pre = append(pre, crdt.Op{Kind: crdt.OpDeleteType, Type: t})
			}
		}
	}
	all := append(pre, ops...)
	reset := false // the string cell was reset earlier in this event
	for i := range all {
		op := &all[i]
		switch op.Kind {
		case crdt.OpDelete:
			op.Shares = k.ObservedShares()
			op.Elems = r.observedElems(key, collectionTypes...)
			reset = true
		case crdt.OpDeleteType:
			if op.Type == crdt.TypeString {
				op.Shares = k.ObservedShares()
				reset = true
			} else {
				op.Elems = r.observedElems(key, op.Type)
			}
		case crdt.OpSet:
			op.Shares = k.ObservedShares()
			reset = true
		case crdt.OpIncr, crdt.OpIncrFloat:
			// After a reset of the string earlier in the event (the
			// OpDelete of an expired key), open a new share: continuing
			// the fully reset one would lose the low digits of floats.
			op.Start = k.OwnShareStart(r.ID)
			if reset {
				op.Start = 0
			}
		default:
			if t := op.ElemType(); t != crdt.TypeNone {
				c := r.cell(key, t, op.Elem, false)
				switch op.Kind {
				case crdt.OpHIncr, crdt.OpHIncrFloat, crdt.OpZIncr:
					if c != nil {
						op.Start = c.OwnShareStart(r.ID)
					}
				default:
					if c != nil {
						op.Shares = c.ObservedShares()
					}
				}
			}
		}
	}
	r.Seq++
	r.Last = crdt.NextHLC(r.Last, now)
	m := &Msg{
		Key:  key,
		Part: r.sim.part(key),
		Ev: &crdt.Event{
			Dot:      crdt.Dot{Origin: r.ID, Seq: r.Seq},
			HLC:      r.Last,
			Key:      []byte(key),
			Observed: k.VV.Clone(),
			Ops:      all,
		},
	}
	if !r.Receive(m) {
		panic("crdttest: origin did not apply its own event")
	}
	s := r.sim
	s.sent = append(s.sent, m)
	for _, o := range s.Replicas {
		if o.ID != r.ID {
			l := Link{From: r.ID, To: o.ID, Part: m.Part}
			s.queues[l] = append(s.queues[l], m)
		}
	}
	return m
}

var collectionTypes = []crdt.Type{crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet}

func containsType(ts []crdt.Type, t crdt.Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// cell returns the stored cell of an element, creating it if create.
func (r *Replica) cell(key string, t crdt.Type, elem []byte, create bool) *crdt.Cell {
	byType := r.Cells[key]
	if byType == nil {
		if !create {
			return nil
		}
		byType = map[crdt.Type]map[string]*crdt.Cell{}
		r.Cells[key] = byType
	}
	cells := byType[t]
	if cells == nil {
		if !create {
			return nil
		}
		cells = map[string]*crdt.Cell{}
		byType[t] = cells
	}
	c := cells[string(elem)]
	if c == nil && create {
		c = &crdt.Cell{}
		cells[string(elem)] = c
	}
	return c
}

// observedElems is Op.Elems for a removal of types ts. Op.Elems does not
// say the type: an element name used by several types carries the shares
// of all of them (crdt.MergeElemShares).
func (r *Replica) observedElems(key string, ts ...crdt.Type) []crdt.ElemShares {
	var lists [][]crdt.ElemShares
	for _, t := range ts {
		lists = append(lists, crdt.ObservedElems(r.Cells[key][t]))
	}
	return crdt.MergeElemShares(lists...)
}

// Receive applies m here the way the materializer folds an event, and
// returns Apply's answer: Key.Apply for the key-level ops, then ApplyElem
// for element ops and ResetElem of every stored element for collection
// removals (in op order), then Key.GC if Apply left it to the caller. It
// advances the partition's stable clock first, so the event's own sequence
// counts as delivered.
func (r *Replica) Receive(m *Msg) bool {
	ev := m.Ev
	if r.sim.DropEmpty && ev.Dot.Seq <= r.Stable[m.Part].Get(ev.Dot.Origin) {
		return false
	}
	st := r.Stable[m.Part].Clone().With(ev.Dot.Origin, ev.Dot.Seq)
	r.Stable[m.Part] = st
	if r.sim.MergeHLC && ev.HLC > r.Last {
		r.Last = ev.HLC
	}
	var stable crdt.Clock
	if r.sim.GC {
		stable = st.Clone()
	}
	k := r.Key(m.Key)
	if !k.Apply(ev, stable) {
		return false
	}
	elems := false
	for i := range ev.Ops {
		op := &ev.Ops[i]
		if t := op.ElemType(); t != crdt.TypeNone {
			elems = true
			before, after := k.ApplyElem(r.cell(m.Key, t, op.Elem, true), ev, op, stable)
			addLen(k, t, before, after)
			continue
		}
		switch {
		case op.Kind == crdt.OpDelete:
			for _, t := range collectionTypes {
				r.resetElems(k, m.Key, t, ev, op, stable)
			}
		case op.Kind == crdt.OpDeleteType && op.Type != crdt.TypeString:
			r.resetElems(k, m.Key, op.Type, ev, op, stable)
		}
	}
	if elems {
		k.GC(stable)
	}
	cells := 0
	for _, byName := range r.Cells[m.Key] {
		for e, c := range byName {
			if c.Empty() {
				delete(byName, e)
			}
		}
		cells += len(byName)
	}
	if r.sim.DropEmpty && k.Empty() && cells == 0 {
		delete(r.Keys, m.Key)
		delete(r.Cells, m.Key)
	}
	return true
}

func (r *Replica) resetElems(k *crdt.Key, key string, t crdt.Type, ev *crdt.Event, op *crdt.Op, stable crdt.Clock) {
	shares := map[string][]crdt.Share{}
	if crdt.HasCounters(t) {
		for _, es := range op.Elems {
			shares[string(es.Elem)] = es.Shares
			// The increments the removal saw may not have arrived: their
			// baselines wait for them (as the materializer stores them).
			r.cell(key, t, es.Elem, true)
		}
	}
	for e, c := range r.Cells[key][t] {
		before, after := k.ResetElem(c, ev, shares[e], stable)
		addLen(k, t, before, after)
	}
}

func addLen(k *crdt.Key, t crdt.Type, before, after bool) {
	switch {
	case before && !after:
		k.AddLen(t, -1)
	case !before && after:
		k.AddLen(t, 1)
	}
}

// Members returns the live elements of key's collection type t, sorted.
func (r *Replica) Members(key string, t crdt.Type) []string {
	var out []string
	for e, c := range r.Cells[key][t] {
		if c.Live() {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// GCAll runs Key.GC and Cell.GC on every key and element with its
// partition's stable clock, and drops the elements left empty.
func (r *Replica) GCAll() {
	for name, k := range r.Keys {
		st := r.StableFor(name)
		k.GC(st)
		for _, cells := range r.Cells[name] {
			for e, c := range cells {
				if c.GC(st); c.Empty() {
					delete(cells, e)
				}
			}
		}
	}
}

// View is what reads of one key answer at one time.
type View struct {
	Type     crdt.Type
	Value    string // GET, when Type is string
	ExpireAt int64  // Key.Expiry
	Owner    crdt.ReplicaID
	Members  string // the visible collection's live elements, with values
	Lens     [crdt.TypeList + 1]int64
}

// View returns the visible state of key at time now (ms).
func (r *Replica) View(key string, now int64) View {
	k := r.Key(key)
	v := View{Type: k.Type(now)}
	for t := crdt.TypeHash; t <= crdt.TypeList; t++ {
		v.Lens[t] = k.Len(t)
	}
	if b, ok := k.String(now); ok {
		v.Value = string(b)
	}
	v.ExpireAt, v.Owner = k.Expiry()
	if v.Type != crdt.TypeString && v.Type != crdt.TypeNone {
		var b strings.Builder
		for _, e := range r.Members(key, v.Type) {
			val, _ := r.Cells[key][v.Type][e].Value()
			fmt.Fprintf(&b, "%q=%q ", e, val)
		}
		v.Members = b.String()
	}
	return v
}
