package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogtest"
)

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dev starts an embedded deployment and returns a client per region and a
// func that stops it (also called at cleanup).
func dev(t *testing.T, dataDir string, regions ...string) (*deploy.Dev, map[string]*redis.Client, func()) {
	t.Helper()
	return devWith(t, deploy.DevConfig{Regions: regions, Partitions: 4, DataDir: dataDir})
}

// devWith is dev with a whole configuration.
func devWith(t *testing.T, cfg deploy.DevConfig) (*deploy.Dev, map[string]*redis.Client, func()) {
	t.Helper()
	d, err := deploy.NewDev(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = d.Run(ctx); close(done) }()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		stop()
		if runErr != nil {
			t.Errorf("deployment: %v", runErr)
		}
	})
	clients := map[string]*redis.Client{}
	for _, r := range d.Regions {
		select {
		case <-r.Region.Node.Ready():
		case <-done:
			t.Fatalf("deployment stopped: %v", runErr)
		case <-time.After(60 * time.Second):
			t.Fatalf("region %s not ready", r.Name)
		}
		c := redis.NewClient(&redis.Options{Addr: r.Region.Server.Addr(), Protocol: 2})
		t.Cleanup(func() { c.Close() })
		clients[r.Name] = c
	}
	return d, clients, stop
}

func do(t *testing.T, c *redis.Client, args ...any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if err != nil && err != redis.Nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

func runReplay(t *testing.T, c *ReplayCmd) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.run(ctx, testLog(t), &out, newStatusLine(&bytes.Buffer{}), "none")
	return out.String(), err
}

func runDigest(t *testing.T, dir string) string {
	t.Helper()
	var out bytes.Buffer
	if err := (&DigestCmd{DataDir: dir}).run(context.Background(), testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// TestReplayCmd_RebuiltRegionHasTheLiveDigest writes a mix of strings,
// counters from several regions, deletes and expiries, waits until the
// regions converge, then rebuilds each region from its embedded Kafka
// cluster and checks the rebuilt digest equals the live one.
func TestReplayCmd_RebuiltRegionHasTheLiveDigest(t *testing.T) {
	regions := []string{"us", "eu", "ap"}
	d, c, _ := dev(t, "", regions...)
	for i := 0; i < 30; i++ {
		r := regions[i%3]
		k := fmt.Sprintf("s%d", i%10)
		do(t, c[r], "SET", k, fmt.Sprintf("%s-%d", r, i))
		do(t, c[r], "INCRBY", "hits", i)
		do(t, c[r], "INCRBYFLOAT", "temp", "0.1")
		do(t, c[r], "INCR", fmt.Sprintf("ctr%d", i%4))
	}
	do(t, c["us"], "SET", "doomed", "x")
	do(t, c["eu"], "DEL", "s1", "s2", "ctr1")
	do(t, c["ap"], "SET", "later", "v", "EX", "86400")
	do(t, c["us"], "PEXPIRE", "s3", "1") // expires at once; us reaps it
	do(t, c["eu"], "EXPIRE", "hits", "100000")
	do(t, c["ap"], "PERSIST", "hits")
	do(t, c["eu"], "EXPIREAT", "s4", time.Now().Add(48*time.Hour).Unix())
	do(t, c["ap"], "DEL", "doomed")
	for _, r := range regions {
		do(t, c[r], "GEOREP", "SYNC", "30000")
	}
	live := map[string]string{}
	for _, r := range regions {
		live[r] = do(t, c[r], "GEOREP", "DIGEST").(string)
	}
	if live["us"] != live["eu"] || live["us"] != live["ap"] {
		t.Fatalf("live regions differ: %v", live)
	}
	for _, dr := range d.Regions {
		dir := filepath.Join(t.TempDir(), "state")
		out, err := runReplay(t, &ReplayCmd{Brokers: dr.Brokers, Region: dr.Name, DataDir: dir, Topic: oplog.Topic})
		if err != nil {
			t.Fatalf("replay %s: %v\n%s", dr.Name, err, out)
		}
		if !strings.Contains(out, "replay of region "+dr.Name+" complete") || !strings.Contains(out, "bad records        0") {
			t.Fatalf("summary:\n%s", out)
		}
		if got := runDigest(t, dir); got != live[dr.Name] {
			t.Fatalf("region %s: rebuilt digest %s, live %s\n%s", dr.Name, got, live[dr.Name], out)
		}
	}
}

func TestReplayCmd_Directory(t *testing.T) {
	c := newCluster(t)
	o := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli())
	produceRecs(t, c, o.Record("us", oplog.Topic, o.Set("k", "v"), 4))
	dir := t.TempDir()
	cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: dir, Topic: oplog.Topic}
	if _, err := runReplay(t, cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := runReplay(t, cmd); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second replay into the same directory: %v", err)
	}
	cmd.Force = true
	if out, err := runReplay(t, cmd); err != nil || !strings.Contains(out, "complete") {
		t.Fatalf("forced: %v\n%s", err, out)
	}
}

func TestReplayCmd_Progress(t *testing.T) {
	c := newCluster(t)
	recs := oplogtest.Workload(oplogtest.Mixed, 20000, 1000, 1, "us", oplog.Topic, 4, origins()...)
	recs = append(recs, &kgo.Record{Topic: oplog.Topic, Partition: 1, Key: []byte("k"), Value: []byte{0xff, 0xff}})
	produceRecs(t, c, recs...)
	for _, mode := range []string{"lines", "bar"} {
		t.Run(mode, func(t *testing.T) {
			var out, errOut syncBuffer
			cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: t.TempDir(), Topic: oplog.Topic, Interval: time.Millisecond}
			if err := cmd.run(context.Background(), testLog(t), &out, newStatusLine(&errOut), mode); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			for _, want := range []string{"complete", "georep.ops", "mirror of eu", "events applied     20,000", "bad records        1 skipped", "us(1)="} {
				if !strings.Contains(s, want) {
					t.Errorf("summary lacks %q:\n%s", want, s)
				}
			}
			progress := errOut.String()
			if mode == "lines" && !strings.Contains(progress, "replay us: ") {
				t.Errorf("no progress lines: %q", progress)
			}
			if mode == "bar" && progress != "" && !strings.HasSuffix(progress, clearLine) {
				t.Errorf("bar not cleared at the end: %q", progress)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	p := materializer.ReplayProgress{Events: 1500000, Read: 1500000, Remaining: 500000, Total: 2000000, Elapsed: 3 * time.Second}
	got := progressBar("us", p, 20)
	want := "replay us [==============>     ]  75.0%  1,500,000 events  500,000/s  500,000 records left  ETA 1s"
	if got != want {
		t.Fatalf("bar\n got %q\nwant %q", got, want)
	}
	if got := progressLine("us", p); got != "replay us: 75.0%, 1,500,000 events applied, 500,000 events/s, 500,000 records remaining" {
		t.Fatalf("line %q", got)
	}
}

func TestStatusLine_LogsGoAboveTheBar(t *testing.T) {
	var b bytes.Buffer
	s := newStatusLine(&b)
	s.Set("bar 1")
	fmt.Fprintln(s, "a log line")
	s.Set("bar 2")
	s.Clear()
	want := clearLine + "bar 1" + clearLine + "a log line\n" + "bar 1" + clearLine + "bar 2" + clearLine
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func origins() []*oplogtest.Origin {
	now := time.Now().Add(-time.Hour).UnixMilli()
	return []*oplogtest.Origin{oplogtest.NewOrigin("us", 1, now), oplogtest.NewOrigin("eu", 2, now), oplogtest.NewOrigin("ap", 3, now)}
}

func produceRecs(t *testing.T, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := oplogtest.Produce(ctx, c.ListenAddrs(), 4, recs); err != nil {
		t.Fatal(err)
	}
}

// TestReplayCmd_RefusedLeavesNoDirectory checks that a replay refused after
// it created its directory removes what it created, and only that.
func TestReplayCmd_RefusedLeavesNoDirectory(t *testing.T) {
	c := newCluster(t)
	o := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli())
	produceRecs(t, c, o.Record("us", oplog.Topic, o.Set("k", "v"), 4))
	base := t.TempDir()
	t.Run("Created", func(t *testing.T) {
		top := filepath.Join(base, "new")
		cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: filepath.Join(top, "state"), Topic: oplog.Topic, Partitions: 3}
		if _, err := runReplay(t, cmd); err == nil || !strings.Contains(err.Error(), "partitions") {
			t.Fatalf("replay with the wrong partition count: %v", err)
		}
		if _, err := os.Stat(top); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the refused replay left %s: %v", top, err)
		}
	})
	t.Run("Existing", func(t *testing.T) {
		dir := filepath.Join(base, "mine")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: dir, Topic: oplog.Topic, Partitions: 3}
		if _, err := runReplay(t, cmd); err == nil {
			t.Fatal("replay with the wrong partition count succeeded")
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("the user's directory: %v", err)
		}
	})
	t.Run("NotEmpty", func(t *testing.T) {
		dir := filepath.Join(base, "full")
		if err := os.MkdirAll(filepath.Join(dir, "keep"), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: dir, Topic: oplog.Topic}
		if _, err := runReplay(t, cmd); !errors.Is(err, materializer.ErrNotEmpty) {
			t.Fatalf("replay into a non-empty directory: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
			t.Fatalf("the user's directory: %v", err)
		}
	})
}

func TestFirstMissing(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct{ dir, want string }{
		{base, ""},
		{filepath.Join(base, "a"), filepath.Join(base, "a")},
		{filepath.Join(base, "a", "b", "c"), filepath.Join(base, "a")},
	} {
		if got, err := firstMissing(tc.dir); err != nil || got != tc.want {
			t.Errorf("firstMissing(%s) = %q, %v; want %q", tc.dir, got, err, tc.want)
		}
	}
}

// TestReplayCmd_BadRecordsLogged checks that the log accounts for every bad
// record: each is logged with its topic, partition and offset, or counted in
// an "... and K more" line.
func TestReplayCmd_BadRecordsLogged(t *testing.T) {
	c := newCluster(t)
	o := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli())
	recs := []*kgo.Record{o.Record("us", oplog.Topic, o.Set("k", "v"), 4)}
	const nbad = 25
	for i := 0; i < nbad; i++ {
		recs = append(recs, &kgo.Record{Topic: oplog.Topic, Partition: 2, Key: []byte("k"), Value: []byte{0xff, byte(i)}})
	}
	produceRecs(t, c, recs...)
	var logBuf syncBuffer
	cmd := &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: t.TempDir(), Topic: oplog.Topic}
	var out bytes.Buffer
	if err := cmd.run(context.Background(), zerolog.New(&logBuf), &out, newStatusLine(&bytes.Buffer{}), "none"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("bad records        %d skipped", nbad)) {
		t.Fatalf("summary:\n%s", out.String())
	}
	var logged, skipped int64
	offsets := map[int64]bool{}
	dec := json.NewDecoder(strings.NewReader(logBuf.String()))
	for dec.More() {
		var l struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    *int64 `json:"offset"`
			Skipped   int64  `json:"skipped"`
		}
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		switch {
		case l.Offset != nil:
			if l.Topic != oplog.Topic || l.Partition != 2 || offsets[*l.Offset] {
				t.Errorf("bad record line %+v", l)
			}
			offsets[*l.Offset] = true
			logged++
		case l.Skipped > 0:
			skipped += l.Skipped
		}
	}
	if logged == 0 || logged+skipped != nbad {
		t.Fatalf("%d bad records logged, %d summarized, want %d in all:\n%s", logged, skipped, nbad, logBuf.String())
	}
}

// TestReplayCmd_WrongRegion checks that a replay under another region's
// name is refused, naming both regions.
func TestReplayCmd_WrongRegion(t *testing.T) {
	c := newCluster(t)
	os3 := origins()
	produceRecs(t, c, oplogtest.Workload(oplogtest.Mixed, 400, 50, 1, "us", oplog.Topic, 4, os3...)...)
	dir := filepath.Join(t.TempDir(), "state")
	_, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "xx", DataDir: dir, Topic: oplog.Topic})
	want := fmt.Sprintf("replay: topic georep.ops on %s holds region us's events, not xx's (use --region us)", strings.Join(c.ListenAddrs(), ","))
	if !errors.Is(err, materializer.ErrWrongRegion) || err.Error() != want {
		t.Fatalf("replay as xx of us's cluster: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused replay left %s: %v", dir, err)
	}
	if out, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: dir, Topic: oplog.Topic}); err != nil {
		t.Fatalf("replay as us: %v\n%s", err, out)
	}
}

// TestReplayCmd_EmptyOwnTopic checks that an empty own topic passes the
// region check.
func TestReplayCmd_EmptyOwnTopic(t *testing.T) {
	c := newCluster(t)
	eu := oplogtest.NewOrigin("eu", 2, time.Now().UnixMilli())
	produceRecs(t, c, eu.Record("eu", oplog.MirrorTopic("eu", oplog.Topic), eu.Set("k", "v"), 4))
	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, oplog.Topic); err != nil {
		t.Fatal(err)
	}
	out, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: t.TempDir(), Topic: oplog.Topic})
	if err != nil || !strings.Contains(out, "complete") || !strings.Contains(out, "eu(2)=1") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func newClient(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
