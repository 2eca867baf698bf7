package materializer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogtest"
)

const testParts = 4

func newCluster(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(testParts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// origins returns regions us, eu, ap (instance IDs 1..3) whose clocks
// start an hour ago, so the workload's short expiries are all past.
func origins() []*oplogtest.Origin {
	now := time.Now().Add(-time.Hour).UnixMilli()
	return []*oplogtest.Origin{
		oplogtest.NewOrigin("us", 1, now),
		oplogtest.NewOrigin("eu", 2, now),
		oplogtest.NewOrigin("ap", 3, now),
	}
}

func produce(t testing.TB, c *kfake.Cluster, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := oplogtest.Produce(ctx, c.ListenAddrs(), testParts, recs); err != nil {
		t.Fatal(err)
	}
}

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func replay(t testing.TB, c *kfake.Cluster, cfg materializer.ReplayConfig) (materializer.ReplayResult, error) {
	t.Helper()
	cfg.Region = "us"
	cfg.Brokers = c.ListenAddrs()
	cfg.FetchMaxWait = 20 * time.Millisecond
	r, err := materializer.NewReplay(cfg, testLog(t))
	if err != nil {
		return materializer.ReplayResult{}, err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return r.Run(ctx)
}

func digestOf(t testing.TB, dir string) string {
	t.Helper()
	s, err := materializer.OpenState(dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Digest(time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReplay_MatchesLiveNode(t *testing.T) {
	c := newCluster(t)
	recs := oplogtest.Workload(oplogtest.Mixed, 20000, 500, 1, "us", oplog.Topic, testParts, origins()...)
	// A truncated event on a mirror and a foreign record on the own topic.
	trunc := *recs[1]
	trunc.Value = trunc.Value[:len(trunc.Value)/2]
	recs = append(recs, &trunc, &kgo.Record{Topic: oplog.Topic, Partition: 2, Key: []byte("x"), Value: []byte("not an event")})
	produce(t, c, recs)

	// A live node of region us (an instance ID no event has, so its reaper
	// writes nothing) catches up with the same topics.
	n, err := materializer.New(materializer.Config{
		Region: "us", InstanceID: 9, Peers: []string{"eu", "ap"}, Brokers: c.ListenAddrs(),
		DataDir: t.TempDir(), Partitions: testParts, FetchMaxWait: 20 * time.Millisecond,
	}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	if err := n.Sync(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	live, err := n.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bad := n.Status(ctx).BadRecords; bad != 2 {
		t.Errorf("live node counted %d bad records, want 2", bad)
	}
	// Its snapshot names the origins, for a replay from it.
	hdr, _, err := n.WriteSnapshot(ctx, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Origins[1] != "us" || hdr.Origins[2] != "eu" || hdr.Origins[3] != "ap" {
		t.Errorf("snapshot header origins %v", hdr.Origins)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "state")
	res, err := replay(t, c, materializer.ReplayConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Resumed || res.Read != int64(len(recs)) || res.Remaining != 0 || res.BadRecords != 2 {
		t.Fatalf("result %+v", res)
	}
	if res.Applied.Get(1)+res.Applied.Get(2)+res.Applied.Get(3) != 20000 || res.Events != 20000 {
		t.Fatalf("applied %v / %d, want 20000 events", res.Applied, res.Events)
	}
	if len(res.Topics) != 3 || res.Topics[0].Name != oplog.Topic || res.Partitions != testParts {
		t.Fatalf("topics %+v", res.Topics)
	}
	if res.Origins[2] != "eu" {
		t.Fatalf("origins %v", res.Origins)
	}
	if _, err := os.Stat(filepath.Join(dir, materializer.ReplayMarkerFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("progress marker left after a finished replay: %v", err)
	}
	if got := digestOf(t, dir); got != live {
		t.Fatalf("replayed digest %s, live %s", got, live)
	}
}

func TestReplay_ContinuesWhereItStopped(t *testing.T) {
	c := newCluster(t)
	recs := oplogtest.Workload(oplogtest.Mixed, 30000, 3000, 2, "us", oplog.Topic, testParts, origins()...)
	produce(t, c, recs)

	dir := t.TempDir()
	r, err := materializer.NewReplay(materializer.ReplayConfig{
		Region: "us", Brokers: c.ListenAddrs(), DataDir: dir, ApplyBatch: 8, FetchMaxWait: 20 * time.Millisecond,
	}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for r.Progress().Events < 1000 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := r.Run(ctx)
	cancel()
	r.Close()
	if !errors.Is(err, context.Canceled) || res.Complete {
		t.Fatalf("interrupted replay: %+v, %v", res, err)
	}
	first := res.Read
	if first == 0 || first >= int64(len(recs)) {
		t.Fatalf("interrupted after %d of %d records", first, len(recs))
	}

	res, err = replay(t, c, materializer.ReplayConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Complete || res.Read+first != int64(len(recs)) {
		t.Fatalf("resumed replay read %d after %d, of %d (%+v)", res.Read, first, len(recs), res)
	}
	full := t.TempDir()
	if _, err := replay(t, c, materializer.ReplayConfig{DataDir: full}); err != nil {
		t.Fatal(err)
	}
	if a, b := digestOf(t, dir), digestOf(t, full); a != b {
		t.Fatalf("resumed replay digest %s, uninterrupted %s", a, b)
	}
}

func TestReplay_Directory(t *testing.T) {
	c := newCluster(t)
	produce(t, c, oplogtest.Workload(oplogtest.Strings, 100, 10, 3, "us", oplog.Topic, testParts, origins()...))

	t.Run("ErrNotEmpty", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "something"), []byte("x"), 0o644)
		if _, err := replay(t, c, materializer.ReplayConfig{DataDir: dir}); !errors.Is(err, materializer.ErrNotEmpty) {
			t.Fatalf("err = %v, want ErrNotEmpty", err)
		}
	})
	t.Run("FinishedReplayIsNotResumed", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := replay(t, c, materializer.ReplayConfig{DataDir: dir}); err != nil {
			t.Fatal(err)
		}
		if _, err := replay(t, c, materializer.ReplayConfig{DataDir: dir}); !errors.Is(err, materializer.ErrNotEmpty) {
			t.Fatalf("err = %v, want ErrNotEmpty", err)
		}
		res, err := replay(t, c, materializer.ReplayConfig{DataDir: dir, Force: true})
		if err != nil || !res.Complete || res.Read != 0 {
			t.Fatalf("forced replay over a finished one: %+v, %v", res, err)
		}
	})
	t.Run("ErrReplayMismatch", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, materializer.ReplayMarkerFile), []byte(`{"region":"eu","topic":"georep.ops"}`), 0o644)
		if _, err := replay(t, c, materializer.ReplayConfig{DataDir: dir}); !errors.Is(err, materializer.ErrReplayMismatch) {
			t.Fatalf("err = %v, want ErrReplayMismatch", err)
		}
	})
	t.Run("ErrWrongCluster", func(t *testing.T) {
		c2 := newCluster(t)
		o := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli())
		produce(t, c2, []*kgo.Record{o.Record("eu", oplog.Topic, o.Set("k", "v"), testParts)})
		if _, err := replay(t, c2, materializer.ReplayConfig{DataDir: t.TempDir()}); !errors.Is(err, materializer.ErrWrongCluster) {
			t.Fatalf("err = %v, want ErrWrongCluster", err)
		}
	})
	t.Run("ErrNoTopic", func(t *testing.T) {
		if _, err := replay(t, c, materializer.ReplayConfig{DataDir: t.TempDir(), Peers: []string{"xx"}}); !errors.Is(err, oplog.ErrNoTopic) {
			t.Fatalf("err = %v, want ErrNoTopic", err)
		}
	})
}

func TestReplay_RetentionGap(t *testing.T) {
	c := newCluster(t)
	recs := oplogtest.Workload(oplogtest.Strings, 1000, 100, 4, "us", oplog.Topic, testParts, origins()...)
	produce(t, c, recs)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: oplog.Topic, Partition: 1, At: 5})
	if _, err := kadm.NewClient(cl).DeleteRecords(context.Background(), os); err != nil {
		t.Fatal(err)
	}
	if _, err := replay(t, c, materializer.ReplayConfig{DataDir: t.TempDir()}); !errors.Is(err, materializer.ErrLogGap) {
		t.Fatalf("err = %v, want ErrLogGap", err)
	}
	res, err := replay(t, c, materializer.ReplayConfig{DataDir: t.TempDir(), AllowGaps: true})
	if err != nil || !res.Complete || len(res.Gaps) != 1 || res.Read != int64(len(recs))-5 {
		t.Fatalf("replay allowing gaps: %+v, %v", res, err)
	}
}

func TestSnapshot_RestoreThenReplayTheRest(t *testing.T) {
	c := newCluster(t)
	os3 := origins()
	produce(t, c, oplogtest.Workload(oplogtest.Mixed, 5000, 300, 5, "us", oplog.Topic, testParts, os3...))

	dir := t.TempDir()
	if _, err := replay(t, c, materializer.ReplayConfig{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	s, err := materializer.OpenState(dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	hdr, st, err := s.WriteSnapshot(context.Background(), materializer.SnapshotHeader{Region: "us", Topic: oplog.Topic, Partitions: testParts,
		Origins: map[crdt.ReplicaID]string{7: "gone"}}, &snap)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys == 0 || len(hdr.Offsets) != 3 || hdr.Applied().Get(1) == 0 {
		t.Fatalf("snapshot %+v %+v", hdr, st)
	}

	more := oplogtest.Workload(oplogtest.Mixed, 3000, 300, 6, "us", oplog.Topic, testParts, os3...)
	produce(t, c, more)

	restore := func(t *testing.T, region string, data []byte) (materializer.ReplayResult, error) {
		t.Helper()
		dir := t.TempDir()
		r, err := materializer.NewReplay(materializer.ReplayConfig{Region: region, Brokers: c.ListenAddrs(), DataDir: dir, FetchMaxWait: 20 * time.Millisecond}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, ok, err := r.Restore(context.Background(), bytes.NewReader(data), "snap"); err != nil || !ok {
			return materializer.ReplayResult{}, err
		}
		res, err := r.Run(context.Background())
		if err == nil {
			r.Close()
			full := t.TempDir()
			if _, err := replay(t, c, materializer.ReplayConfig{DataDir: full}); err != nil {
				t.Fatal(err)
			}
			if a, b := digestOf(t, dir), digestOf(t, full); a != b {
				t.Fatalf("restored+replayed digest %s, full replay %s", a, b)
			}
		}
		return res, err
	}
	t.Run("OK", func(t *testing.T) {
		res, err := restore(t, "us", snap.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if res.Read != int64(len(more)) {
			t.Fatalf("after the snapshot, read %d records, want %d", res.Read, len(more))
		}
		if res.Origins[7] != "gone" || res.Origins[2] != "eu" {
			t.Fatalf("origins %v: want the snapshot's and the topics' names", res.Origins)
		}
	})
	t.Run("ErrBadSnapshot", func(t *testing.T) {
		b := snap.Bytes()
		if _, err := restore(t, "us", b[:len(b)-10]); !errors.Is(err, materializer.ErrBadSnapshot) {
			t.Fatalf("truncated: err = %v", err)
		}
		if _, err := restore(t, "us", []byte("hello")); !errors.Is(err, materializer.ErrBadSnapshot) {
			t.Fatalf("foreign: err = %v", err)
		}
	})
	t.Run("ErrSnapshotMismatch", func(t *testing.T) {
		if _, err := restore(t, "eu", snap.Bytes()); !errors.Is(err, materializer.ErrSnapshotMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSnapshot_InterruptedRestoreStartsOver(t *testing.T) {
	c := newCluster(t)
	produce(t, c, oplogtest.Workload(oplogtest.Strings, 2000, 200, 8, "us", oplog.Topic, testParts, origins()...))
	src := t.TempDir()
	if _, err := replay(t, c, materializer.ReplayConfig{DataDir: src}); err != nil {
		t.Fatal(err)
	}
	s, err := materializer.OpenState(src, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	_, _, err = s.WriteSnapshot(context.Background(), materializer.SnapshotHeader{Region: "us", Topic: oplog.Topic, Partitions: testParts}, &snap)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	// A restore cut short: the marker names the snapshot, not restored.
	dir := t.TempDir()
	open := func() *materializer.Replay {
		r, err := materializer.NewReplay(materializer.ReplayConfig{Region: "us", Brokers: c.ListenAddrs(), DataDir: dir, FetchMaxWait: 20 * time.Millisecond}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if _, _, err := r.Restore(context.Background(), bytes.NewReader(snap.Bytes()[:snap.Len()/2]), "snap"); !errors.Is(err, materializer.ErrBadSnapshot) {
		t.Fatalf("truncated restore: %v", err)
	}
	r.Close()

	r = open()
	if _, err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("replay after an unfinished restore: %v", err)
	}
	if _, ok, err := r.Restore(context.Background(), bytes.NewReader(snap.Bytes()), "snap"); err != nil || !ok {
		t.Fatalf("restore again: %v, %v", ok, err)
	}
	res, err := r.Run(context.Background())
	r.Close()
	if err != nil || !res.Resumed || res.Read != 0 {
		t.Fatalf("replay after the restore: %+v, %v", res, err)
	}
	if a, b := digestOf(t, dir), digestOf(t, src); a != b {
		t.Fatalf("digest %s, want %s", a, b)
	}
}

// TestReplay_OwnTopicOfSeveralRegions checks that a replay refuses an own
// topic holding the events of more than one region.
func TestReplay_OwnTopicOfSeveralRegions(t *testing.T) {
	c := newCluster(t)
	us, eu := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli()), oplogtest.NewOrigin("eu", 2, time.Now().UnixMilli())
	produce(t, c, []*kgo.Record{
		us.Record("us", oplog.Topic, us.Set("a", "1"), testParts),
		eu.Record("eu", oplog.Topic, eu.Set("zz", "2"), testParts),
	})
	_, err := replay(t, c, materializer.ReplayConfig{})
	var re *materializer.RegionError
	if !errors.As(err, &re) || !errors.Is(err, materializer.ErrWrongRegion) || strings.Join(re.Found, ",") != "eu,us" || re.Topic != oplog.Topic {
		t.Fatalf("replay of an own topic holding us and eu events: %v", err)
	}
}
