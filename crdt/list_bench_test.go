package crdt

import (
	"fmt"
	"sync"
	"testing"
)

// buildList returns a one-region simulation holding a list of n elements
// ("0", "1", ...), built with RPUSHes of up to 1000 values.
func buildList(t tb, n int, regions int, opt ListOptions) *lsim {
	s := newLSim(1, regions)
	s.check = false
	s.opt = opt
	r := s.r(1)
	for i := 0; i < n; {
		var vs []string
		for ; i < n && len(vs) < 1000; i++ {
			vs = append(vs, fmt.Sprint(i))
		}
		r.rpush(t, vs...)
	}
	return s
}

// kvOps returns the KV calls fn makes.
func kvOps(kv *memKV, fn func()) int {
	before := kv.gets + kv.sets + kv.dels
	fn()
	return kv.gets + kv.sets + kv.dels - before
}

// TestList_EndCostIndependentOfSize checks that pushes and pops at either
// end (planned and applied, tombstones collected) read and write as many
// records on a deep list as on a short one: the order-statistics tree's
// end paths are not written per operation. Small nodes make 20,000
// elements 7 levels deep.
func TestList_EndCostIndependentOfSize(t *testing.T) {
	opt := ListOptions{leafMax: 4, kidsMax: 4}
	cost := func(n int) map[string]int {
		s := buildList(t, n, 1, opt)
		r := s.r(1)
		if h := r.open(t).idx.m.height; n > 100 && h < 6 {
			t.Fatalf("%d elements: height %d", n, h)
		}
		out := map[string]int{}
		for _, op := range []struct {
			name string
			fn   func()
		}{
			{"rpush", func() { r.rpush(t, "x") }},
			{"rpop", func() { r.pop(t, false, 1) }},
			{"lpush", func() { r.lpush(t, "x") }},
			{"lpop", func() { r.pop(t, true, 1) }},
			{"rpush+lpop", func() { r.rpush(t, "x"); r.pop(t, true, 1) }},
		} {
			// The most over a run of operations: splits and merges are
			// amortized, so take the typical (median) cost.
			var cs []int
			for i := 0; i < 40; i++ {
				cs = append(cs, kvOps(r.kv, op.fn))
			}
			out[op.name] = median(cs)
		}
		return out
	}
	small, big := cost(10), cost(20_000)
	for op, c := range small {
		if float64(big[op]) > 1.5*float64(c) {
			t.Errorf("%s: %d KV calls on 20,000 elements, %d on 10", op, big[op], c)
		}
		t.Logf("%s: %d KV calls on 10 elements, %d on 20,000", op, c, big[op])
	}
}

func median(xs []int) int {
	s := append([]int(nil), xs...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

var (
	benchMu    sync.Mutex
	benchLists = map[int]*lsim{}
)

// benchList returns a shared one-region list of n elements; benchmarks
// keep its length.
func benchList(b *testing.B, n int) *lrep {
	benchMu.Lock()
	defer benchMu.Unlock()
	s, ok := benchLists[n]
	if !ok {
		s = buildList(b, n, 1, ListOptions{})
		benchLists[n] = s
	}
	return s.r(1)
}

// BenchmarkList measures commands planned at the origin and applied (the
// server's and the materializer's work per command, over an in-memory KV)
// on lists of 10 and 1,000,000 elements. Pushes and pops come in pairs
// that keep the length; kvops/op counts KV reads and writes.
func BenchmarkList(b *testing.B) {
	for _, n := range []int{10, 1_000_000} {
		for _, bc := range []struct {
			name string
			fn   func(b *testing.B, r *lrep)
		}{
			{"RPUSH+RPOP", func(b *testing.B, r *lrep) { r.rpush(b, "x"); r.pop(b, false, 1) }},
			{"LPUSH+LPOP", func(b *testing.B, r *lrep) { r.lpush(b, "x"); r.pop(b, true, 1) }},
			{"RPUSH+LPOP", func(b *testing.B, r *lrep) { r.rpush(b, "x"); r.pop(b, true, 1) }},
			{"LINDEX-middle", func(b *testing.B, r *lrep) {
				if _, _, ok, err := r.open(b).At(int64(n / 2)); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}},
			{"LSET-middle", func(b *testing.B, r *lrep) { r.lset(b, int64(n/2), "y") }},
			{"LRANGE-middle-5", func(b *testing.B, r *lrep) {
				c := 0
				if err := r.open(b).Range(int64(n/2), false, func(ElemID, []byte) bool { c++; return c < 5 }); err != nil || c != 5 {
					b.Fatal(c, err)
				}
			}},
			{"LINSERT+LREM-middle", func(b *testing.B, r *lrep) {
				l := r.open(b)
				id, _, _, _ := l.At(int64(n / 2))
				ops, err := l.AppendInsertAt(nil, id, true, []byte("m"))
				if err != nil {
					b.Fatal(err)
				}
				r.emit(b, append(ops, ListRemOp(id)))
			}},
		} {
			b.Run(fmt.Sprintf("%s/n=%d", bc.name, n), func(b *testing.B) {
				if n > 10 && testing.Short() {
					b.Skip("1,000,000 elements: not in -short mode")
				}
				r := benchList(b, n)
				b.ReportAllocs()
				kv := r.kv
				ops := kv.gets + kv.sets + kv.dels
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					bc.fn(b, r)
				}
				b.StopTimer()
				b.ReportMetric(float64(kv.gets+kv.sets+kv.dels-ops)/float64(b.N), "kvops/op")
				if got := r.open(b).Len(); got != int64(n) {
					b.Fatalf("length %d, want %d", got, n)
				}
			})
		}
	}
}
