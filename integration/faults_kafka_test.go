package integration

// Faults on real Kafka (GEOREP_KAFKA set, georep's bridges): a region's
// broker stopped during a write load, a node killed with SIGKILL, a
// standalone bridge killed. Each checks that no acknowledged write is lost and
// that the regions converge (GEOREP SYNC, then equal GEOREP DIGEST).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/oplog"
)

// needRealKafka skips unless the tests run on real brokers with georep's
// bridges (fault tests stop brokers that MirrorMaker 2 would also use).
func needRealKafka(t *testing.T) {
	t.Helper()
	if !realKafka() {
		t.Skipf("real-Kafka fault test: set %s (make test-kafka)", envKafka)
	}
	if realMM2() {
		t.Skip("fault tests run with georep's bridges, not MirrorMaker 2")
	}
	if testing.Short() {
		t.Skip("slow: stops brokers and processes")
	}
}

// withoutBridges starts the nodes without in-process bridges: the test runs
// standalone `georep bridge` processes (c.real.startBridge).
func withoutBridges() clusterOpt { return func(c *deploy.DevConfig) { c.NoBridges = true } }

// kafkaScript runs scripts/kafka.sh (or GEOREP_KAFKA_SCRIPT, the one that
// started the brokers) with args.
func kafkaScript(t *testing.T, args ...string) {
	t.Helper()
	script := os.Getenv("GEOREP_KAFKA_SCRIPT")
	if script == "" {
		script = "../scripts/kafka.sh"
	}
	start := time.Now()
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("scripts/kafka.sh %s: %s", strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
}

// loadErr is one failed write.
type loadErr struct {
	at   time.Time
	took time.Duration
	msg  string
}

// load writes to one region from several connections until stopped, at a
// bounded rate (an unbounded load on a small machine starves a restarting
// broker's JVM): SETs of unique keys and every fourth time an INCR of one
// counter, remembering what the region acknowledged.
type load struct {
	region string
	every  time.Duration // per worker, between write starts
	cl     *redis.Client
	stopc  chan struct{}
	wg     sync.WaitGroup

	mu         sync.Mutex
	acked      map[string]string // key -> value of acknowledged SETs
	incrs      int64             // acknowledged INCRs
	incrFailed int64             // INCRs that failed (may still be applied)
	errs       []loadErr
	lastAck    time.Time
	ackTimes   []time.Time // of every acknowledged write, in order per worker
}

func startLoad(t *testing.T, c *cluster, region string, workers, perSecond int) *load {
	t.Helper()
	addr := c.r(region).Options().Addr
	l := &load{
		region: region,
		every:  time.Duration(workers) * time.Second / time.Duration(perSecond),
		cl: redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: workers,
			DialTimeout: time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second}),
		stopc: make(chan struct{}),
		acked: map[string]string{},
	}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go l.work(w)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) work(w int) {
	defer l.wg.Done()
	ctx := context.Background()
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stopc:
			return
		case <-tick.C:
		}
		key := fmt.Sprintf("load:%s:%d:%d", l.region, w, i)
		val := strconv.Itoa(i)
		t0 := time.Now()
		err := l.cl.Set(ctx, key, val, 0).Err()
		l.note(t0, err, func() { l.acked[key] = val })
		if i%4 == 0 {
			t0 = time.Now()
			err = l.cl.Incr(ctx, "load:ctr:"+l.region).Err()
			l.note(t0, err, func() { l.incrs++ })
			if err != nil {
				l.mu.Lock()
				l.incrFailed++
				l.mu.Unlock()
			}
		}
	}
}

func (l *load) note(t0 time.Time, err error, ok func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, loadErr{at: t0, took: now.Sub(t0), msg: err.Error()})
		return
	}
	ok()
	l.lastAck = now
	l.ackTimes = append(l.ackTimes, now)
}

func (l *load) stop() {
	select {
	case <-l.stopc:
		return
	default:
	}
	close(l.stopc)
	l.wg.Wait()
	l.cl.Close()
}

// acks returns how many writes were acknowledged.
func (l *load) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ackTimes)
}

// acksBetween counts acknowledgements in [from, to).
func (l *load) acksBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.ackTimes {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// maxAckGap returns the longest time in [from, to) without an
// acknowledgement.
func (l *load) maxAckGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	ts := make([]time.Time, 0, len(l.ackTimes))
	for _, at := range l.ackTimes {
		if !at.Before(from) && at.Before(to) {
			ts = append(ts, at)
		}
	}
	l.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	prev, gap := from, time.Duration(0)
	for _, at := range append(ts, to) {
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap
}

// errors returns the failed writes so far.
func (l *load) errors() []loadErr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadErr(nil), l.errs...)
}

// waitAcks waits until the load has n more acknowledged writes.
func (l *load) waitAcks(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	want := l.acks() + n
	eventually(t, timeout, func() error {
		if got := l.acks(); got < want {
			return fmt.Errorf("%s: %d acknowledged writes, want %d (errors: %d)", l.region, got, want, len(l.errors()))
		}
		return nil
	})
}

// checkAcked checks that every region has every write the loads had
// acknowledged, and that each counter holds at least its acknowledged
// increments and at most those plus the failed ones (a failed write may
// still be applied).
func checkAcked(t *testing.T, c *cluster, loads ...*load) {
	t.Helper()
	ctx := context.Background()
	for _, l := range loads {
		l.mu.Lock()
		keys := make([]string, 0, len(l.acked))
		for k := range l.acked {
			keys = append(keys, k)
		}
		acked, incrs, incrFailed := l.acked, l.incrs, l.incrFailed
		l.mu.Unlock()
		sort.Strings(keys)
		for _, r := range c.names {
			cl := c.r(r)
			for start := 0; start < len(keys); start += 500 {
				batch := keys[start:min(start+500, len(keys))]
				vals, err := cl.MGet(ctx, batch...).Result()
				if err != nil {
					t.Fatalf("%s MGET: %v", r, err)
				}
				for i, v := range vals {
					if v != acked[batch[i]] {
						t.Fatalf("%s: acknowledged SET %s %s (in %s) lost: got %v", r, batch[i], acked[batch[i]], l.region, v)
					}
				}
			}
			n, err := cl.Get(ctx, "load:ctr:"+l.region).Int64()
			if err != nil && !(errors.Is(err, redis.Nil) && incrs == 0) {
				t.Fatalf("%s GET load:ctr:%s: %v", r, l.region, err)
			}
			if n < incrs || n > incrs+incrFailed {
				t.Fatalf("%s: load:ctr:%s = %d, want %d acknowledged INCRs (+ up to %d failed ones)", r, l.region, n, incrs, incrFailed)
			}
		}
		t.Logf("%s: %d acknowledged SETs and %d INCRs present in %v", l.region, len(keys), incrs, c.names)
	}
}

// TestFaultsKafka_BrokerStopDuringLoad stops eu's broker while every region
// takes writes, then starts it again.
func TestFaultsKafka_BrokerStopDuringLoad(t *testing.T) {
	needRealKafka(t)
	const writeTimeout = 3 * time.Second
	regions := []string{"us", "eu", "ap"}
	c := startCluster(t, regions, withWriteTimeout(writeTimeout))
	const victim = "eu"
	if env, _ := parseRealEnv(os.Getenv(envKafka)); env.brokers[victim] == nil {
		t.Skipf("needs a cluster named %s in %s (scripts/kafka.sh up)", victim, envKafka)
	}
	c.expect(victim, "OK", "SET", "before", "1")

	loads := map[string]*load{}
	for _, r := range regions {
		loads[r] = startLoad(t, c, r, 4, 150)
	}
	for _, r := range regions {
		loads[r].waitAcks(t, 300, 30*time.Second)
	}

	stopped := true
	kafkaScript(t, "stop", victim)
	t.Cleanup(func() {
		if stopped {
			kafkaScript(t, "start", victim)
		}
	})
	down := time.Now()

	// While the broker is down: writes fail with a clear error within the
	// write timeout; reads are served.
	probe := func() {
		t0 := time.Now()
		_, err := c.do(victim, "SET", "probe", "x")
		took := time.Since(t0)
		if err == nil {
			t.Fatalf("%s SET succeeded with its broker down", victim)
		}
		// The node's own timeout answered (TRYAGAIN naming Kafka), not the
		// server's command deadline (outcome unknown) nor the client's read
		// timeout: the node gave up on the write itself. How long that took
		// is logged (timings are benchmarks' business, not assertions).
		if !strings.HasPrefix(err.Error(), "TRYAGAIN") || !strings.Contains(err.Error(), "Kafka") {
			t.Fatalf("%s SET with its broker down: %q, want a TRYAGAIN naming Kafka", victim, err)
		}
		t.Logf("%s SET with its broker down: %q after %s", victim, err, took.Round(time.Millisecond))
	}
	probe()
	// Reads are served from the node's state, with the right values, within
	// the client's normal timeout (c.do); how fast is a number, not a check.
	t0 := time.Now()
	c.expect(victim, "1", "GET", "before")
	t.Logf("%s GET with its broker down answered in %s", victim, time.Since(t0).Round(time.Millisecond))
	loads[victim].mu.Lock()
	var someKey, someVal string
	for k, v := range loads[victim].acked {
		someKey, someVal = k, v
		break
	}
	loads[victim].mu.Unlock()
	c.expect(victim, someVal, "GET", someKey)
	c.expect(victim, "1", "EXISTS", "before")
	// Keep it down for a few write timeouts while the load goes on.
	time.Sleep(3 * writeTimeout)
	probe()

	starting := time.Now()
	kafkaScript(t, "start", victim)
	stopped = false
	up := time.Now()
	// The node recovers by itself.
	eventually(t, 60*time.Second, func() error {
		_, err := c.do(victim, "SET", "after", "1")
		return err
	})
	t.Logf("%s's broker was down %s; its node accepted writes again %s after the broker was ready (%s after the start command)",
		victim, up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond), time.Since(starting).Round(time.Millisecond))
	loads[victim].waitAcks(t, 300, 30*time.Second)
	for _, l := range loads {
		l.stop()
	}

	// The other regions never stopped: every write they were sent, before,
	// during and after eu's outage, was acknowledged. Nothing in a node's
	// write path depends on a peer's cluster (its writes go to its own
	// cluster and are acknowledged once its own consumer applied them; a
	// peer's cluster is only read, by the node's bridge from it and by the
	// SYNC/STATUS watcher), so a failure here is a bug, not bad luck. The
	// longest pause without an acknowledgement is logged, not checked: it is
	// a timing figure, and on a small shared machine the JVM of the
	// restarting broker takes most of the CPU for a while (docs/real-kafka.md).
	for _, r := range regions {
		if r == victim {
			continue
		}
		n, gap, errs := loads[r].acksBetween(down, up), loads[r].maxAckGap(down, up), loads[r].errors()
		t.Logf("%s: %d writes acknowledged while %s was down or starting (longest pause %s), %d failed in the whole test",
			r, n, victim, gap.Round(time.Millisecond), len(errs))
		if n == 0 {
			t.Fatalf("%s acknowledged no write while %s's broker was down", r, victim)
		}
		if len(errs) > 0 {
			t.Fatalf("%s: %d of %d writes failed while only %s's broker was stopped or starting; first, %s after it stopped: %q",
				r, len(errs), loads[r].acks()+len(errs), victim, errs[0].at.Sub(down).Round(time.Millisecond), errs[0].msg)
		}
	}
	errs := loads[victim].errors()
	var slowest time.Duration
	for _, e := range errs {
		slowest = max(slowest, e.took)
	}
	for _, e := range errs {
		if !strings.HasPrefix(e.msg, "TRYAGAIN") || !strings.Contains(e.msg, "Kafka") {
			t.Fatalf("%s: a write failed with %q, want a TRYAGAIN naming Kafka (the node's write timeout)", victim, e.msg)
		}
	}
	t.Logf("%s: %d writes failed while its broker was down, slowest after %s", victim, len(errs), slowest.Round(time.Millisecond))

	c.converge()
	checkAcked(t, c, loads["us"], loads["eu"], loads["ap"])
	c.expectAll("1", "GET", "after")
}

// TestFaultsKafka_Kill9Node kills us's node with SIGKILL during a write load
// and restarts it on the same data directory.
func TestFaultsKafka_Kill9Node(t *testing.T) {
	needRealKafka(t)
	regions := []string{"us", "eu", "ap"}
	c := startCluster(t, regions, withDataDir(t.TempDir()))
	us, eu := startLoad(t, c, "us", 4, 500), startLoad(t, c, "eu", 2, 200)
	us.waitAcks(t, 1000, 30*time.Second)
	eu.waitAcks(t, 200, 30*time.Second)

	c.real.kill9("us")
	killed := time.Now()
	eu.waitAcks(t, 200, 30*time.Second) // the others go on
	c.real.restartNode("us")
	t.Logf("us restarted %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
	us.waitAcks(t, 500, 30*time.Second)
	us.stop()
	eu.stop()
	if errs := eu.errors(); len(errs) > 0 {
		t.Fatalf("eu: %d writes failed while us was killed; first: %q", len(errs), errs[0].msg)
	}
	t.Logf("us: %d writes failed around the kill (connection errors)", len(us.errors()))

	c.converge()
	checkAcked(t, c, us, eu)
}

// TestFaultsKafka_KillBridge runs standalone bridges, kills the one that
// copies us into eu twice during a write load and restarts it; then copies
// every mirrored record again: duplicates change nothing.
func TestFaultsKafka_KillBridge(t *testing.T) {
	needRealKafka(t)
	regions := []string{"us", "eu"}
	c := startCluster(t, regions, withoutBridges())
	c.real.startBridge("us", "eu")
	c.real.startBridge("eu", "us")
	us, eu := startLoad(t, c, "us", 4, 500), startLoad(t, c, "eu", 2, 200)
	for round := 0; round < 2; round++ {
		us.waitAcks(t, 1000, 30*time.Second)
		c.real.bridges["us>eu"].kill()
		us.waitAcks(t, 500, 30*time.Second) // us goes on; eu falls behind
		c.real.startBridge("us", "eu")
	}
	us.waitAcks(t, 500, 30*time.Second)
	us.stop()
	eu.stop()
	for _, l := range []*load{us, eu} {
		if errs := l.errors(); len(errs) > 0 {
			t.Fatalf("%s: %d writes failed; first: %q", l.region, len(errs), errs[0].msg)
		}
	}
	c.converge()
	checkAcked(t, c, us, eu)
	digest := fmt.Sprint(c.must("eu", "GEOREP", "DIGEST"))

	// Duplicates are harmless: copy every record of us's mirror in eu once
	// more, in order, and nothing changes.
	mirror := oplog.MirrorTopic("us", c.real.topic)
	n := duplicateTopic(t, c.real.brokers["eu"], mirror)
	c.sync()
	if got := fmt.Sprint(c.must("eu", "GEOREP", "DIGEST")); got != digest {
		t.Fatalf("eu's digest changed after %d duplicate records: %s -> %s", n, digest, got)
	}
	if st := c.status("eu"); st.BadRecords != 0 {
		t.Fatalf("eu counts %d bad records after the duplicates", st.BadRecords)
	}
	checkAcked(t, c, us, eu)
	t.Logf("eu: %d duplicate records in %s changed nothing", n, mirror)
}

// duplicateTopic appends a copy of every record of topic to the same
// partition, keeping order, and returns how many it copied.
func duplicateTopic(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	offs := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
			offs[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	n := 0
	for len(want) > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			cp := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			cl.Produce(ctx, cp, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce duplicate: %v", err)
				}
			})
			n++
			if r.Offset == end-1 {
				delete(want, r.Partition)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}
