package crdt

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// A small simulation of regions sharing one list key, the way the
// materializer and the server will use the list: each region keeps its Key
// and a KV, plans a command's ops on its list, stamps the event (dot, HLC,
// observed context) and applies it, and receives the others' events with
// per-origin FIFO delivery, any interleaving across origins, and duplicates.

const listKey = "L"

type lsim struct {
	now     int64
	reps    []*lrep
	queues  map[[2]ReplicaID][]*Event // (from, to) -> undelivered, in order
	sent    map[[2]ReplicaID][]*Event // (from, to) -> delivered (for duplicates)
	regions int                       // ListOptions.Regions (0: no collection)
	check   bool                      // check invariants after every event
	noMerge bool                      // receiving does not advance a region's HLC
	opt     ListOptions               // node sizes
}

type lrep struct {
	sim    *lsim
	skew   int64 // wall clock offset (ms)
	id     ReplicaID
	k      *Key
	kv     *memKV
	seq    uint64
	hlc    HLC
	stable Clock
}

func newLSim(n, regions int) *lsim {
	s := &lsim{now: 1_700_000_000_000, queues: map[[2]ReplicaID][]*Event{}, sent: map[[2]ReplicaID][]*Event{}, regions: regions, check: true}
	for i := 1; i <= n; i++ {
		s.reps = append(s.reps, &lrep{sim: s, id: ReplicaID(i), k: &Key{}, kv: newMemKV()})
	}
	return s
}

func (s *lsim) r(id int) *lrep { return s.reps[id-1] }

func (r *lrep) open(t tb) *List {
	t.Helper()
	l, err := OpenList(r.kv)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// emit stamps ops as one event of r, applies it and queues it to the others.
func (r *lrep) emit(t tb, ops []Op) *Event {
	t.Helper()
	if len(ops) == 0 {
		return nil
	}
	r.sim.now++
	r.seq++
	r.hlc = NextHLC(r.hlc, r.sim.now+r.skew)
	ev := &Event{Dot: Dot{Origin: r.id, Seq: r.seq}, HLC: r.hlc, Key: []byte(listKey), Observed: r.k.VV.Clone(), Ops: ops}
	if !r.receive(t, ev) {
		t.Fatal("origin did not apply its own event")
	}
	for _, o := range r.sim.reps {
		if o != r {
			l := [2]ReplicaID{r.id, o.id}
			r.sim.queues[l] = append(r.sim.queues[l], ev)
		}
	}
	return ev
}

// receive applies ev as the materializer does; false for a duplicate.
func (r *lrep) receive(t tb, ev *Event) bool {
	t.Helper()
	r.stable = r.stable.Clone().With(ev.Dot.Origin, ev.Dot.Seq)
	stable := r.stable.Clone()
	if ev.HLC > r.hlc && !r.sim.noMerge {
		r.hlc = ev.HLC
	}
	if !r.k.Apply(ev, stable) {
		return false
	}
	list := false
	for i := range ev.Ops {
		list = list || IsListOp(&ev.Ops[i])
	}
	if list {
		if err := ApplyList(r.kv, r.k, ev, ListOptions{Stable: stable, Regions: r.sim.regions, leafMax: r.sim.opt.leafMax, kidsMax: r.sim.opt.kidsMax}); err != nil {
			t.Fatal(err)
		}
	}
	r.k.GC(stable)
	if r.sim.check {
		r.checkInvariants(t)
	}
	return true
}

// deliver delivers the next event on link (from, to); false if none.
func (s *lsim) deliver(t tb, from, to ReplicaID) bool {
	t.Helper()
	l := [2]ReplicaID{from, to}
	q := s.queues[l]
	if len(q) == 0 {
		return false
	}
	s.queues[l] = q[1:]
	s.sent[l] = append(s.sent[l], q[0])
	s.r(int(to)).receive(t, q[0])
	return true
}

// sync delivers everything.
func (s *lsim) sync(t tb) {
	t.Helper()
	for {
		any := false
		for _, a := range s.reps {
			for _, b := range s.reps {
				if a != b {
					for s.deliver(t, a.id, b.id) {
						any = true
					}
				}
			}
		}
		if !any {
			return
		}
	}
}

// syncTo delivers everything queued for replica to.
func (s *lsim) syncTo(t tb, to ReplicaID) {
	for _, a := range s.reps {
		if a.id != to {
			for s.deliver(t, a.id, to) {
			}
		}
	}
}

func strs(vs ...string) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = []byte(v)
	}
	return out
}

// The commands, evaluated at the origin as the server will.

func (r *lrep) items(t tb) []string {
	t.Helper()
	l := r.open(t)
	out := []string{}
	if l.Len() == 0 {
		return out
	}
	if err := l.Range(0, false, func(_ ElemID, v []byte) bool { out = append(out, string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *lrep) push(t tb, left bool, vs ...string) int64 {
	t.Helper()
	ops, err := r.open(t).AppendPush(nil, left, strs(vs...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.emit(t, ops)
	return r.open(t).Len()
}

func (r *lrep) lpush(t tb, vs ...string) int64 { t.Helper(); return r.push(t, true, vs...) }
func (r *lrep) rpush(t tb, vs ...string) int64 { t.Helper(); return r.push(t, false, vs...) }

// ends returns up to n elements from the head (or the tail) and their
// values.
func (r *lrep) ends(t tb, l *List, left bool, n int64) ([]ElemID, []string) {
	t.Helper()
	var ids []ElemID
	var vs []string
	if l.Len() == 0 || n <= 0 {
		return nil, nil
	}
	start := int64(0)
	if !left {
		start = l.Len() - 1
	}
	if err := l.Range(start, !left, func(id ElemID, v []byte) bool {
		ids = append(ids, id)
		vs = append(vs, string(v))
		return int64(len(ids)) < n
	}); err != nil {
		t.Fatal(err)
	}
	return ids, vs
}

func (r *lrep) pop(t tb, left bool, n int64) []string {
	t.Helper()
	ids, vs := r.ends(t, r.open(t), left, n)
	var ops []Op
	for _, id := range ids {
		ops = append(ops, ListRemOp(id))
	}
	r.emit(t, ops)
	return vs
}

func (r *lrep) find(t tb, l *List, v string) (ElemID, bool) {
	t.Helper()
	var found ElemID
	ok := false
	if l.Len() > 0 {
		if err := l.Range(0, false, func(id ElemID, x []byte) bool {
			if string(x) == v {
				found, ok = id, true
			}
			return !ok
		}); err != nil {
			t.Fatal(err)
		}
	}
	return found, ok
}

func (r *lrep) linsert(t tb, before bool, pivot, v string) int64 {
	t.Helper()
	l := r.open(t)
	if l.Len() == 0 {
		return 0
	}
	id, ok := r.find(t, l, pivot)
	if !ok {
		return -1
	}
	ops, err := l.AppendInsertAt(nil, id, !before, []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	r.emit(t, ops)
	return r.open(t).Len()
}

func (r *lrep) lset(t tb, i int64, v string) bool {
	t.Helper()
	l := r.open(t)
	if i < 0 {
		i += l.Len()
	}
	id, _, ok, err := l.At(i)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return false
	}
	r.emit(t, []Op{ListSetOp(id, []byte(v))})
	return true
}

func (r *lrep) lrem(t tb, count int64, v string) int64 {
	t.Helper()
	l := r.open(t)
	if l.Len() == 0 {
		return 0
	}
	var ops []Op
	start, rev := int64(0), false
	if count < 0 {
		start, rev, count = l.Len()-1, true, -count
	}
	if err := l.Range(start, rev, func(id ElemID, x []byte) bool {
		if string(x) == v {
			ops = append(ops, ListRemOp(id))
		}
		return count == 0 || int64(len(ops)) < count
	}); err != nil {
		t.Fatal(err)
	}
	r.emit(t, ops)
	return int64(len(ops))
}

func (r *lrep) ltrim(t tb, start, stop int64) {
	t.Helper()
	l := r.open(t)
	n := l.Len()
	lo, hi := redisRange(start, stop, n)
	var ops []Op
	i := int64(0)
	if n > 0 {
		if err := l.Range(0, false, func(id ElemID, _ []byte) bool {
			if i < lo || i > hi {
				ops = append(ops, ListRemOp(id))
			}
			i++
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	r.emit(t, ops)
}

// lmove moves an element from one end of the list to an end of the same
// list (LMOVE L L from to) in one event.
func (r *lrep) lmove(t tb, fromLeft, toLeft bool) (string, bool) {
	t.Helper()
	l := r.open(t)
	ids, vs := r.ends(t, l, fromLeft, 1)
	if len(ids) == 0 {
		return "", false
	}
	ops, err := l.AppendPush([]Op{ListRemOp(ids[0])}, toLeft, []byte(vs[0]))
	if err != nil {
		t.Fatal(err)
	}
	r.emit(t, ops)
	return vs[0], true
}

func (r *lrep) del(t tb) int {
	t.Helper()
	if r.open(t).Len() == 0 {
		return 0
	}
	r.emit(t, []Op{{Kind: OpDelete}})
	return 1
}

// redisRange normalizes a Redis [start, stop] range over n elements; lo >
// hi when it is empty.
func redisRange(start, stop, n int64) (lo, hi int64) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= n {
		return 1, 0
	}
	if stop >= n {
		stop = n - 1
	}
	return start, stop
}

// checkInvariants checks r's list: the index against the anchor tree's
// in-order walk (removed elements included), sibling order, lengths, and the
// element records.
func (r *lrep) checkInvariants(t tb) {
	t.Helper()
	l := r.open(t)
	ids, live, err := l.idx.check()
	if err != nil {
		t.Fatalf("replica %d index: %v", r.id, err)
	}
	var walk []ElemID
	var visit func(x ElemID, depth int)
	visit = func(x ElemID, depth int) {
		if depth > 100000 {
			t.Fatal("anchor tree too deep (cycle?)")
		}
		for _, before := range []bool{true, false} {
			ks := l.children(x, before).list
			for i, k := range ks {
				if i > 0 && !sibBefore(before, ks[i-1], k) {
					t.Fatalf("replica %d: children of %v not in order: %v", r.id, x, ks)
				}
				e := l.elem(k.child)
				if e == nil || !e.has(eIndexed) || e.anchor != x || e.has(eBefore) != before || e.counter != k.counter || e.slot != k.slot {
					t.Fatalf("replica %d: child %v of %v has record %+v, entry %+v", r.id, k.child, x, e, k)
				}
			}
			if before {
				for _, k := range ks {
					visit(k.child, depth+1)
				}
				if !x.IsHead() {
					walk = append(walk, x)
				}
			} else {
				for _, k := range ks {
					visit(k.child, depth+1)
				}
			}
		}
	}
	visit(ElemID{}, 0)
	if !reflect.DeepEqual(walk, ids) && !(len(walk) == 0 && len(ids) == 0) {
		t.Fatalf("replica %d: index order %v, tree walk %v", r.id, ids, walk)
	}
	var n int64
	for i, id := range ids {
		e := l.elem(id)
		if e == nil || e.live() != live[i] {
			t.Fatalf("replica %d: element %v record %+v, index live %v", r.id, id, e, live[i])
		}
		if live[i] {
			n++
			if _, ok := l.val(id).c.Value(); !ok {
				t.Fatalf("replica %d: live element %v has no value", r.id, id)
			}
		}
	}
	if n != l.Len() || r.k.Len(TypeList) != n {
		t.Fatalf("replica %d: %d live, Len %d, Key.Len %d", r.id, n, l.Len(), r.k.Len(TypeList))
	}
}

// checkCollected checks that every removed element still placed is kept
// for its children (when every region has written since the removals).
func (r *lrep) checkCollected(t tb) {
	t.Helper()
	l := r.open(t)
	ids, live, err := l.idx.check()
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if live[i] {
			continue
		}
		e := l.elem(id)
		n := len(l.children(id, true).list) + len(l.children(id, false).list)
		if !e.has(eKept) || n < 2 {
			t.Fatalf("replica %d: tombstone %v (%d children, flags %b) not collected", r.id, id, n, e.flags)
		}
	}
}

// lcmd is one random list command.
type lcmd struct {
	kind                     string
	vs                       []string
	count, index, lo, hi     int64
	pivot                    string
	before, left, fromL, toL bool
}

func drawCmd(t *rapid.T, vals []string, del bool) lcmd {
	kinds := []string{"lpush", "rpush", "lpush", "rpush", "pop", "pop", "linsert", "lset", "lrem", "ltrim", "lmove", "lindex"}
	if del {
		kinds = append(kinds, "del")
	}
	c := lcmd{kind: rapid.SampledFrom(kinds).Draw(t, "cmd")}
	v := rapid.SampledFrom(vals)
	switch c.kind {
	case "lpush", "rpush":
		c.vs = rapid.SliceOfN(v, 1, 4).Draw(t, "vs")
	case "pop":
		c.left = rapid.Bool().Draw(t, "left")
		c.count = int64(rapid.IntRange(1, 3).Draw(t, "count"))
	case "linsert":
		c.before = rapid.Bool().Draw(t, "before")
		c.pivot = v.Draw(t, "pivot")
		c.vs = []string{v.Draw(t, "v")}
	case "lset":
		c.index = int64(rapid.IntRange(-4, 4).Draw(t, "index"))
		c.vs = []string{v.Draw(t, "v")}
	case "lrem":
		c.count = int64(rapid.IntRange(-2, 2).Draw(t, "count"))
		c.vs = []string{v.Draw(t, "v")}
	case "ltrim":
		c.lo = int64(rapid.IntRange(-5, 5).Draw(t, "start"))
		c.hi = int64(rapid.IntRange(-5, 5).Draw(t, "stop"))
	case "lmove":
		c.fromL, c.toL = rapid.Bool().Draw(t, "from"), rapid.Bool().Draw(t, "to")
	}
	return c
}

// model applies c to m as Redis does and returns the new list and reply.
func (c lcmd) model(m []string) ([]string, string) {
	m = append([]string(nil), m...)
	switch c.kind {
	case "lpush":
		for _, x := range c.vs {
			m = append([]string{x}, m...)
		}
		return m, fmt.Sprint(len(m))
	case "rpush":
		m = append(m, c.vs...)
		return m, fmt.Sprint(len(m))
	case "pop":
		var out []string
		for j := int64(0); j < c.count && len(m) > 0; j++ {
			if c.left {
				out, m = append(out, m[0]), m[1:]
			} else {
				out, m = append(out, m[len(m)-1]), m[:len(m)-1]
			}
		}
		return m, fmt.Sprintf("%q", out)
	case "linsert":
		if len(m) == 0 {
			return m, "0"
		}
		for j, x := range m {
			if x == c.pivot {
				if !c.before {
					j++
				}
				m = append(m[:j], append([]string{c.vs[0]}, m[j:]...)...)
				return m, fmt.Sprint(len(m))
			}
		}
		return m, "-1"
	case "lset":
		j := c.index
		if j < 0 {
			j += int64(len(m))
		}
		if j < 0 || j >= int64(len(m)) {
			return m, "ERR"
		}
		m[j] = c.vs[0]
		return m, "OK"
	case "lrem":
		var n int64
		var out []string
		if c.count >= 0 {
			for _, x := range m {
				if x == c.vs[0] && (c.count == 0 || n < c.count) {
					n++
					continue
				}
				out = append(out, x)
			}
		} else {
			for j := len(m) - 1; j >= 0; j-- {
				if m[j] == c.vs[0] && n < -c.count {
					n++
					continue
				}
				out = append([]string{m[j]}, out...)
			}
		}
		return out, fmt.Sprint(n)
	case "ltrim":
		lo, hi := redisRange(c.lo, c.hi, int64(len(m)))
		if lo > hi {
			return nil, "OK"
		}
		return m[lo : hi+1], "OK"
	case "lmove":
		if len(m) == 0 {
			return m, "nil"
		}
		var x string
		if c.fromL {
			x, m = m[0], m[1:]
		} else {
			x, m = m[len(m)-1], m[:len(m)-1]
		}
		if c.toL {
			m = append([]string{x}, m...)
		} else {
			m = append(m, x)
		}
		return m, x
	case "lindex":
		return m, fmt.Sprintf("%q", m)
	case "del":
		return nil, fmt.Sprint(min(len(m), 1))
	}
	panic(c.kind)
}

// run executes c at region r and returns the reply.
func (c lcmd) run(t tb, r *lrep) string {
	switch c.kind {
	case "lpush":
		return fmt.Sprint(r.lpush(t, c.vs...))
	case "rpush":
		return fmt.Sprint(r.rpush(t, c.vs...))
	case "pop":
		return fmt.Sprintf("%q", r.pop(t, c.left, c.count))
	case "linsert":
		return fmt.Sprint(r.linsert(t, c.before, c.pivot, c.vs[0]))
	case "lset":
		if r.lset(t, c.index, c.vs[0]) {
			return "OK"
		}
		return "ERR"
	case "lrem":
		return fmt.Sprint(r.lrem(t, c.count, c.vs[0]))
	case "ltrim":
		r.ltrim(t, c.lo, c.hi)
		return "OK"
	case "lmove":
		if x, ok := r.lmove(t, c.fromL, c.toL); ok {
			return x
		}
		return "nil"
	case "lindex":
		l := r.open(t)
		var out []string
		for j := int64(0); j < l.Len(); j++ {
			_, x, ok, err := l.At(j)
			if err != nil || !ok {
				t.Fatalf("LINDEX %d: %v %v", j, ok, err)
			}
			out = append(out, string(x))
		}
		return fmt.Sprintf("%q", out)
	case "del":
		return fmt.Sprint(r.del(t))
	}
	panic(c.kind)
}

// runChecked runs c at r and checks reply and list against Redis applied
// to r's list as it was.
func runChecked(t *rapid.T, r *lrep, c lcmd) {
	before := r.items(t)
	want, wantReply := c.model(before)
	got := c.run(t, r)
	if got != wantReply {
		t.Fatalf("region %d %+v on %q: reply %s, want %s", r.id, c, before, got, wantReply)
	}
	if after := r.items(t); fmt.Sprint(after) != fmt.Sprint(append([]string{}, want...)) {
		t.Fatalf("region %d %+v on %q: list %q, want %q", r.id, c, before, after, want)
	}
	if len(want) > 0 && r.k.Type(0) != TypeList || len(want) == 0 && r.k.Type(0) != TypeNone {
		t.Fatalf("region %d: TYPE %v with %d elements", r.id, r.k.Type(0), len(want))
	}
}

// TestList_SingleReplicaIsRedis runs random commands on one region and
// compares every reply and the list with a slice that follows Redis.
func TestList_SingleReplicaIsRedis(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newLSim(1, rapid.IntRange(0, 1).Draw(t, "regions"))
		r := s.r(1)
		vals := []string{"a", "b", "c", "d", ""}
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			runChecked(t, r, drawCmd(t, vals, true))
		}
		if s.regions == 1 {
			r.checkCollected(t)
			if r.open(t).Len() == 0 {
				if n := len(r.kv.m); n != 0 {
					var keys []string
					for k := range r.kv.m {
						keys = append(keys, fmt.Sprintf("%q", k))
					}
					sort.Strings(keys)
					t.Fatalf("empty list left %d records: %s", n, strings.Join(keys, " "))
				}
			}
		}
	})
}

// TestList_Convergence runs random commands on three regions with random
// delivery (per-origin FIFO, any interleaving, duplicates), then syncs:
// every region must hold the same list, with or without collection. Every
// command also behaves as in Redis on the list its region sees.
func TestList_Convergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		regions := rapid.SampledFrom([]int{0, 3}).Draw(t, "regions")
		s := newLSim(3, regions)
		vals := []string{"a", "b", "c", "d"}
		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			if rapid.IntRange(0, 2).Draw(t, "deliver") == 0 {
				for n := rapid.IntRange(1, 4).Draw(t, "deliveries"); n > 0; n-- {
					from := ReplicaID(rapid.IntRange(1, 3).Draw(t, "from"))
					to := ReplicaID(rapid.IntRange(1, 3).Draw(t, "to"))
					if from == to {
						continue
					}
					l := [2]ReplicaID{from, to}
					if sent := s.sent[l]; len(sent) > 0 && rapid.IntRange(0, 4).Draw(t, "dup") == 0 {
						if s.r(int(to)).receive(t, sent[rapid.IntRange(0, len(sent)-1).Draw(t, "which")]) {
							t.Fatal("a duplicate was applied")
						}
						continue
					}
					s.deliver(t, from, to)
				}
				continue
			}
			r := s.r(rapid.IntRange(1, 3).Draw(t, "region"))
			runChecked(t, r, drawCmd(t, vals, rapid.IntRange(0, 5).Draw(t, "rare") == 0))
		}
		s.sync(t)
		want := s.r(1).items(t)
		for _, r := range s.reps[1:] {
			if got := r.items(t); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("region %d has %q, region 1 %q", r.id, got, want)
			}
		}
		// Every region writes once more and syncs twice: each then knows
		// that every other has seen every removal, and collects it.
		for round := 0; round < 2; round++ {
			for _, r := range s.reps {
				r.rpush(t, "z")
			}
			s.sync(t)
		}
		want = s.r(1).items(t)
		for _, r := range s.reps {
			if got := r.items(t); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("region %d has %q, region 1 %q", r.id, got, want)
			}
			if regions > 0 {
				r.checkCollected(t)
			}
		}
	})
}

func wantList(t *testing.T, want string, rs ...*lrep) {
	t.Helper()
	for _, r := range rs {
		if got := strings.Join(r.items(t), " "); got != want {
			t.Errorf("region %d: LRANGE 0 -1 = %q, want %q", r.id, got, want)
		}
	}
}
