package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/georep/georep/cmd/deploy"
)

// cluster is a running multi-region deployment under test.
type cluster struct {
	t       *testing.T
	names   []string
	clients map[string]*redis.Client
	dev     *deploy.Dev
	stop    context.CancelFunc
	done    chan error
}

type clusterOpt func(*deploy.DevConfig)

func withClockOffset(region string, d time.Duration) clusterOpt {
	return func(c *deploy.DevConfig) {
		if c.ClockOffsets == nil {
			c.ClockOffsets = map[string]time.Duration{}
		}
		c.ClockOffsets[region] = d
	}
}

func withDataDir(dir string) clusterOpt { return func(c *deploy.DevConfig) { c.DataDir = dir } }

// startCluster starts regions (instance IDs in order) and returns once every
// region accepts writes.
func startCluster(t *testing.T, regions []string, opts ...clusterOpt) *cluster {
	t.Helper()
	if os.Getenv("GEOREP_KAFKA") != "" {
		t.Skip("real-Kafka mode is run by the kafka suite")
	}
	cfg := deploy.DevConfig{Regions: regions, Partitions: 4, WriteTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := deploy.NewDev(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{t: t, names: regions, clients: map[string]*redis.Client{}, dev: d, stop: cancel, done: make(chan error, 1)}
	go func() { c.done <- d.Run(ctx) }()
	for _, r := range d.Regions {
		select {
		case <-r.Region.Node.Ready():
		case err := <-c.done:
			t.Fatalf("deployment stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("region %s not ready", r.Name)
		}
		c.clients[r.Name] = redis.NewClient(&redis.Options{Addr: r.Region.Server.Addr(), Protocol: 2, MaxRetries: -1})
	}
	t.Cleanup(c.close)
	return c
}

func (c *cluster) close() {
	for _, cl := range c.clients {
		cl.Close()
	}
	c.stop()
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Errorf("deployment: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.t.Error("deployment did not stop")
	}
}

// r returns the client of region name.
func (c *cluster) r(name string) *redis.Client { return c.clients[name] }

// do runs a command on a region and returns its reply or error.
func (c *cluster) do(region string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.r(region).Do(ctx, args...).Result()
}

// must runs a command and fails the test on error.
func (c *cluster) must(region string, args ...any) any {
	c.t.Helper()
	v, err := c.do(region, args...)
	if err != nil && err != redis.Nil {
		c.t.Fatalf("%s %v: %v", region, args, err)
	}
	return v
}

// expect runs a command and checks its reply, formatted with %v.
func (c *cluster) expect(region string, want string, args ...any) {
	c.t.Helper()
	v, err := c.do(region, args...)
	got := fmt.Sprintf("%v", v)
	if err == redis.Nil {
		got = "(nil)"
	} else if err != nil {
		got = "ERR: " + err.Error()
	}
	if got != want {
		c.t.Fatalf("%s %v = %s, want %s", region, args, got, want)
	}
}

// sync brings every region up to date with every other: GEOREP SYNC on all.
func (c *cluster) sync() {
	c.t.Helper()
	for _, n := range c.names {
		c.must(n, "GEOREP", "SYNC", "20000")
	}
}

// pause stops inbound replication at the regions, making their next writes
// concurrent with everyone else's.
func (c *cluster) pause(regions ...string) {
	c.t.Helper()
	for _, n := range regions {
		c.must(n, "GEOREP", "PAUSE")
	}
}

func (c *cluster) resume(regions ...string) {
	c.t.Helper()
	for _, n := range regions {
		c.must(n, "GEOREP", "RESUME")
	}
}

// pauseAll makes every region's next writes concurrent.
func (c *cluster) pauseAll()  { c.pause(c.names...) }
func (c *cluster) resumeAll() { c.resume(c.names...) }

// converge resumes everyone, syncs, and checks every region has the same
// digest.
func (c *cluster) converge() {
	c.t.Helper()
	c.resumeAll()
	c.sync()
	c.sync()
	var first string
	for i, n := range c.names {
		d := fmt.Sprint(c.must(n, "GEOREP", "DIGEST"))
		if i == 0 {
			first = d
		} else if d != first {
			c.t.Fatalf("digest of %s = %s, %s = %s: regions did not converge", c.names[0], first, n, d)
		}
	}
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func join(ss ...string) string { return strings.Join(ss, " ") }
