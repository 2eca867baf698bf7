package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/oplog"
)

// cluster is a running multi-region deployment under test.
type cluster struct {
	t       *testing.T
	names   []string
	cfg     deploy.DevConfig
	clients map[string]*redis.Client
	dev     *deploy.Dev
	stop    context.CancelFunc
	done    chan error
	stopped bool
	real    *realCluster // node processes on real Kafka (realkafka_test.go); nil on embedded Kafka
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

// withWriteTimeout bounds how long a write waits for Kafka.
func withWriteTimeout(d time.Duration) clusterOpt {
	return func(c *deploy.DevConfig) { c.WriteTimeout = d }
}

// startCluster starts regions (instance IDs in order) and returns once every
// region accepts writes.
func startCluster(t *testing.T, regions []string, opts ...clusterOpt) *cluster {
	t.Helper()
	cfg := deploy.DevConfig{Regions: regions, Partitions: 4, WriteTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c := &cluster{t: t, names: regions, cfg: cfg}
	c.start()
	t.Cleanup(c.close)
	return c
}

// start runs a deployment of c.cfg and waits until every region accepts
// writes.
func (c *cluster) start() {
	t := c.t
	t.Helper()
	if os.Getenv("GEOREP_KAFKA") != "" {
		c.startReal() // each region a `georep node` process on real brokers
		return
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := deploy.NewDev(c.cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.dev, c.stop, c.done, c.stopped = d, cancel, make(chan error, 1), false
	c.clients = map[string]*redis.Client{}
	go func() { c.done <- d.Run(ctx) }()
	for _, r := range d.Regions {
		if slices.Contains(c.cfg.StartPaused, r.Name) {
			// Paused from the start: a new region is not writable
			// until RESUME; its server already answers.
			c.clients[r.Name] = redis.NewClient(&redis.Options{Addr: r.Region.Server.Addr(), Protocol: 2, MaxRetries: -1, ReadTimeout: 25 * time.Second})
			continue
		}
		select {
		case <-r.Region.Node.Ready():
		case err := <-c.done:
			t.Fatalf("deployment stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("region %s not ready", r.Name)
		}
		// GEOREP SYNC may block for a while: a read timeout above its own.
		c.clients[r.Name] = redis.NewClient(&redis.Options{Addr: r.Region.Server.Addr(), Protocol: 2, MaxRetries: -1, ReadTimeout: 25 * time.Second})
	}
}

// addRegion stops the deployment and starts it again with one more region
// (the next instance ID), whose inbound replication starts paused when
// paused is set: the way `georep dev --regions us,eu` becomes `--regions
// us,eu,ap` on the same data directory.
func (c *cluster) addRegion(name string, paused bool) {
	c.t.Helper()
	c.close()
	c.names = append(slices.Clone(c.names), name)
	c.cfg.Regions = c.names
	c.cfg.StartPaused = nil
	if paused {
		c.cfg.StartPaused = []string{name}
	}
	c.start()
}

// restart stops the deployment (context cancel, a clean shutdown) and starts
// a new one with the same configuration; with withDataDir it finds its
// state and logs again.
func (c *cluster) restart() {
	c.t.Helper()
	c.close()
	c.start()
}

func (c *cluster) close() {
	if c.stopped {
		return
	}
	c.stopped = true
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

// alive fails the test if the deployment has stopped by itself.
func (c *cluster) alive() {
	c.t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		c.t.Fatalf("deployment stopped: %v", err)
	default:
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
	c.syncOnly(c.names...)
}

// syncOnly runs GEOREP SYNC on the regions named (which must not be paused:
// a paused region's SYNC waits for RESUME).
func (c *cluster) syncOnly(regions ...string) {
	c.t.Helper()
	for _, n := range regions {
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

// get returns a key's value on a region, or "(nil)".
func (c *cluster) get(region, key string) string {
	c.t.Helper()
	v, err := c.do(region, "GET", key)
	if err == redis.Nil {
		return "(nil)"
	}
	if err != nil {
		c.t.Fatalf("%s GET %s: %v", region, key, err)
	}
	return fmt.Sprint(v)
}

// expectAll runs a read command on every region and checks its reply.
func (c *cluster) expectAll(want string, args ...any) {
	c.t.Helper()
	for _, n := range c.names {
		c.expect(n, want, args...)
	}
}

// ttlIn checks that TTL key is within [lo, hi] seconds on every region.
func (c *cluster) ttlIn(key string, lo, hi int64) {
	c.t.Helper()
	for _, n := range c.names {
		v, err := c.do(n, "TTL", key)
		if err != nil {
			c.t.Fatalf("%s TTL %s: %v", n, key, err)
		}
		if ttl := v.(int64); ttl < lo || ttl > hi {
			c.t.Fatalf("%s TTL %s = %d, want %d..%d", n, key, ttl, lo, hi)
		}
	}
}

// regionStatus is the part of GEOREP STATUS the tests read.
type regionStatus struct {
	Writable    bool
	Paused      bool
	Applied     map[string]int64 // origin instance ID -> greatest applied sequence
	BadRecords  int64
	EventsTotal int64
}

// status reads GEOREP STATUS (a RESP3 map, a flat array over RESP2).
func (c *cluster) status(region string) regionStatus {
	c.t.Helper()
	v, err := c.do(region, "GEOREP", "STATUS")
	if err != nil {
		c.t.Fatalf("%s GEOREP STATUS: %v", region, err)
	}
	m := pairs(c.t, v)
	st := regionStatus{Applied: map[string]int64{}}
	st.Writable = m["writable"] == int64(1)
	st.Paused = m["paused"] == int64(1)
	st.BadRecords, _ = m["bad_records"].(int64)
	st.EventsTotal, _ = m["events_total"].(int64)
	for k, v := range pairs(c.t, m["applied"]) {
		st.Applied[k], _ = v.(int64)
	}
	return st
}

// pairs turns a flat key/value array into a map.
func pairs(t *testing.T, v any) map[string]any {
	t.Helper()
	out := map[string]any{}
	switch a := v.(type) {
	case []any:
		if len(a)%2 != 0 {
			t.Fatalf("odd map reply %v", a)
		}
		for i := 0; i < len(a); i += 2 {
			out[fmt.Sprint(a[i])] = a[i+1]
		}
	case map[any]any:
		for k, x := range a {
			out[fmt.Sprint(k)] = x
		}
	default:
		t.Fatalf("not a map reply: %#v", v)
	}
	return out
}

// info returns the fields of one INFO section of a region.
func (c *cluster) info(region, section string) map[string]string {
	c.t.Helper()
	v, err := c.do(region, "INFO", section)
	if err != nil {
		c.t.Fatalf("%s INFO %s: %v", region, section, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(fmt.Sprint(v), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, val, ok := strings.Cut(line, ":"); ok {
			out[k] = val
		}
	}
	return out
}

// region returns a region of the running deployment.
func (c *cluster) region(name string) *deploy.DevRegion {
	c.t.Helper()
	for _, r := range c.dev.Regions {
		if r.Name == name {
			return r
		}
	}
	c.t.Fatalf("no region %s", name)
	return nil
}

// instanceID returns a region's instance ID as GEOREP STATUS prints it.
func (c *cluster) instanceID(name string) string {
	return fmt.Sprint(c.region(name).InstanceID)
}

// keysInPartitions returns n keys with prefix that fall into n different
// partitions of the deployment's topics (n <= partitions).
func (c *cluster) keysInPartitions(prefix string, n int) []string {
	c.t.Helper()
	parts := c.cfg.Partitions
	if parts == 0 {
		parts = oplog.DefaultPartitions
	}
	if int32(n) > parts {
		c.t.Fatalf("%d keys in %d partitions", n, parts)
	}
	seen := map[int32]bool{}
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if p := oplog.Partition([]byte(k), parts); !seen[p] {
			seen[p] = true
			out = append(out, k)
		}
	}
	return out
}
