package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// lockedBuffer collects the banner of a running DevCmd.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// freePorts returns the first of n consecutive loopback ports free now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		base := 30000 + rand.IntN(20000)
		var ls []net.Listener
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}

// TestDevCmd_AddRegionOnSameDataDir runs `georep dev --regions us,eu`, then
// `georep dev --regions us,eu,ap` on the same data directory: us and eu keep
// their data and instance IDs, ap gets instance 3, has caught up with them
// by the time the banner is printed, and its writes reach them.
func TestDevCmd_AddRegionOnSameDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two embedded deployments")
	}
	dir := t.TempDir()
	run := func(regions ...string) (*lockedBuffer, map[string]*redis.Client, func()) {
		t.Helper()
		// One block of free ports for RESP and Kafka: two separate picks
		// could overlap.
		port := freePorts(t, 2*len(regions))
		kport := port + len(regions)
		cmd := &DevCmd{Regions: regions, Host: "127.0.0.1", Port: port, KafkaPort: kport, DataDir: dir, Partitions: 4, WriteTimeout: 5 * time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		out := &lockedBuffer{}
		done := make(chan error, 1)
		go func() { done <- cmd.run(ctx, testLog(t), out) }()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(out.String(), "Ctrl-C stops all regions.") {
			select {
			case err := <-done:
				t.Fatalf("georep dev %v stopped: %v\n%s", regions, err, out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("georep dev %v not ready:\n%s", regions, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		clients := map[string]*redis.Client{}
		for i, r := range regions {
			clients[r] = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port+i), Protocol: 2, ReadTimeout: 20 * time.Second})
		}
		return out, clients, func() {
			for _, c := range clients {
				c.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("georep dev %v: %v", regions, err)
			}
		}
	}
	ctx := context.Background()
	do := func(c *redis.Client, args ...any) string {
		t.Helper()
		v, err := c.Do(ctx, args...).Result()
		if err == redis.Nil {
			return "(nil)"
		}
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return fmt.Sprint(v)
	}

	_, two, stop := run("us", "eu")
	do(two["us"], "SET", "greeting", "hello")
	do(two["eu"], "INCRBY", "n", "5")
	do(two["us"], "GEOREP", "SYNC")
	do(two["eu"], "GEOREP", "SYNC")
	stop()

	out, three, stop := run("us", "eu", "ap")
	defer stop()
	for _, want := range []string{"us   instance 1", "eu   instance 2", "ap   instance 3"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("banner lacks %q:\n%s", want, out)
		}
	}
	if got := do(three["ap"], "GET", "greeting"); got != "hello" {
		t.Fatalf("ap GET greeting = %s once ready, want hello", got)
	}
	if got := do(three["ap"], "INCR", "n"); got != "6" {
		t.Fatalf("ap INCR n = %s, want 6", got)
	}
	for _, r := range []string{"us", "eu"} {
		do(three[r], "GEOREP", "SYNC")
		if got := do(three[r], "GET", "n"); got != "6" {
			t.Fatalf("%s GET n = %s after ap's INCR, want 6", r, got)
		}
	}
	do(three["ap"], "GEOREP", "SYNC")
	first := do(three["us"], "GEOREP", "DIGEST")
	for _, r := range []string{"eu", "ap"} {
		if d := do(three[r], "GEOREP", "DIGEST"); d != first {
			t.Fatalf("digest of %s = %s, us = %s", r, d, first)
		}
	}
}
