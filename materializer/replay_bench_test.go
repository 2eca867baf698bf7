package materializer_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogtest"
)

// BenchmarkReplay times `georep replay` of events produced straight into a
// kfake cluster (region us's: its own topic and two mirrors, 8 partitions)
// into a Badger directory. Events come from three origins in turn over a
// key space a tenth of their count. GEOREP_BENCH_EVENTS=n runs only that
// size.
func BenchmarkReplay(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if s := os.Getenv("GEOREP_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		sizes = []int{n}
	}
	for _, kind := range []oplogtest.Kind{oplogtest.Strings, oplogtest.Mixed} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) { benchReplay(b, kind, n) })
		}
	}
}

func benchReplay(b *testing.B, kind oplogtest.Kind, n int) {
	const parts = 8
	c := newCluster(b)
	recs := oplogtest.Workload(kind, n, max(n/10, 1), 7, "us", oplog.Topic, parts, origins()...)
	ctx := context.Background()
	if err := oplogtest.Produce(ctx, c.ListenAddrs(), parts, recs); err != nil {
		b.Fatal(err)
	}
	recs = nil
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		r, err := materializer.NewReplay(materializer.ReplayConfig{Region: "us", Brokers: c.ListenAddrs(), DataDir: dir}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		res, err := r.Run(ctx)
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		if err != nil || res.Events != int64(n) {
			b.Fatalf("replay: %v, applied %d of %d", err, res.Events, n)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "events/s")
	if cpu > 0 {
		// CPU time of the whole process (replay and the in-process kfake
		// broker serving it): a measure that other load on the machine
		// does not inflate the way it does wall-clock time.
		b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}
