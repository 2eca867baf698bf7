package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogtest"
)

func TestSnapshotCmd_ReplayRestoresThenReadsOnlyTheRest(t *testing.T) {
	c := newCluster(t)
	os3 := origins()
	produceRecs(t, c, oplogtest.Workload(oplogtest.Mixed, 4000, 300, 1, "us", oplog.Topic, 4, os3...)...)
	first := t.TempDir()
	if out, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: first, Topic: oplog.Topic}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "us.snap")
	var out bytes.Buffer
	snap := &SnapshotCmd{DataDir: first, Out: file, Region: "us", Partitions: 4, Topic: oplog.Topic}
	if err := snap.run(context.Background(), testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"written to " + file, "region us, topic georep.ops, 4 partitions", "covers georep.ops", "covers eu.georep.ops", "applied vector 1="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("snapshot output lacks %q:\n%s", want, out.String())
		}
	}

	more := oplogtest.Workload(oplogtest.Mixed, 1500, 300, 2, "us", oplog.Topic, 4, os3...)
	produceRecs(t, c, more...)
	restored := filepath.Join(t.TempDir(), "state")
	s, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: restored, Snapshot: file, Topic: oplog.Topic})
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	if !strings.Contains(s, "restored snapshot "+file+" (region us") || !strings.Contains(s, "events applied     1,500") {
		t.Fatalf("summary:\n%s", s)
	}
	full := filepath.Join(t.TempDir(), "state")
	if _, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: full, Topic: oplog.Topic}); err != nil {
		t.Fatal(err)
	}
	if a, b := runDigest(t, restored), runDigest(t, full); a != b {
		t.Fatalf("restored digest %s, full replay %s", a, b)
	}

	// A replay that fails after restoring the snapshot keeps the restored
	// state (it made the directory, but read nothing): run again, it
	// continues from it.
	t.Run("FailedAfterRestore", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		empty := newCluster(t)
		out, err := runReplay(t, &ReplayCmd{Brokers: empty.ListenAddrs(), Region: "us", DataDir: dir, Snapshot: file, Topic: oplog.Topic})
		if err == nil || !strings.Contains(out, "restored snapshot") {
			t.Fatalf("replay from a cluster without the topics: %v\n%s", err, out)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("the restored state was removed: %v", err)
		}
		out, err = runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: dir, Snapshot: file, Topic: oplog.Topic})
		if err != nil || !strings.Contains(out, "was restored by the interrupted run") {
			t.Fatalf("%v\n%s", err, out)
		}
		if a, b := runDigest(t, dir), runDigest(t, full); a != b {
			t.Fatalf("digest after continuing %s, full replay %s", a, b)
		}
	})
	t.Run("ErrSnapshotMismatch", func(t *testing.T) {
		_, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "eu", DataDir: t.TempDir(), Snapshot: file, Topic: oplog.Topic})
		if !errors.Is(err, materializer.ErrSnapshotMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("WrongPartitions", func(t *testing.T) {
		snap := &SnapshotCmd{DataDir: first, Out: filepath.Join(t.TempDir(), "x"), Partitions: 2, Topic: oplog.Topic}
		if err := snap.run(context.Background(), testLog(t), &bytes.Buffer{}); !errors.Is(err, materializer.ErrSnapshotMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDigestCmd(t *testing.T) {
	t.Run("ErrNoState", func(t *testing.T) {
		err := (&DigestCmd{DataDir: t.TempDir()}).run(context.Background(), testLog(t), &bytes.Buffer{})
		if !errors.Is(err, materializer.ErrNoState) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("StoppedNodeHasItsLiveDigest", func(t *testing.T) {
		dir := t.TempDir()
		_, c, stopDev := dev(t, dir, "us", "eu")
		do(t, c["us"], "SET", "a", "1")
		do(t, c["eu"], "INCRBY", "n", "7")
		do(t, c["us"], "GEOREP", "SYNC", "30000")
		live := do(t, c["us"], "GEOREP", "DIGEST").(string)
		state := filepath.Join(dir, "us", "state")
		err := (&DigestCmd{DataDir: state}).run(context.Background(), testLog(t), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "node running") {
			t.Fatalf("digest of a running node's state: %v", err)
		}
		stopDev()
		if got := runDigest(t, state); got != live {
			t.Fatalf("digest of the stopped node's state %s, GEOREP DIGEST said %s", got, live)
		}
	})
}

// TestSnapshotCmd_FromRunningNode copies a snapshot from a running node over
// RESP (larger than one read, so it takes several), writes more, then
// restores the snapshot into an empty directory and replays the rest: the
// result has the live node's digest.
func TestSnapshotCmd_FromRunningNode(t *testing.T) {
	dir := t.TempDir()
	d, c, _ := dev(t, dir, "us", "eu")
	do(t, c["us"], "SET", "a", "1")
	do(t, c["eu"], "INCRBY", "n", "7")
	do(t, c["us"], "HSET", "h", "f", "v", "g", "w")
	do(t, c["eu"], "SADD", "s", "x", "y")
	do(t, c["us"], "ZADD", "z", "1", "m")
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 24; i++ { // ~2.4 MB that does not compress: 3 reads
		v := make([]byte, 100_000)
		for j := range v {
			v[j] = byte(rnd.Uint32())
		}
		do(t, c["us"], "SET", fmt.Sprintf("big%d", i), v)
	}
	do(t, c["us"], "GEOREP", "SYNC", "30000")
	us := d.Regions[0]

	file := filepath.Join(t.TempDir(), "us.snap")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := (&SnapshotCmd{Addr: us.Region.Server.Addr(), Out: file, Timeout: time.Minute}).run(ctx, testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" copied to " + file, "region us, topic georep.ops, 4 partitions", "covers eu.georep.ops", "applied vector 1="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	kept, err := filepath.Glob(filepath.Join(dir, "us", "snapshots", "us-*.snap"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("the node's snapshot directory holds %v (%v)", kept, err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() < 2<<20 {
		t.Fatalf("copied snapshot: %v, %v", st, err)
	}

	do(t, c["us"], "SET", "after", "2")
	do(t, c["eu"], "INCRBY", "n", "3")
	do(t, c["us"], "DEL", "h")
	do(t, c["us"], "GEOREP", "SYNC", "30000")
	live := do(t, c["us"], "GEOREP", "DIGEST").(string)
	restored := filepath.Join(t.TempDir(), "state")
	s, err := runReplay(t, &ReplayCmd{Brokers: us.Brokers, Region: "us", DataDir: restored, Snapshot: file, Topic: oplog.Topic})
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	if !strings.Contains(s, "restored snapshot "+file) || !strings.Contains(s, "events applied     3") {
		t.Fatalf("summary:\n%s", s)
	}
	if got := runDigest(t, restored); got != live {
		t.Fatalf("restored and replayed digest %s, live %s", got, live)
	}

	t.Run("ErrSnapshotsOff", func(t *testing.T) {
		d, _, _ := dev(t, "", "us")
		err := (&SnapshotCmd{Addr: d.Regions[0].Region.Server.Addr(), Out: filepath.Join(t.TempDir(), "x.snap"), Timeout: time.Minute}).run(ctx, testLog(t), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "snapshots are off") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDev_PeriodicSnapshots checks that periodic snapshots appear and that
// all but the newest --snapshot-keep are removed.
func TestDev_PeriodicSnapshots(t *testing.T) {
	dir := t.TempDir()
	_, c, stop := devWith(t, deploy.DevConfig{Regions: []string{"us"}, Partitions: 4, DataDir: dir,
		SnapshotInterval: 50 * time.Millisecond, SnapshotKeep: 2})
	do(t, c["us"], "SET", "a", "1")
	seen := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		names, err := filepath.Glob(filepath.Join(dir, "us", "snapshots", "us-*.snap"))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 3 { // the newest two, and one just written before the prune
			t.Fatalf("%d snapshots kept: %v", len(names), names)
		}
		for _, n := range names {
			seen[n] = true
		}
		if len(seen) >= 5 && len(names) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d snapshots seen, %v kept", len(seen), names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What is kept once the node stops are complete snapshots.
	stop()
	names, _ := filepath.Glob(filepath.Join(dir, "us", "snapshots", "*"))
	if len(names) < 2 || len(names) > 3 {
		t.Fatalf("after stopping: %v", names)
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := materializer.ReadSnapshotHeader(bufio.NewReader(f))
		f.Close()
		if err != nil || hdr.Region != "us" {
			t.Fatalf("%s: header %+v, %v", name, hdr, err)
		}
	}
}

// TestSnapshotCmd_Flags checks that --data-dir and --addr are alternatives:
// the usage line does not demand both, and exactly one must be given.
func TestSnapshotCmd_Flags(t *testing.T) {
	parse := func(args ...string) (string, error) {
		var out bytes.Buffer
		var cli CLI
		p, err := newParser(&cli, kong.Writers(&out, &out), kong.Exit(func(int) {}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Parse(args)
		return out.String(), err
	}
	t.Run("Usage", func(t *testing.T) {
		out, _ := parse("snapshot", "--help")
		usage, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(usage, "Usage: georep snapshot --out=STRING") || strings.Contains(usage, "--data-dir") || strings.Contains(usage, "--addr") {
			t.Errorf("usage line %q", usage)
		}
		for _, want := range []string{"(give this or --addr)", "(give this or --data-dir)"} {
			if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
				t.Errorf("help lacks %q:\n%s", want, out)
			}
		}
	})
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"DataDir", []string{"--data-dir", dir}, ""},
		{"Addr", []string{"--addr", "127.0.0.1:7001"}, ""},
		{"Neither", nil, "give --data-dir (a stopped node's state directory) or --addr"},
		{"Both", []string{"--data-dir", dir, "--addr", "127.0.0.1:7001"}, "--data-dir and --addr can't be used together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(append([]string{"snapshot", "--out", filepath.Join(dir, "x.snap")}, tc.args...)...)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestSnapshotCmd_ReplayNamesEveryOrigin checks that a replay from a
// snapshot names the origins that wrote nothing after it.
func TestSnapshotCmd_ReplayNamesEveryOrigin(t *testing.T) {
	c := newCluster(t)
	os3 := origins()
	produceRecs(t, c, oplogtest.Workload(oplogtest.Mixed, 600, 50, 1, "us", oplog.Topic, 4, os3...)...)
	first := t.TempDir()
	if out, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: first, Topic: oplog.Topic}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "us.snap")
	snap := &SnapshotCmd{DataDir: first, Out: file, Region: "us", Partitions: 4, Topic: oplog.Topic}
	if err := snap.run(context.Background(), testLog(t), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// Only us writes after the snapshot.
	produceRecs(t, c, oplogtest.Workload(oplogtest.Mixed, 100, 50, 2, "us", oplog.Topic, 4, os3[0])...)
	out, err := runReplay(t, &ReplayCmd{Brokers: c.ListenAddrs(), Region: "us", DataDir: filepath.Join(t.TempDir(), "state"), Snapshot: file, Topic: oplog.Topic})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, vector, _ := strings.Cut(out, "applied vector")
	vector, _, _ = strings.Cut(vector, "\n")
	for _, want := range []string{"us(1)=", "eu(2)=", "ap(3)="} {
		if !strings.Contains(vector, want) {
			t.Errorf("applied vector lacks %q:\n%s", want, out)
		}
	}
}
