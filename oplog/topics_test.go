package oplog_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/oplog"
)

func TestPeerOfMirror(t *testing.T) {
	for _, c := range []struct {
		name, peer string
		ok         bool
	}{
		{"eu.georep.ops", "eu", true},
		{"us-west_2.georep.ops", "us-west_2", true},
		{"georep.ops", "", false},
		{".georep.ops", "", false},
		{"a.b.georep.ops", "", false}, // a mirror of a mirror
		{"eu.georep.opsx", "", false},
		{"eu.checkpoints.internal", "", false},
	} {
		peer, ok := oplog.PeerOfMirror(c.name, oplog.Topic)
		if peer != c.peer || ok != c.ok {
			t.Errorf("PeerOfMirror(%q) = %q, %v; want %q, %v", c.name, peer, ok, c.peer, c.ok)
		}
	}
}

func TestListTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "georep.ops", "eu.georep.ops", "ap.georep.ops", "x.eu.georep.ops", "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()

	t.Run("Discover", func(t *testing.T) {
		ts, err := oplog.ListTopics(ctx, adm, oplog.Topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ts.Names()
		want := []string{"georep.ops", "ap.georep.ops", "eu.georep.ops"}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("names %v, want %v", got, want)
		}
		if ts.Partitions["eu.georep.ops"] != 4 {
			t.Fatalf("partitions %v", ts.Partitions)
		}
	})
	t.Run("Peers", func(t *testing.T) {
		ts, err := oplog.ListTopics(ctx, adm, oplog.Topic, []string{"eu"})
		if err != nil || len(ts.Names()) != 2 || ts.Mirrors["eu"] != "eu.georep.ops" {
			t.Fatalf("%+v, %v", ts, err)
		}
	})
	t.Run("ErrNoTopic", func(t *testing.T) {
		if _, err := oplog.ListTopics(ctx, adm, oplog.Topic, []string{"xx"}); !errors.Is(err, oplog.ErrNoTopic) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NoOwnTopic", func(t *testing.T) {
		ts, err := oplog.ListTopics(ctx, adm, "other.topic", nil)
		if err != nil || ts.Own != "" || len(ts.Names()) != 0 {
			t.Fatalf("%+v, %v", ts, err)
		}
	})
}

// TestEnsureTopics_CreatedElsewhere: a topic another client created after
// this client's metadata cache learnt it was unknown (a node and a bridge
// creating the same topic at once) is found at once, not after the cache's
// 5 s; a wrong partition count is still an error.
func TestEnsureTopics_CreatedElsewhere(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := func() *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	loser, winner := client(), client()
	ctx := context.Background()
	md, err := loser.ListTopics(ctx, "eu.georep.ops") // caches "unknown topic"
	if err != nil {
		t.Fatal(err)
	}
	if d := md["eu.georep.ops"]; d.Err == nil {
		t.Fatalf("topic exists before it was created: %+v", d)
	}
	if err := oplog.EnsureTopics(ctx, winner, 4, "eu.georep.ops"); err != nil {
		t.Fatal(err)
	}
	// Well within the cache's lifetime: the loser must not need it to expire.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := oplog.EnsureTopics(cctx, loser, 4, "eu.georep.ops"); err != nil {
		t.Fatalf("EnsureTopics of a topic created elsewhere: %v", err)
	}
	if _, err := loser.ListEndOffsets(cctx, "eu.georep.ops"); err != nil {
		t.Fatalf("end offsets after EnsureTopics: %v", err)
	}
	if err := oplog.EnsureTopics(cctx, loser, 8, "eu.georep.ops"); err == nil || !strings.Contains(err.Error(), "has 4 partitions") {
		t.Fatalf("EnsureTopics with another partition count = %v, want a partition count error", err)
	}
}
