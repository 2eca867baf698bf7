package materializer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
)

// TestNode_SyncWatchesPeerCluster: without an in-process bridge, Sync and
// Status read what the peer has written on the peer's own cluster, so they
// see a mirror's lag (here: nothing copied yet, then a MirrorMaker 2 style
// copy: renumbered, no transaction markers, no aborted records), and Sync
// names a peer whose cluster is gone.
func TestNode_SyncWatchesPeerCluster(t *testing.T) {
	const parts = 4
	local, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	peer, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, oplog.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	// eu writes: committed events, then a transaction it aborts (so the
	// newest record of the partition is an abort marker).
	ctx := context.Background()
	txn, err := kgo.NewClient(kgo.SeedBrokers(peer.ListenAddrs()...), kgo.TransactionalID("eu"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(oplog.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	event := func(seq uint64, key, val string) *kgo.Record {
		ev := &crdt.Event{Dot: crdt.Dot{Origin: 2, Seq: seq}, HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Key: []byte(key),
			Ops: []crdt.Op{{Kind: crdt.OpSet, Value: []byte(val)}}}
		return oplog.NewRecord("eu", oplog.Topic, ev, parts)
	}
	for i, commit := range []bool{true, true, false} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for j := 0; j < 5; j++ {
			seq := uint64(i*5 + j + 1)
			recs = append(recs, event(seq, fmt.Sprintf("k%d", j), fmt.Sprintf("v%d", seq)))
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}

	n, err := materializer.New(materializer.Config{
		Region: "us", InstanceID: 1, Brokers: local.ListenAddrs(), Partitions: parts, Peers: []string{"eu"},
		PeerBrokers:  map[string][]string{"eu": peer.ListenAddrs()},
		FetchMaxWait: 20 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// A new region: it is not writable before it has caught up with eu.
	select {
	case <-n.Ready():
		t.Fatal("a new region is ready before it has applied what its peer wrote")
	default:
	}

	// Nothing mirrored yet: Sync cannot finish, Status shows the lag.
	if err := n.Sync(ctx, 300*time.Millisecond); !errors.Is(err, materializer.ErrSyncTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync with nothing mirrored = %v, want a timeout", err)
	}
	st := n.Status(ctx)
	if len(st.Peers) != 1 || !st.Peers[0].Reachable || st.Peers[0].LagEvents == 0 || st.Peers[0].InstanceID != 2 {
		t.Fatalf("status before mirroring: %+v", st.Peers)
	}

	// Copy the committed records, renumbered and without markers.
	src, err := kgo.NewClient(kgo.SeedBrokers(peer.ListenAddrs()...), kgo.ConsumeTopics(oplog.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := kgo.NewClient(kgo.SeedBrokers(local.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	mirror := oplog.MirrorTopic("eu", oplog.Topic)
	if err := oplog.EnsureTopics(ctx, kadm.NewClient(dst), parts, mirror); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	for copied := 0; copied < 10; {
		fs := src.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("copied %d of 10 committed records", copied)
		}
		fs.EachRecord(func(r *kgo.Record) {
			copied++
			out := &kgo.Record{Topic: mirror, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers}
			if err := dst.ProduceSync(ctx, out).FirstErr(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := n.Sync(ctx, 10*time.Second); err != nil {
		t.Fatalf("Sync after mirroring: %v", err)
	}
	<-n.Ready() // caught up with eu
	if got := get(t, n, "k3"); got != "v9" {
		t.Fatalf("k3 = %q after Sync, want v9 (the committed value)", got)
	}
	if st := n.Status(ctx); st.Peers[0].LagEvents != 0 || !st.Peers[0].Reachable {
		t.Fatalf("status after Sync: %+v", st.Peers)
	}

	// The peer's cluster goes away: Sync says so, naming it.
	peer.Close()
	err = n.Sync(ctx, 20*time.Second)
	var re *materializer.Error
	if !errors.Is(err, materializer.ErrPeerUnreachable) || !errors.As(err, &re) {
		t.Fatalf("Sync with the peer's cluster gone = %v, want ErrPeerUnreachable", err)
	}
	if want := "ERR georep sync: peer eu unreachable ("; len(re.Reply) < len(want) || re.Reply[:len(want)] != want {
		t.Fatalf("reply %q, want it to start with %q", re.Reply, want)
	}
	if st := n.Status(ctx); st.Peers[0].Reachable {
		t.Fatalf("status with the peer's cluster gone: %+v", st.Peers)
	}
}
