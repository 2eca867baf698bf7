package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
		d, c, stopDev := dev(t, dir, "us", "eu")
		do(t, c["us"], "SET", "a", "1")
		do(t, c["eu"], "INCRBY", "n", "7")
		do(t, c["us"], "GEOREP", "SYNC", "30000")
		live := do(t, c["us"], "GEOREP", "DIGEST").(string)
		state := filepath.Join(dir, "us", "state")
		err := (&DigestCmd{DataDir: state}).run(context.Background(), testLog(t), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "node running") {
			t.Fatalf("digest of a running node's state: %v", err)
		}
		err = (&SnapshotCmd{Addr: d.Regions[0].Region.Server.Addr(), Out: filepath.Join(t.TempDir(), "s")}).run(context.Background(), testLog(t), &bytes.Buffer{})
		if err == nil {
			t.Log("the node answers GEOREP SNAPSHOT")
		}
		stopDev()
		if got := runDigest(t, state); got != live {
			t.Fatalf("digest of the stopped node's state %s, GEOREP DIGEST said %s", got, live)
		}
	})
}
