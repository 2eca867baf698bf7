package crdt_test

import (
	"fmt"
	"testing"

	"github.com/georep/georep/crdt"
)

// BenchmarkKey_ApplyMarshal measures what the materializer does per event
// on a string key: Apply with the partition's stable clock, then Marshal
// into a reused buffer. The events (as an origin emits them) and stable
// clocks are built before the timer starts. Sizes are the number of regions
// that have written the key.
func BenchmarkKey_ApplyMarshal(b *testing.B) {
	value := []byte("a value of a typical size: forty bytes..")
	for _, kind := range []string{"set", "incr"} {
		for _, regions := range []int{1, 3, 10} {
			b.Run(fmt.Sprintf("%s/regions=%d", kind, regions), func(b *testing.B) {
				k := &crdt.Key{}
				var seq uint64
				var stable crdt.Clock
				// every region has incremented the key once
				for o := 1; o <= regions; o++ {
					seq++
					stable = stable.With(crdt.ReplicaID(o), seq)
					k.Apply(&crdt.Event{Dot: crdt.Dot{Origin: crdt.ReplicaID(o), Seq: seq}, HLC: crdt.MakeHLC(t0, 0),
						Observed: k.VV.Clone(), Ops: []crdt.Op{{Kind: crdt.OpIncr, Int: 1}}}, stable)
				}
				// region 1 emits b.N events, built on a copy of the state
				origin := k.Clone()
				evs := make([]*crdt.Event, b.N)
				stables := make([]crdt.Clock, b.N)
				for i := range evs {
					seq++
					ev := &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: seq}, HLC: crdt.MakeHLC(t0+int64(i), 0), Observed: origin.VV.Clone()}
					if kind == "set" {
						ev.Ops = []crdt.Op{{Kind: crdt.OpSet, Value: value, Shares: origin.ObservedShares()}}
					} else {
						ev.Ops = []crdt.Op{{Kind: crdt.OpIncr, Int: 1, Start: origin.OwnShareStart(1)}}
					}
					stable = stable.Clone().With(1, seq)
					origin.Apply(ev, stable)
					evs[i], stables[i] = ev, stable
				}
				buf := make([]byte, 0, 512)
				b.ReportAllocs()
				b.ResetTimer()
				for i, ev := range evs {
					if !k.Apply(ev, stables[i]) {
						b.Fatal("not applied")
					}
					buf = k.Marshal(buf[:0])
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				if !k.Equal(origin) {
					b.Fatal("the applied state differs from the origin's")
				}
			})
		}
	}
}
