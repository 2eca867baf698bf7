package materializer

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/georep/georep/crdt"
)

// Collection writes cost the same whatever the collection's size: a write
// touches its element's cell (and score index entry), never the whole
// collection. The benchmarks compare one-element writes (a new element
// each: HSET, SADD, ZADD) to collections of 10 and of 1,000,000 elements,
// applied directly (the apply loop: decode, fold, one Badger transaction
// per batch) and through Node.Update (the write path: view, effect, Kafka
// on kfake, apply, acknowledgement).
//
//	go test ./materializer -run XXX -bench Collection -benchtime 20000x
//
// GEOREP_BENCH_SIZES overrides the sizes ("10,1000000").

func benchSizes() []int {
	if s := os.Getenv("GEOREP_BENCH_SIZES"); s != "" {
		var out []int
		for _, f := range splitComma(s) {
			n, err := strconv.Atoi(f)
			if err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	return []int{10, 1_000_000}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// benchKinds are the one-element writes measured.
var benchKinds = []struct {
	name string
	op   func(elem []byte, i int) crdt.Op
}{
	{"HSET", func(e []byte, i int) crdt.Op { return crdt.Op{Kind: crdt.OpHSet, Elem: e, Value: []byte("value")} }},
	{"SADD", func(e []byte, _ int) crdt.Op { return crdt.Op{Kind: crdt.OpSAdd, Elem: e} }},
	{"ZADD", func(e []byte, i int) crdt.Op {
		return crdt.Op{Kind: crdt.OpZAdd, Elem: e, Value: crdt.ScoreBytes(float64(i))}
	}},
}

func elemName(prefix string, i int) []byte { return fmt.Appendf(nil, "%s%09d", prefix, i) }

// fill gives key n elements, emitting events of up to 8192 ops through
// emit.
func fill(n int, kind int, emit func(ops []crdt.Op)) {
	for i := 0; i < n; {
		var ops []crdt.Op
		for ; i < n && len(ops) < 8192; i++ {
			ops = append(ops, benchKinds[kind].op(elemName("e", i), i))
		}
		emit(ops)
	}
}

// BenchmarkCollectionApply applies one-element write events (a batch of
// 256 per transaction, as the apply loop batches) to collections of each
// size.
func BenchmarkCollectionApply(b *testing.B) {
	n := newBenchNode(b)
	f := newFeeder(n)
	var seq uint64
	event := func(key []byte, ops []crdt.Op) *crdt.Event {
		seq++
		return &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: seq}, HLC: crdt.MakeHLC(1_700_000_000_000, uint16(seq)),
			Key: key, Observed: crdt.Clock{{Origin: 1, Seq: seq - 1}}, Ops: ops}
	}
	// Every collection is filled first, and the state settles, so the
	// measurements do not overlap compactions of the fill.
	for _, size := range benchSizes() {
		for kind := range benchKinds {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			fill(size, kind, func(ops []crdt.Op) { f.apply(b, 1, event(key, ops)) })
		}
	}
	settle(b, n)
	for kind := range benchKinds {
		for _, size := range benchSizes() {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			b.Run(fmt.Sprintf("%s/size=%d", benchKinds[kind].name, size), func(b *testing.B) {
				b.ReportAllocs()
				evs := make([]*crdt.Event, 0, 256)
				start := time.Now()
				for i := 0; i < b.N; i++ {
					evs = append(evs, event(key, []crdt.Op{benchKinds[kind].op(elemName("new", int(seq)), i)}))
					if len(evs) == cap(evs) || i == b.N-1 {
						f.apply(b, len(evs), evs...)
						evs = evs[:0]
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// settle flushes the state's memtables and compacts it, so measurements do
// not overlap the compactions of the fill.
func settle(b *testing.B, n *Node) {
	b.Helper()
	if err := n.db.Flatten(2); err != nil {
		b.Fatal(err)
	}
}

// newBenchNode is newApplyNode on disk (a collection of 1,000,000 elements
// is not all in memtables).
func newBenchNode(b *testing.B) *Node {
	b.Helper()
	db, err := openBadger(b.TempDir(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	n := &Node{cfg: Config{Region: "bench", InstanceID: 9, Partitions: 4, ApplyBatch: 2048}, log: zerolog.Nop(), origin: 9, db: db}
	for i := int32(0); i < 4; i++ {
		n.parts = append(n.parts, newPartition(i, defaultKeyCacheMB<<20))
	}
	return n
}

// BenchmarkCollectionUpdate writes one element per Update (as the server
// does for HSET k f v) to collections of each size, 256 writes in flight,
// through an embedded Kafka: the write path's cost per write, not a
// round-trip latency.
func BenchmarkCollectionUpdate(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := New(Config{
		Region: "us", InstanceID: 1, Brokers: c.ListenAddrs(), Partitions: 4, DataDir: b.TempDir(),
		FetchMaxWait: 10 * time.Millisecond, WriteTimeout: 30 * time.Second,
	}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-n.Ready():
	case err := <-done:
		b.Fatal(err)
	case <-time.After(30 * time.Second):
		b.Fatal("node not ready")
	}
	write := func(key []byte, ops []crdt.Op) *Ack {
		ack, err := n.Update(ctx, [][]byte{key}, func(tx *Tx) error {
			tx.Emit(key, ops...)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return ack
	}
	for _, size := range benchSizes() {
		for kind := range benchKinds {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			fill(size, kind, func(ops []crdt.Op) {
				if err := write(key, ops).Wait(ctx); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	settle(b, n)
	next := 0
	for kind := range benchKinds {
		for _, size := range benchSizes() {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			b.Run(fmt.Sprintf("%s/size=%d", benchKinds[kind].name, size), func(b *testing.B) {
				b.ReportAllocs()
				var acks []*Ack
				start := time.Now()
				for i := 0; i < b.N; i++ {
					next++
					acks = append(acks, write(key, []crdt.Op{benchKinds[kind].op(elemName("new", next), next)}))
					if len(acks) == 256 || i == b.N-1 {
						for _, a := range acks {
							if err := a.Wait(ctx); err != nil {
								b.Fatal(err)
							}
						}
						acks = acks[:0]
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
			})
		}
	}
	// The state the benchmark left is a real one: check the largest set.
	big := benchSizes()[len(benchSizes())-1]
	err = n.View(ctx, func(s *Snapshot) error {
		k, err := s.Get([]byte(fmt.Sprintf("ZADD-%d", big)))
		if err != nil || k == nil {
			return fmt.Errorf("zset missing: %v", err)
		}
		if k.Len(crdt.TypeZSet) < int64(big) {
			return fmt.Errorf("zset has %d members", k.Len(crdt.TypeZSet))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCollectionRatio measures the same writes as the benchmarks
// above, interleaving the sizes round by round (so a busy machine slows
// both alike), and reports per write kind the median and best ns per write
// of each size and the ratio of the largest size's median to the
// smallest's:
//
//	go test ./materializer -run XXX -bench CollectionRatio -benchtime 1x -timeout 1h
func BenchmarkCollectionRatio(b *testing.B) {
	const rounds, perRound = 15, 1000
	sizes := benchSizes()
	type sample map[string][]float64 // "path/kind/size" -> ns per write
	samples := sample{}
	record := func(name string, d time.Duration) {
		samples[name] = append(samples[name], float64(d.Nanoseconds())/perRound)
	}

	// Direct apply.
	an := newBenchNode(b)
	f := newFeeder(an)
	var seq uint64
	event := func(key []byte, ops []crdt.Op) *crdt.Event {
		seq++
		return &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: seq}, HLC: crdt.MakeHLC(1_700_000_000_000, uint16(seq)),
			Key: key, Observed: crdt.Clock{{Origin: 1, Seq: seq - 1}}, Ops: ops}
	}
	for _, size := range sizes {
		for kind := range benchKinds {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			fill(size, kind, func(ops []crdt.Op) { f.apply(b, 1, event(key, ops)) })
		}
	}
	settle(b, an)

	// Through Update.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	un, err := New(Config{
		Region: "us", InstanceID: 1, Brokers: c.ListenAddrs(), Partitions: 4, DataDir: b.TempDir(),
		FetchMaxWait: 10 * time.Millisecond, WriteTimeout: 30 * time.Second,
	}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- un.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-un.Ready()
	write := func(key []byte, ops []crdt.Op) *Ack {
		ack, err := un.Update(ctx, [][]byte{key}, func(tx *Tx) error {
			tx.Emit(key, ops...)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return ack
	}
	for _, size := range sizes {
		for kind := range benchKinds {
			key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
			fill(size, kind, func(ops []crdt.Op) {
				if err := write(key, ops).Wait(ctx); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	settle(b, un)

	next := 0
	for r := 0; r < rounds; r++ {
		for kind := range benchKinds {
			for _, size := range sizes {
				key := []byte(fmt.Sprintf("%s-%d", benchKinds[kind].name, size))
				start := time.Now()
				evs := make([]*crdt.Event, 0, 256)
				for i := 0; i < perRound; i++ {
					evs = append(evs, event(key, []crdt.Op{benchKinds[kind].op(elemName("new", int(seq)), i)}))
					if len(evs) == cap(evs) || i == perRound-1 {
						f.apply(b, len(evs), evs...)
						evs = evs[:0]
					}
				}
				record(fmt.Sprintf("apply/%s/%d", benchKinds[kind].name, size), time.Since(start))

				start = time.Now()
				var acks []*Ack
				for i := 0; i < perRound; i++ {
					next++
					acks = append(acks, write(key, []crdt.Op{benchKinds[kind].op(elemName("new", next), next)}))
				}
				for _, a := range acks {
					if err := a.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
				record(fmt.Sprintf("update/%s/%d", benchKinds[kind].name, size), time.Since(start))
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
	for _, path := range []string{"apply", "update"} {
		for _, k := range benchKinds {
			small := samples[fmt.Sprintf("%s/%s/%d", path, k.name, sizes[0])]
			large := samples[fmt.Sprintf("%s/%s/%d", path, k.name, sizes[len(sizes)-1])]
			b.Logf("%-6s %-4s size=%-8d median %8.0f ns/write  best %8.0f | size=%-8d median %8.0f  best %8.0f | ratio of medians %.2f, of bests %.2f",
				path, k.name, sizes[0], med(small), best(small), sizes[len(sizes)-1], med(large), best(large),
				med(large)/med(small), best(large)/best(small))
			b.ReportMetric(med(large)/med(small), path+"-"+k.name+"-ratio")
		}
	}
}
