package materializer_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
)

// A write on a key with writes in flight reuses the view the previous write
// left; an event from a peer applied meanwhile must still be observed by
// the next write (observed-remove), as if the view were read afresh.
func TestNode_ViewOfHotKeySeesPeerEvents(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := materializer.New(materializer.Config{
		Region: "us", InstanceID: 1, Peers: []string{"eu"}, Brokers: c.ListenAddrs(), Partitions: 4,
		FetchMaxWait: 20 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-n.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("node not ready")
	}
	key := []byte("hot")
	set(t, n, "hot", "v0")

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, oplog.Topic)
	if err != nil {
		t.Fatal(err)
	}
	ownID := td[oplog.Topic].ID

	// Hold the region's own produce requests so its writes stay in flight.
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == oplog.Topic || tp.TopicID == ownID {
				c.SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	write := func(val string) *materializer.Ack {
		t.Helper()
		ack, err := n.Update(ctx, [][]byte{key}, func(tx *materializer.Tx) error {
			tx.Emit(key, crdt.Op{Kind: crdt.OpSet, Value: []byte(val)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	acks := []*materializer.Ack{write("a"), write("b")}

	// A concurrent write from eu arrives through the mirror topic.
	ev := &crdt.Event{Dot: crdt.Dot{Origin: 2, Seq: 1}, HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Key: key,
		Ops: []crdt.Op{{Kind: crdt.OpSet, Value: []byte("x")}}}
	if err := cl.ProduceSync(ctx, oplog.NewRecord("eu", oplog.MirrorTopic("eu", oplog.Topic), ev, 4)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); regs(t, n, key) != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("eu's write not applied: %d register versions", regs(t, n, key))
		}
		time.Sleep(5 * time.Millisecond)
	}

	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if err := acks[0].Wait(wctx); err == nil {
		t.Fatal("write a is not in flight any more")
	}
	wcancel()
	acks = append(acks, write("c"))
	close(release)
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := regs(t, n, key); got != 1 {
		t.Fatalf("%d register versions after a write that observed them all, want 1", got)
	}
	if got := get(t, n, "hot"); got != "c" {
		t.Fatalf("hot = %q, want c", got)
	}
}

func regs(t *testing.T, n *materializer.Node, key []byte) int {
	t.Helper()
	var out int
	err := n.View(context.Background(), func(v *materializer.Snapshot) error {
		k, err := v.Get(key)
		if k != nil {
			out = len(k.Str.Regs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
