package oplog_test

import (
	"context"
	"errors"
	"testing"

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
