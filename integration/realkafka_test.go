package integration

// Real-Kafka mode of the harness. With GEOREP_KAFKA set to region=bootstrap
// pairs (scripts/kafka.sh up writes them to .kafka/run/bootstrap.env),
// startCluster runs every region as its own `georep node` process against
// those brokers instead of an embedded deployment:
//
//   - one georep binary per test binary run (GEOREP_BIN to use a prebuilt one);
//   - a topic name unique to the test start ("t<hash>.georep.ops"), so tests
//     never see each other's data, deleted again at the end of the test;
//   - bridges inside the nodes (--peer-brokers), or none when GEOREP_MIRROR=mm2:
//     MirrorMaker 2 (scripts/kafka.sh mm2 up) then mirrors every topic matching
//     ".*georep\.ops", and the nodes run with --mirror external (they still get
//     --peer-brokers, to watch the peers' topics). The harness does no waiting
//     of its own for the mirrors: GEOREP SYNC must see MM2's lag, and the MM2
//     phase of `make test-kafka` checks that it does.
//
// The cluster API is the same in both modes. c.dev holds the regions' names,
// instance IDs and brokers only: tests that need the embedded brokers or
// in-process regions call c.embedded, which skips in real mode.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/oplog"
)

// Environment of real-Kafka mode.
const (
	envKafka  = "GEOREP_KAFKA"  // us=127.0.0.1:19092,eu=127.0.0.1:19093,...
	envMirror = "GEOREP_MIRROR" // "mm2": MirrorMaker 2 mirrors, nodes run no bridges
	envBin    = "GEOREP_BIN"    // optional prebuilt georep binary
)

// realKafka reports whether the tests run against real brokers.
func realKafka() bool { return os.Getenv(envKafka) != "" }

// realMM2 reports whether MirrorMaker 2 mirrors the topics.
func realMM2() bool { return realKafka() && os.Getenv(envMirror) == "mm2" }

// realEnv is GEOREP_KAFKA parsed: clusters by region, in the order given.
type realEnv struct {
	brokers map[string][]string
	order   []string
}

func parseRealEnv(s string) (realEnv, error) {
	env := realEnv{brokers: map[string][]string{}}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, addrs, ok := strings.Cut(kv, "=")
		if !ok || name == "" || addrs == "" {
			return env, fmt.Errorf("%s: %q is not region=host:port[;host:port]", envKafka, kv)
		}
		if _, dup := env.brokers[name]; dup {
			return env, fmt.Errorf("%s: region %s given twice", envKafka, name)
		}
		env.brokers[name] = strings.Split(addrs, ";")
		env.order = append(env.order, name)
	}
	if len(env.order) == 0 {
		return env, fmt.Errorf("%s is empty", envKafka)
	}
	return env, nil
}

// clusterFor maps the test's regions to clusters: by name when GEOREP_KAFKA
// has them all, else by position (bridges do not care about names;
// MirrorMaker 2 names mirrors after its cluster aliases, so it needs them).
func (e realEnv) clusterFor(t *testing.T, regions []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	byName := true
	for _, r := range regions {
		if _, ok := e.brokers[r]; !ok {
			byName = false
		}
	}
	switch {
	case byName:
		for _, r := range regions {
			out[r] = e.brokers[r]
		}
	case realMM2():
		t.Skipf("regions %v are not all MirrorMaker 2 clusters of %s=%s", regions, envKafka, os.Getenv(envKafka))
	case len(regions) > len(e.order):
		t.Skipf("test needs %d regions, %s has %d clusters (regions of one test cannot share a cluster)", len(regions), envKafka, len(e.order))
	default:
		for i, r := range regions {
			out[r] = e.brokers[e.order[i]]
		}
	}
	return out
}

var georepBin struct {
	once sync.Once
	path string
	err  error
}

// georepBinary builds cmd/georep once per test binary run (or uses
// GEOREP_BIN). The binary goes to a fixed per-user path, replaced atomically.
func georepBinary(t *testing.T) string {
	t.Helper()
	georepBin.once.Do(func() {
		if p := os.Getenv(envBin); p != "" {
			georepBin.path, georepBin.err = filepath.Abs(p)
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("georep-integration-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			georepBin.err = err
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("georep.%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "../cmd/georep")
		out, err := cmd.CombinedOutput()
		if err != nil {
			georepBin.err = fmt.Errorf("build georep: %v\n%s", err, out)
			return
		}
		georepBin.path = filepath.Join(dir, "georep")
		georepBin.err = os.Rename(tmp, georepBin.path)
	})
	if georepBin.err != nil {
		t.Fatal(georepBin.err)
	}
	return georepBin.path
}

// realCluster is the real-Kafka side of a cluster: node processes, their
// topic and directories. It survives c.restart.
type realCluster struct {
	t       *testing.T
	regions []string
	brokers map[string][]string // region -> its cluster's bootstrap servers
	ids     map[string]uint32
	dir     string   // the processes' logs
	topic   string   // the topic of the current start
	topics  []string // every topic of every start, deleted at the end
	cfg     deploy.DevConfig
	addrs   map[string]string // RESP addresses, kept across restarts
	nodes   map[string]*proc
	bridges map[string]*proc // "src>dst" standalone bridges (faults tests)
	starts  int
}

// embedded returns the embedded deployment, or skips the test in real-Kafka
// mode, where there is none: tests that inject broker errors (kfake) or reach
// into in-process regions call it.
func (c *cluster) embedded(why string) *deploy.Dev {
	c.t.Helper()
	if c.real != nil {
		c.t.Skipf("needs the embedded deployment (%s); %s runs real brokers and node processes", why, envKafka)
	}
	return c.dev
}

// topic is the regions' topic name: oplog.Topic on embedded Kafka, the
// test's own topic on real Kafka (mirrors are oplog.MirrorTopic(peer, topic)).
// Tests that produce to georep topics themselves use it.
func (c *cluster) topic() string {
	if c.real != nil {
		return c.real.topic
	}
	return oplog.Topic
}

// startReal starts (or restarts) c's regions as node processes. It fills
// c.dev (names, instance IDs, brokers), c.clients, c.stop and c.done the
// way the embedded start does.
func (c *cluster) startReal() {
	t := c.t
	t.Helper()
	if c.real == nil {
		env, err := parseRealEnv(os.Getenv(envKafka))
		if err != nil {
			t.Fatal(err)
		}
		c.real = &realCluster{
			t:       t,
			regions: c.names,
			brokers: env.clusterFor(t, c.names),
			ids:     map[string]uint32{},
			dir:     t.TempDir(),
			addrs:   map[string]string{},
			nodes:   map[string]*proc{},
			bridges: map[string]*proc{},
		}
		for i, r := range c.names {
			c.real.ids[r] = uint32(i + 1)
		}
		t.Cleanup(c.real.cleanup)
	}
	rc := c.real
	if len(c.names) > len(rc.regions) { // regions added (c.addRegion)
		env, err := parseRealEnv(os.Getenv(envKafka))
		if err != nil {
			t.Fatal(err)
		}
		rc.brokers = env.clusterFor(t, c.names)
		var next uint32
		for _, id := range rc.ids {
			next = max(next, id)
		}
		for _, r := range c.names[len(rc.regions):] {
			next++
			rc.ids[r] = next
		}
		rc.regions = slices.Clone(c.names)
	}
	rc.cfg = c.cfg
	if rc.cfg.Partitions == 0 {
		rc.cfg.Partitions = oplog.DefaultPartitions
	}
	if rc.topic == "" || rc.cfg.DataDir == "" {
		// Like the embedded deployment, a restart without a data directory
		// starts from nothing: new topics, empty state.
		rc.newTopic()
	}
	rc.starts++
	bin := georepBinary(t)
	if err := rc.createTopics(); err != nil {
		t.Fatal(err)
	}

	c.dev = &deploy.Dev{}
	for _, r := range rc.regions {
		c.dev.Regions = append(c.dev.Regions, &deploy.DevRegion{Name: r, InstanceID: rc.ids[r], Brokers: rc.brokers[r]})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(rc.regions))
	for i, r := range rc.regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rc.startNode(bin, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		rc.stopAll()
		t.Fatal(err)
	}
	c.clients = map[string]*redis.Client{}
	for _, r := range rc.regions {
		c.clients[r] = redis.NewClient(&redis.Options{Addr: rc.addrs[r], Protocol: 2, MaxRetries: -1, ReadTimeout: 25 * time.Second})
	}
	c.done = make(chan error, 1)
	c.stop = func() {
		go func() { c.done <- rc.stopAll() }()
	}
	c.stopped = false
}

// newTopic picks a topic no other test uses.
func (rc *realCluster) newTopic() {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d|%d", rc.t.Name(), time.Now().UnixNano(), os.Getpid(), rc.starts)))
	rc.topic = "t" + hex.EncodeToString(h[:5]) + "." + oplog.Topic
	rc.topics = append(rc.topics, rc.topic)
}

// createTopics creates the test's topics in every cluster, as an operator
// would, and waits until each broker lists them. (The nodes and their bridges
// would create them too, racing each other; oplog.EnsureTopics copes with
// that, but creating them first keeps the nodes' start short.)
func (rc *realCluster) createTopics() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range rc.regions {
		topics := []string{rc.topic}
		for _, p := range rc.regions {
			if p != r {
				topics = append(topics, oplog.MirrorTopic(p, rc.topic))
			}
		}
		for {
			cl, err := kgo.NewClient(kgo.SeedBrokers(rc.brokers[r]...))
			if err != nil {
				return err
			}
			err = oplog.EnsureTopics(ctx, kadm.NewClient(cl), rc.cfg.Partitions, topics...)
			cl.Close()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create topics in %s (%s): %w", r, strings.Join(rc.brokers[r], ","), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// nodeArgs is the command line of a region's node.
func (rc *realCluster) nodeArgs(r string) []string {
	addr := rc.addrs[r]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := []string{"--log-level", "info", "node",
		"--region", r,
		"--instance-id", strconv.FormatUint(uint64(rc.ids[r]), 10),
		"--brokers", strings.Join(rc.brokers[r], ","),
		"--topic", rc.topic,
		"--partitions", strconv.Itoa(int(rc.cfg.Partitions)),
		"--addr", addr,
	}
	var peers, peerBrokers []string
	for _, p := range rc.regions {
		if p == r {
			continue
		}
		peers = append(peers, p)
		peerBrokers = append(peerBrokers, p+"="+strings.Join(rc.brokers[p], ";"))
	}
	if len(peers) > 0 {
		args = append(args, "--peers", strings.Join(peers, ","))
	}
	if len(peerBrokers) > 0 {
		args = append(args, "--peer-brokers", strings.Join(peerBrokers, ","))
		if realMM2() || rc.cfg.NoBridges {
			args = append(args, "--mirror", "external")
		}
	}
	if rc.cfg.DataDir != "" {
		args = append(args, "--data-dir", filepath.Join(rc.cfg.DataDir, r, "state"))
	}
	if rc.cfg.WriteTimeout != 0 {
		args = append(args, "--write-timeout", rc.cfg.WriteTimeout.String())
	}
	if d := rc.cfg.ClockOffsets[r]; d != 0 {
		args = append(args, "--clock-offset="+d.String()) // "=": the value may start with "-"
	}
	if rc.cfg.RequirePass != "" {
		args = append(args, "--requirepass", rc.cfg.RequirePass)
	}
	if rc.cfg.Changelog {
		args = append(args, "--changelog", "--changelog-topic", rc.cfg.ChangelogTopic)
	}
	if slices.Contains(rc.cfg.StartPaused, r) {
		args = append(args, "--start-paused")
	}
	return args
}

// startNode starts region r's node and waits for its ready line (for a
// region started paused, which is not writable until RESUME, its listening
// line).
func (rc *realCluster) startNode(bin, r string) error {
	want := "ready: RESP on "
	if slices.Contains(rc.cfg.StartPaused, r) {
		want = "listening: RESP on "
	}
	line, p, err := startProc(filepath.Join(rc.dir, r+".log"), bin, rc.nodeArgs(r), want, 90*time.Second)
	if err != nil {
		return fmt.Errorf("node %s: %w", r, err)
	}
	_, addr, _ := strings.Cut(line, want)
	rc.addrs[r] = strings.TrimSpace(addr)
	rc.nodes[r] = p
	return nil
}

// restartNode starts a stopped or killed node again (same data directory,
// same address).
func (rc *realCluster) restartNode(r string) {
	rc.t.Helper()
	if p := rc.nodes[r]; p != nil && !p.exitedNow() {
		rc.t.Fatalf("node %s is still running", r)
	}
	if err := rc.startNode(georepBinary(rc.t), r); err != nil {
		rc.t.Fatal(err)
	}
}

// kill9 kills a node with SIGKILL and waits until it is gone.
func (rc *realCluster) kill9(r string) {
	rc.t.Helper()
	rc.nodes[r].kill()
}

// startBridge runs `georep bridge` copying src's topic into dst's cluster.
func (rc *realCluster) startBridge(src, dst string) {
	rc.t.Helper()
	args := []string{"--log-level", "info", "bridge",
		"--peer", src,
		"--source-brokers", strings.Join(rc.brokers[src], ","),
		"--target-brokers", strings.Join(rc.brokers[dst], ","),
		"--topic", rc.topic,
		"--partitions", strconv.Itoa(int(rc.cfg.Partitions)),
	}
	// A bridge prints no ready line: it is up once started.
	_, p, err := startProc(filepath.Join(rc.dir, "bridge-"+src+"-"+dst+".log"), georepBinary(rc.t), args, "", 0)
	if err != nil {
		rc.t.Fatalf("bridge %s>%s: %v", src, dst, err)
	}
	rc.bridges[src+">"+dst] = p
}

// stopAll stops bridges and nodes (SIGTERM, then SIGKILL after 20s) and
// reports nodes that had exited on their own.
func (rc *realCluster) stopAll() error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	stop := func(name string, p *proc) {
		defer wg.Done()
		if err := p.stop(20 * time.Second); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w\n%s", name, err, p.tail(30)))
			mu.Unlock()
		}
	}
	for name, p := range rc.bridges {
		wg.Add(1)
		go stop("bridge "+name, p)
	}
	wg.Wait()
	for name, p := range rc.nodes {
		wg.Add(1)
		go stop("node "+name, p)
	}
	wg.Wait()
	clear(rc.bridges)
	clear(rc.nodes)
	return errors.Join(errs...)
}

// cleanup runs after the cluster closed: it stops what is left, prints the
// processes' logs of a failed test and deletes the test's topics.
func (rc *realCluster) cleanup() {
	if err := rc.stopAll(); err != nil {
		rc.t.Error(err)
	}
	if rc.t.Failed() || os.Getenv("GEOREP_TEST_LOGS") != "" {
		ents, _ := os.ReadDir(rc.dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".log") {
				rc.t.Logf("--- %s (last lines)\n%s", e.Name(), tailFile(filepath.Join(rc.dir, e.Name()), 60))
			}
		}
	}
	rc.deleteTopics()
}

// deleteTopics removes every topic this test created (own topics first, so
// MirrorMaker 2 does not recreate mirrors of them), best effort.
func (rc *realCluster) deleteTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, mirrors := range []bool{false, true} {
		for _, r := range rc.regions {
			var del []string
			for _, topic := range rc.topics {
				if !mirrors {
					del = append(del, topic)
					continue
				}
				for _, p := range rc.regions {
					if p != r {
						del = append(del, oplog.MirrorTopic(p, topic))
					}
				}
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(rc.brokers[r]...))
			if err != nil {
				continue
			}
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, del...)
			cl.Close()
		}
	}
}

// proc is a child process whose output goes to a log file.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // once exited
	mu     sync.Mutex
	killed bool // stopped or killed by the test
}

// startProc starts bin with args, stdout and stderr appended to logPath.
// With a non-empty ready string it waits up to timeout for a stdout line
// containing it and returns that line.
func startProc(logPath, bin string, args []string, ready string, timeout time.Duration) (string, *proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintf(lf, "=== %s %s\n", time.Now().Format(time.TimeOnly), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return "", nil, err
	}
	p := &proc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := ready == ""
		for sc.Scan() {
			fmt.Fprintln(lf, sc.Text())
			if !sent && strings.Contains(sc.Text(), ready) {
				lines <- sc.Text()
				sent = true
			}
		}
		p.err = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	if ready == "" {
		return "", p, nil
	}
	select {
	case line := <-lines:
		return line, p, nil
	case <-p.exited:
		return "", nil, fmt.Errorf("exited before it was ready (%v):\n%s", p.err, p.tail(40))
	case <-time.After(timeout):
		p.kill()
		return "", nil, fmt.Errorf("not ready within %s:\n%s", timeout, p.tail(40))
	}
}

func (p *proc) exitedNow() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM, waits up to timeout, then kills. It reports an exit
// the test did not ask for, or an unclean one.
func (p *proc) stop(timeout time.Duration) error {
	p.mu.Lock()
	wasKilled := p.killed
	p.killed = true
	p.mu.Unlock()
	if p.exitedNow() {
		if wasKilled {
			return nil
		}
		return fmt.Errorf("exited on its own: %v", p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("exit after SIGTERM: %v", p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("did not stop within %s of SIGTERM; killed", timeout)
	}
}

func (p *proc) tail(n int) string { return tailFile(p.log, n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
