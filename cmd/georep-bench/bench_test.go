package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/georep/georep/cmd/deploy"
)

// startDev runs a `georep dev` deployment (us, eu, ap) in this process with
// a data directory, so its brokers fsync every batch like the real command.
func startDev(tb testing.TB) *deploy.Dev {
	tb.Helper()
	d, err := deploy.NewDev(deploy.DevConfig{Regions: []string{"us", "eu", "ap"}, DataDir: tb.TempDir()}, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	for _, r := range d.Regions {
		select {
		case <-r.Region.Node.Ready():
		case err := <-done:
			tb.Fatalf("dev stopped: %v", err)
		case <-time.After(30 * time.Second):
			tb.Fatal("dev not ready")
		}
	}
	return d
}

// BenchmarkDev runs the redis-benchmark load (-c 50 -P 16, one key) against
// region us of an in-process dev deployment: b.N requests per command.
// Profile with
//
//	go test ./cmd/georep-bench -run XXX -bench Dev/set -benchtime 100000x -cpuprofile cpu.out
func BenchmarkDev(b *testing.B) {
	d := startDev(b)
	addr := d.Regions[0].Region.Server.Addr()
	// GET reads an existing key, as after redis-benchmark's SET test.
	if _, err := runLoad(context.Background(), addr, "set", 1, 1, 1, 0); err != nil {
		b.Fatal(err)
	}
	for _, test := range []string{"set", "get", "incr"} {
		b.Run(test, func(b *testing.B) {
			b.ReportAllocs()
			cpu0, r0, w0 := cpuTime(), syscalls("syscr"), syscalls("syscw")
			res, err := runLoad(context.Background(), addr, test, 50, 16, b.N, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(syscalls("syscr")-r0)/float64(b.N), "reads/op")
			b.ReportMetric(float64(syscalls("syscw")-w0)/float64(b.N), "writes/op")
			b.ReportMetric(res.RPS(), "req/s")
			b.ReportMetric(float64(res.Batch.P50)/1e6, "p50-ms")
			// CPU time of the whole process (deployment and load) per
			// request: steadier than req/s on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
		})
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// syscalls returns a counter of /proc/self/io (syscr: read system calls,
// syscw: write system calls), 0 if unavailable.
func syscalls(name string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkDevLatency runs the latency measurement (5,000 SET/s to us, MGET
// polling eu) for 5 s per iteration; use -benchtime 1x.
func BenchmarkDevLatency(b *testing.B) {
	d := startDev(b)
	us, eu := d.Regions[0].Region.Server.Addr(), d.Regions[1].Region.Server.Addr()
	for i := 0; i < b.N; i++ {
		c := &LatencyCmd{WriteAddr: us, ReadAddr: eu, Rate: 5000, Duration: 5 * time.Second, Warmup: time.Second,
			Drain: 10 * time.Second, Prefix: "lat:", MaxInflight: 20000, MaxPoll: 256, Partitions: 8, PollEvery: time.Millisecond}
		res, err := c.run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Ack.P50)/1e6, "ack-p50-ms")
		b.ReportMetric(float64(res.Ack.P99)/1e6, "ack-p99-ms")
		b.ReportMetric(float64(res.Visible.P50)/1e6, "vis-p50-ms")
		b.ReportMetric(float64(res.Visible.P99)/1e6, "vis-p99-ms")
	}
}

func TestLatency_Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev deployment")
	}
	d := startDev(t)
	us, eu := d.Regions[0].Region.Server.Addr(), d.Regions[1].Region.Server.Addr()
	for _, parts := range []int{8, 0} {
		c := &LatencyCmd{WriteAddr: us, ReadAddr: eu, Rate: 500, Duration: time.Second, Warmup: 200 * time.Millisecond,
			Drain: 10 * time.Second, Prefix: "lat" + strconv.Itoa(parts) + ":", MaxInflight: 1000, MaxPoll: 100, Partitions: parts, PollEvery: time.Millisecond}
		res, err := c.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Unseen != 0 || res.Errors != 0 || res.Measured != 500 || res.Visible.N != 500 || res.Violations != 0 {
			t.Fatalf("partitions %d: result %+v", parts, res)
		}
	}
	lr, err := runLoad(context.Background(), us, "incr", 4, 8, 320, 0)
	if err != nil || lr.Errors != 0 {
		t.Fatalf("load: %v %+v", err, lr)
	}
}
