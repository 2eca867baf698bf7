package crdt_test

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/crdt/crdttest"
)

const t0 = 1_700_000_000_000 // a realistic "now" in ms

var (
	simKeys    = []string{"a", "b", "c"}
	simValues  = []string{"x", "y", "", "10", "-3", "0", "1.5", "abc", "9223372036854775807", "007", "1e3"}
	simFloats  = []string{"0.1", "-0.1", "1.5", "3", "1e3", "0.3333333333333333", "-2.5", "1e-10", "123456789.123456789", "-0"}
	simAppends = []string{"z", "1", "0", ".5"}
	simMembers = []string{"m", "n", ""}
)

// features says which commands a random program may use and how the
// simulation runs.
type features struct {
	gc          bool // pass stable clocks to Apply
	mergeHLC    bool // HLC receive rule
	partitions  bool // one partition per key instead of one for all
	skew        bool // per-replica clock skew up to ±10 s
	counters    bool // INCRBY, INCRBYFLOAT
	ttl         bool // SET PX, PEXPIRE, PERSIST, active expiry
	collections bool // SADD, SREM, HSET, HDEL (type conflicts)
	dropEmpty   bool // delete Empty keys, dedup by stable clock (materializer storage)
}

func (f features) String() string {
	var b strings.Builder
	for _, x := range []struct {
		on   bool
		name string
	}{
		{f.gc, "gc"}, {f.mergeHLC, "mergehlc"}, {f.partitions, "partitions"}, {f.skew, "skew"},
		{f.counters, "counters"}, {f.ttl, "ttl"}, {f.collections, "collections"}, {f.dropEmpty, "dropempty"},
	} {
		if x.on {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(x.name)
		}
	}
	return b.String()
}

func newSim(t *rapid.T, f features) *crdttest.Sim {
	s := crdttest.New(3, t0)
	s.GC, s.MergeHLC, s.DropEmpty = f.gc, f.mergeHLC, f.dropEmpty
	if f.partitions {
		s.Partition = func(k string) int { return int(k[0]) }
	}
	if f.skew {
		for _, r := range s.Replicas {
			r.Skew = rapid.Int64Range(-10_000, 10_000).Draw(t, "skew")
		}
	}
	return s
}

func pick(t *rapid.T, label string) func(int) int {
	return func(n int) int { return rapid.IntRange(0, n-1).Draw(t, label) }
}

// command runs one random command at replica r.
func command(t *rapid.T, r *crdttest.Replica, f features) {
	key := rapid.SampledFrom(simKeys).Draw(t, "key")
	cmds := []string{"set", "append", "del", "set"}
	if f.counters {
		cmds = append(cmds, "incrby", "incrbyfloat", "incrby")
	}
	if f.ttl {
		cmds = append(cmds, "setpx", "setkeepttl", "pexpire", "persist", "activeexpire")
	}
	if f.collections {
		cmds = append(cmds, "sadd", "srem", "hset", "hdel")
	}
	switch c := rapid.SampledFrom(cmds).Draw(t, "cmd"); c {
	case "set":
		r.Set(key, rapid.SampledFrom(simValues).Draw(t, "value"), 0, false)
	case "setkeepttl":
		r.Set(key, rapid.SampledFrom(simValues).Draw(t, "value"), 0, true)
	case "setpx":
		r.Set(key, rapid.SampledFrom(simValues).Draw(t, "value"), rapid.Int64Range(1, 5000).Draw(t, "px"), false)
	case "append":
		_, _ = r.Append(key, rapid.SampledFrom(simAppends).Draw(t, "suffix"))
	case "incrby":
		_, _ = r.IncrBy(key, rapid.Int64Range(-20, 20).Draw(t, "incr"))
	case "incrbyfloat":
		_, _ = r.IncrByFloat(key, rapid.SampledFrom(simFloats).Draw(t, "fincr"))
	case "del":
		r.Del(key)
	case "pexpire":
		r.PExpire(key, rapid.Int64Range(-10, 5000).Draw(t, "ms"))
	case "persist":
		r.Persist(key)
	case "activeexpire":
		r.ActiveExpire(key)
	case "sadd":
		_, _ = r.SAdd(key, rapid.SampledFrom(simMembers).Draw(t, "member"))
	case "srem":
		_, _ = r.SRem(key, rapid.SampledFrom(simMembers).Draw(t, "member"))
	case "hset":
		_, _ = r.HSet(key, rapid.SampledFrom(simMembers).Draw(t, "field"), rapid.SampledFrom(simValues).Draw(t, "value"))
	case "hdel":
		_, _ = r.HDel(key, rapid.SampledFrom(simMembers).Draw(t, "field"))
	default:
		t.Fatalf("unknown command %s", c)
	}
}

// runProgram drives a random program of commands, partial deliveries,
// duplicates, syncs and clock advances, then delivers everything. Every
// duplicate delivery is checked to be a no-op.
func runProgram(t *rapid.T, s *crdttest.Sim, f features) {
	steps := rapid.IntRange(10, 100).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		switch rapid.IntRange(0, 9).Draw(t, "step") {
		case 0, 1, 2, 3:
			command(t, s.R(crdt.ReplicaID(rapid.IntRange(1, 3).Draw(t, "replica"))), f)
		case 4, 5:
			if p := s.Pending(); len(p) > 0 {
				s.Deliver(p[pick(t, "link")(len(p))])
			}
		case 6:
			duplicate(t, s)
		case 7:
			s.Sync(pick(t, "order"))
		case 8:
			s.Now += rapid.Int64Range(0, 3000).Draw(t, "advance")
		case 9:
			// a region's expiry cycle
			if f.ttl {
				s.R(crdt.ReplicaID(rapid.IntRange(1, 3).Draw(t, "replica"))).ActiveExpire(rapid.SampledFrom(simKeys).Draw(t, "key"))
			}
		}
	}
	s.Sync(pick(t, "final"))
	if p := s.Pending(); len(p) != 0 {
		t.Fatalf("pending after sync: %v", p)
	}
}

// duplicate re-delivers an event already delivered on a random link and
// checks that Apply reports no change and the state bytes stay the same.
func duplicate(t *rapid.T, s *crdttest.Sim) {
	t.Helper()
	links := s.Links()
	if len(links) == 0 {
		return
	}
	l := links[pick(t, "duplink")(len(links))]
	i := rapid.IntRange(0, s.Delivered(l)-1).Draw(t, "dupidx")
	r := s.R(l.To)
	before := marshalAll(r)
	if s.Redeliver(l, i) {
		t.Fatalf("duplicate delivery %d on %+v changed the state", i, l)
	}
	if after := marshalAll(r); after != before {
		t.Fatalf("duplicate delivery %d on %+v changed the bytes:\n%s\n%s", i, l, before, after)
	}
}

// marshalAll encodes every key's state and element cells of r.
func marshalAll(r *crdttest.Replica) string { return marshalAllVV(r, true) }

// marshalAllVV is marshalAll, leaving each key's VV out unless withVV.
func marshalAllVV(r *crdttest.Replica, withVV bool) string {
	var b bytes.Buffer
	for _, k := range simKeys {
		st := r.Key(k)
		if !withVV {
			st = st.Clone()
			st.VV = nil
		}
		fmt.Fprintf(&b, "%s=%x\n", k, st.Marshal(nil))
		for _, t := range []crdt.Type{crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet} {
			cells := r.Cells[k][t]
			names := make([]string, 0, len(cells))
			for e := range cells {
				names = append(names, e)
			}
			sort.Strings(names)
			for _, e := range names {
				fmt.Fprintf(&b, "  %s/%d/%q=%x\n", k, t, e, crdt.MarshalCell(nil, cells[e]))
			}
		}
	}
	return b.String()
}

// checkConverged asserts identical visible state on every replica, at the
// simulation's now and well after every expiry.
func checkConverged(t *rapid.T, s *crdttest.Sim) {
	t.Helper()
	for _, now := range []int64{s.Now, s.Now + 1<<40} {
		for _, k := range simKeys {
			want := s.R(1).View(k, now)
			for _, r := range s.Replicas[1:] {
				if got := r.View(k, now); got != want {
					t.Fatalf("key %q at %d: I1 %+v, I%d %+v\nI1: %s\nI%d: %s", k, now, want, r.ID, got,
						dump(s.R(1).Key(k)), r.ID, dump(r.Key(k)))
				}
			}
		}
	}
}

// checkSameBytes asserts that every replica holds byte-identical state.
// When replicas delete Empty keys (DropEmpty), the VV of a key that was
// deleted and written again differs (a region forgot it at a different
// point): it is left out, since it is representation, not value.
func checkSameBytes(t *rapid.T, s *crdttest.Sim) {
	t.Helper()
	withVV := !s.DropEmpty
	want := marshalAllVV(s.R(1), withVV)
	for _, r := range s.Replicas[1:] {
		if got := marshalAllVV(r, withVV); got != want {
			for _, k := range simKeys {
				t.Logf("%s: I1 %s", k, dump(s.R(1).Key(k)))
				t.Logf("%s: I%d %s", k, r.ID, dump(r.Key(k)))
			}
			t.Fatalf("state bytes differ between I1 and I%d:\n%s\n%s", r.ID, want, got)
		}
	}
}

func dump(k *crdt.Key) string { return fmt.Sprintf("%+v", *k) }

// TestKey_Convergence: random programs on 3 replicas, delivered in random
// orders with duplicates, converge to the same visible state; without GC
// (stable = nil) they converge to the same bytes too, because Apply is
// order independent and every replica applied the same events.
func TestKey_Convergence(t *testing.T) {
	for _, f := range []features{
		{counters: true, ttl: true},
		{counters: true, ttl: true, skew: true, mergeHLC: true},
		{counters: true, ttl: true, skew: true, partitions: true},
		{counters: true, ttl: true, collections: true, skew: true},
	} {
		t.Run(f.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				s := newSim(t, f)
				runProgram(t, s, f)
				checkConverged(t, s)
				checkSameBytes(t, s)
			})
		})
	}
}

// TestKey_ConvergenceGC: the same with stable clocks passed to Apply, so
// tombstones and reset counter shares are collected while events are still
// in flight. Once everything is delivered and a last GC has run with the
// final stable clock (equal on every replica), every tombstone is gone and
// the states are byte-identical.
//
// Counters are left out here: collecting a reset share is unsound while its
// origin may still increment it (see TestKey_ShareGCDivergence).
func TestKey_ConvergenceGC(t *testing.T) {
	for _, f := range []features{
		{gc: true, ttl: true},
		{gc: true, ttl: true, skew: true, mergeHLC: true},
		{gc: true, ttl: true, partitions: true, skew: true},
		{gc: true, ttl: true, collections: true},
		{gc: true, ttl: true, collections: true, dropEmpty: true, skew: true},
	} {
		t.Run(f.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				s := newSim(t, f)
				runProgram(t, s, f)
				checkConverged(t, s)
				for _, r := range s.Replicas {
					r.GCAll()
				}
				checkConverged(t, s)
				checkSameBytes(t, s)
				for _, r := range s.Replicas {
					for k, st := range r.Keys {
						if st.Del != nil || st.TTLTomb != nil || st.Str.Tomb != nil || st.TypeDel != nil {
							t.Fatalf("I%d %q keeps tombstones after full GC: %s", r.ID, k, dump(st))
						}
					}
				}
			})
		})
	}
}

// TestKey_ConvergenceGCCounters is the GC variant with counters (see
// TestKey_ShareGCDivergence for the bug it once found).
func TestKey_ConvergenceGCCounters(t *testing.T) {
	f := features{gc: true, ttl: true, counters: true}
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t, f)
		runProgram(t, s, f)
		checkConverged(t, s)
	})
}

// TestKey_OrderIndependence: the events of a random program, applied to
// fresh replicas in two other random orders that keep per-origin order, and
// with duplicates, give byte-identical states (stable = nil), equal to the
// states of the simulation's own replicas.
func TestKey_OrderIndependence(t *testing.T) {
	f := features{counters: true, ttl: true, collections: true, skew: true}
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t, f)
		runProgram(t, s, f)
		want := marshalAll(s.R(1))
		for _, label := range []string{"order1", "order2"} {
			obs := s.NewObserver()
			replay(t, obs, s.Sent(), label)
			if got := marshalAll(obs); got != want {
				t.Fatalf("replay %s differs:\n%s\n%s", label, want, got)
			}
		}
	})
}

// replay applies msgs to r in a random interleaving of the origins,
// keeping each origin's order, re-applying random earlier events.
func replay(t *rapid.T, r *crdttest.Replica, msgs []*crdttest.Msg, label string) {
	byOrigin := map[crdt.ReplicaID][]*crdttest.Msg{}
	var origins []crdt.ReplicaID
	for _, m := range msgs {
		o := m.Ev.Dot.Origin
		if byOrigin[o] == nil {
			origins = append(origins, o)
		}
		byOrigin[o] = append(byOrigin[o], m)
	}
	var done []*crdttest.Msg
	for {
		var live []crdt.ReplicaID
		for _, o := range origins {
			if len(byOrigin[o]) > 0 {
				live = append(live, o)
			}
		}
		if len(live) == 0 {
			return
		}
		if len(done) > 0 && rapid.IntRange(0, 4).Draw(t, label+"dup") == 0 {
			if r.Receive(done[rapid.IntRange(0, len(done)-1).Draw(t, label+"dupidx")]) {
				t.Fatalf("duplicate applied")
			}
		}
		o := live[rapid.IntRange(0, len(live)-1).Draw(t, label)]
		m := byOrigin[o][0]
		byOrigin[o] = byOrigin[o][1:]
		if !r.Receive(m) {
			t.Fatalf("first delivery of %+v not applied", m.Ev.Dot)
		}
		done = append(done, m)
	}
}
