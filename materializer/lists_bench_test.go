package materializer

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/georep/georep/crdt"
)

// List commands cost the same at the ends of a 1,000,000-element list as
// of a 10-element one, and reach the middle of a long list in O(log n)
// (the order-statistics index, crdt/LISTS.md). BenchmarkListRatio measures
// through Badger, interleaving the sizes round by round (so a busy machine
// slows both alike):
//
//   - apply: events applied by the apply loop (decode, crdt.ApplyList on the
//     batch's record cache, one Badger transaction per 256 events, state on
//     disk); the events are planned beforehand on a copy-on-write view.
//   - update: writes through Node.Update (Tx.List on the view with the
//     effects in flight, the effect, produce to an embedded Kafka, apply,
//     acknowledgement), 256 in flight.
//   - read: LINDEX and LRANGE in a View (Snapshot.List on a Badger read
//     transaction).
//
// Pushes and pops come in pairs that keep the length (RPUSH+RPOP,
// LPUSH+LPOP, RPUSH+LPOP); ns/op is per command (half a pair). The
// 1,000,000-element lists are built with pushes of 1000 values.
//
//	go test ./materializer -run XXX -bench ListRatio -benchtime 1x -timeout 1h -v
//
// GEOREP_BENCH_SIZES overrides the sizes ("10,1000000").
func BenchmarkListRatio(b *testing.B) {
	const rounds, perRound = 15, 256
	sizes := benchSizes()
	samples := map[string][]float64{} // "path/op/size" -> ns per command
	record := func(name string, d time.Duration, cmds int) {
		samples[name] = append(samples[name], float64(d.Nanoseconds())/float64(cmds))
	}
	keyOf := func(size int) []byte { return []byte(fmt.Sprintf("list-%d", size)) }

	// Direct apply.
	an := newBenchNode(b)
	an.topics = []string{"own"} // one region: pops' tombstones are collected, as on a one-region node
	f := newFeeder(an)
	ap := &listPlanner{n: an}
	for _, size := range sizes {
		for i := 0; i < size; {
			vals := make([][]byte, 0, 1000)
			for ; i < size && len(vals) < 1000; i++ {
				vals = append(vals, fmt.Appendf(nil, "v%09d", i))
			}
			f.apply(b, 1, ap.plan(b, keyOf(size), 1, func(l *crdt.List) ([]crdt.Op, error) {
				return l.AppendPush(nil, false, vals...)
			})...)
		}
	}
	settle(b, an)

	// Through Update.
	un := newBenchKafkaNode(b)
	ctx := context.Background()
	for _, size := range sizes {
		for i := 0; i < size; {
			vals := make([][]byte, 0, 1000)
			for ; i < size && len(vals) < 1000; i++ {
				vals = append(vals, fmt.Appendf(nil, "v%09d", i))
			}
			ack := listWrite(b, un, keyOf(size), func(l *crdt.List) ([]crdt.Op, error) { return l.AppendPush(nil, false, vals...) })
			if err := ack.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	settle(b, un)

	type cmd struct {
		name  string
		steps []func(l *crdt.List, size int) ([]crdt.Op, error) // one write each
	}
	push := func(left bool) func(*crdt.List, int) ([]crdt.Op, error) {
		return func(l *crdt.List, _ int) ([]crdt.Op, error) { return l.AppendPush(nil, left, []byte("x")) }
	}
	pop := func(left bool) func(*crdt.List, int) ([]crdt.Op, error) {
		return func(l *crdt.List, _ int) ([]crdt.Op, error) {
			var id crdt.ElemID
			var ok bool
			var err error
			if left {
				id, ok, err = l.First()
			} else {
				id, ok, err = l.Last()
			}
			if err != nil || !ok {
				return nil, fmt.Errorf("pop: empty list (%v)", err)
			}
			return []crdt.Op{crdt.ListRemOp(id)}, nil
		}
	}
	lsetMid := func(l *crdt.List, size int) ([]crdt.Op, error) {
		id, _, ok, err := l.At(int64(size / 2))
		if err != nil || !ok {
			return nil, fmt.Errorf("LSET: no element %d (%v)", size/2, err)
		}
		return []crdt.Op{crdt.ListSetOp(id, []byte("y"))}, nil
	}
	writes := []cmd{
		{"RPUSH+RPOP", []func(*crdt.List, int) ([]crdt.Op, error){push(false), pop(false)}},
		{"LPUSH+LPOP", []func(*crdt.List, int) ([]crdt.Op, error){push(true), pop(true)}},
		{"RPUSH+LPOP", []func(*crdt.List, int) ([]crdt.Op, error){push(false), pop(true)}},
		{"LSET-middle", []func(*crdt.List, int) ([]crdt.Op, error){lsetMid}},
	}
	reads := []struct {
		name string
		fn   func(l *crdt.List, size int) error
	}{
		{"LINDEX-middle", func(l *crdt.List, size int) error {
			_, _, ok, err := l.At(int64(size / 2))
			if err == nil && !ok {
				err = fmt.Errorf("LINDEX: no element %d", size/2)
			}
			return err
		}},
		{"LRANGE-middle-10", func(l *crdt.List, size int) error {
			c := 0
			err := l.Range(int64(size/2), false, func(crdt.ElemID, []byte) bool { c++; return c < 10 })
			if err == nil && c != min(10, size-size/2) {
				err = fmt.Errorf("LRANGE: %d elements", c)
			}
			return err
		}},
	}

	for r := 0; r < rounds; r++ {
		for _, c := range writes {
			for _, size := range sizes {
				key := keyOf(size)
				cmds := perRound * len(c.steps)
				// apply: plan the round's events, then time their apply.
				var evs []*crdt.Event
				for i := 0; i < perRound; i++ {
					for _, st := range c.steps {
						evs = append(evs, ap.plan(b, key, 1, func(l *crdt.List) ([]crdt.Op, error) { return st(l, size) })...)
					}
				}
				start := time.Now()
				f.apply(b, 256, evs...)
				record(fmt.Sprintf("apply/%s/%d", c.name, size), time.Since(start), cmds)

				start = time.Now()
				var acks []*Ack
				for i := 0; i < perRound; i++ {
					for _, st := range c.steps {
						acks = append(acks, listWrite(b, un, key, func(l *crdt.List) ([]crdt.Op, error) { return st(l, size) }))
					}
				}
				for _, a := range acks {
					if err := a.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
				record(fmt.Sprintf("update/%s/%d", c.name, size), time.Since(start), cmds)
			}
		}
		for _, rd := range reads {
			for _, size := range sizes {
				key := keyOf(size)
				start := time.Now()
				for i := 0; i < perRound; i++ {
					err := an.View(ctx, func(s *Snapshot) error {
						l, err := s.List(key)
						if err != nil {
							return err
						}
						return rd.fn(l, size)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				record(fmt.Sprintf("read/%s/%d", rd.name, size), time.Since(start), perRound)
			}
		}
	}
	// The lists kept their lengths.
	for _, n := range []*Node{an, un} {
		for _, size := range sizes {
			err := n.View(ctx, func(s *Snapshot) error {
				l, err := s.List(keyOf(size))
				if err == nil && l.Len() != int64(size) {
					err = fmt.Errorf("list of %d has %d elements", size, l.Len())
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	best := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[0]
	}
	names := []string{}
	for _, c := range writes {
		names = append(names, "apply/"+c.name, "update/"+c.name)
	}
	for _, rd := range reads {
		names = append(names, "read/"+rd.name)
	}
	for _, name := range names {
		small := samples[fmt.Sprintf("%s/%d", name, sizes[0])]
		large := samples[fmt.Sprintf("%s/%d", name, sizes[len(sizes)-1])]
		b.Logf("%-24s size=%-8d median %8.0f ns/cmd  best %8.0f | size=%-8d median %8.0f  best %8.0f | ratio of medians %.2f, of bests %.2f",
			name, sizes[0], med(small), best(small), sizes[len(sizes)-1], med(large), best(large),
			med(large)/med(small), best(large)/best(small))
		b.ReportMetric(med(large)/med(small), name+"-ratio")
	}
}

// listPlanner plans list writes for direct apply: each event is planned
// on a copy-on-write view of the applied state plus the events planned
// since the last apply (as the write path does), and stamped.
type listPlanner struct {
	n   *Node
	seq uint64
	// key's view: applied state plus the planned events (all of them are
	// applied before the next plan, and nothing else writes key)
	key string
	cow *cowKV
	k   *crdt.Key
}

// plan returns the events of count writes planned by fn on key.
func (p *listPlanner) plan(b testing.TB, key []byte, count int, fn func(l *crdt.List) ([]crdt.Op, error)) []*crdt.Event {
	b.Helper()
	if p.cow == nil || p.key != string(key) || p.stale() {
		p.reset(b, key)
	}
	var out []*crdt.Event
	for i := 0; i < count; i++ {
		l, err := crdt.OpenList(p.cow)
		if err != nil {
			b.Fatal(err)
		}
		ops, err := fn(l)
		if err != nil {
			b.Fatal(err)
		}
		p.seq++
		ev := &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: p.seq}, HLC: crdt.MakeHLC(1_700_000_000_000, uint16(p.seq)),
			Key: key, Observed: p.k.VV.Clone(), Ops: ops}
		p.k.Apply(ev, nil)
		if err := crdt.ApplyList(p.cow, p.k, ev, crdt.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// stale reports whether the view has grown big enough to be read afresh
// (every planned event is applied by the time plan is called again).
func (p *listPlanner) stale() bool { return len(p.cow.m) > 1<<16 }

func (p *listPlanner) reset(b testing.TB, key []byte) {
	b.Helper()
	if p.cow != nil {
		p.cow.drop()
	}
	txn := p.n.db.NewTransaction(false)
	k, err := getKey(txn, key)
	if err != nil {
		b.Fatal(err)
	}
	if k == nil {
		k = &crdt.Key{}
	}
	p.key, p.cow, p.k = string(key), newCowKV(txn, key), k
}

// newBenchKafkaNode runs a node on an embedded Kafka, state on disk.
func newBenchKafkaNode(b *testing.B) *Node {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	n, err := New(Config{
		Region: "us", InstanceID: 1, Brokers: c.ListenAddrs(), Partitions: 4, DataDir: b.TempDir(),
		FetchMaxWait: 10 * time.Millisecond, WriteTimeout: 60 * time.Second,
	}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-n.Ready():
	case err := <-done:
		b.Fatal(err)
	case <-time.After(30 * time.Second):
		b.Fatal("node not ready")
	}
	return n
}

// listWrite plans one write on key's list through Update.
func listWrite(b *testing.B, n *Node, key []byte, fn func(l *crdt.List) ([]crdt.Op, error)) *Ack {
	b.Helper()
	ack, err := n.Update(context.Background(), [][]byte{key}, func(tx *Tx) error {
		l, err := tx.List(key)
		if err != nil {
			return err
		}
		ops, err := fn(l)
		if err != nil {
			return err
		}
		tx.Emit(key, ops...)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return ack
}
