package materializer_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
)

func startNode(t *testing.T, brokers []string, dir string) (*materializer.Node, context.CancelFunc, chan error) {
	t.Helper()
	n, err := materializer.New(materializer.Config{
		Region: "us", InstanceID: 1, Brokers: brokers, DataDir: dir, Partitions: 4,
		FetchMaxWait: 20 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("node stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("node not ready")
	}
	return n, cancel, done
}

func set(t *testing.T, n *materializer.Node, key, val string) {
	t.Helper()
	ack, err := n.Update(context.Background(), [][]byte{[]byte(key)}, func(tx *materializer.Tx) error {
		tx.Emit([]byte(key), crdt.Op{Kind: crdt.OpSet, Value: []byte(val)}, crdt.Op{Kind: crdt.OpExpire})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, n *materializer.Node, key string) string {
	t.Helper()
	var out string
	err := n.View(context.Background(), func(v *materializer.Snapshot) error {
		k, err := v.Get([]byte(key))
		if err != nil || k == nil {
			return err
		}
		b, ok := k.String(v.Now())
		if ok {
			out = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNode_WriteIsAppliedAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, cancel, done := startNode(t, c.ListenAddrs(), dir)
	for i := 0; i < 50; i++ {
		set(t, n, "k", "v"+string(rune('a'+i%26)))
	}
	set(t, n, "other", "x")
	if got := get(t, n, "k"); got != "vx" {
		t.Fatalf("k = %q, want vx", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n2, cancel2, done2 := startNode(t, c.ListenAddrs(), dir)
	defer func() { cancel2(); <-done2 }()
	if got := get(t, n2, "other"); got != "x" {
		t.Fatalf("after restart other = %q", got)
	}
	set(t, n2, "k", "after")
	if got := get(t, n2, "k"); got != "after" {
		t.Fatalf("k after restart write = %q", got)
	}
	if st := n2.Status(context.Background()); st.Applied.Get(1) != 52 {
		t.Fatalf("applied seq = %d, want 52 (no dot reused)", st.Applied.Get(1))
	}
}

func BenchmarkNode_Set(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := materializer.New(materializer.Config{Region: "us", InstanceID: 1, Brokers: c.ListenAddrs(), Partitions: 8, FetchMaxWait: 20 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-n.Ready()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var acks []*materializer.Ack
		for pb.Next() {
			key := []byte("key" + string(rune('a'+i%26)))
			i++
			ack, err := n.Update(ctx, [][]byte{key}, func(tx *materializer.Tx) error {
				tx.Emit(key, crdt.Op{Kind: crdt.OpSet, Value: []byte("value")})
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
			acks = append(acks, ack)
			if len(acks) == 64 {
				for _, a := range acks {
					if err := a.Wait(ctx); err != nil {
						b.Error(err)
						return
					}
				}
				acks = acks[:0]
			}
		}
		for _, a := range acks {
			_ = a.Wait(ctx)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func TestNode_MultiKeyWriteIsOneTransaction(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, cancel, done := startNode(t, c.ListenAddrs(), "")
	defer func() { cancel(); <-done }()
	set(t, n, "a", "0")
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	for round := 0; round < 20; round++ {
		ack, err := n.Update(context.Background(), keys, func(tx *materializer.Tx) error {
			for _, k := range keys {
				tx.Emit(k, crdt.Op{Kind: crdt.OpSet, Value: []byte{'0' + byte(round%10)}})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		set(t, n, "a", "single") // interleave a single-key write on a shared partition
		if err := ack.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := get(t, n, "a"); got != "single" {
		t.Fatalf("a = %q", got)
	}
	if got := get(t, n, "d"); got != "9" {
		t.Fatalf("d = %q", got)
	}
}
