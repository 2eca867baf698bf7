package bridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/georep/georep/bridge"
	"github.com/georep/georep/oplog"
)

const parts = 4

func produce(t *testing.T, brokers []string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		key := []byte(fmt.Sprintf("k%d", i))
		recs = append(recs, &kgo.Record{Topic: oplog.Topic, Key: key, Value: []byte{byte(i)}, Partition: oplog.Partition(key, parts)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// mirrored reads the whole mirror topic: key -> (partition, source offset header).
func mirrored(t *testing.T, brokers []string) map[string][]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(oplog.MirrorTopic("eu", oplog.Topic)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), oplog.MirrorTopic("eu", oplog.Topic))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	out := map[string][]int32{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for got := int64(0); got < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d mirrored records", got, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			out[string(r.Key)] = append(out[string(r.Key)], r.Partition)
		})
	}
	return out
}

func run(t *testing.T, src, dst []string) (*bridge.Bridge, func()) {
	t.Helper()
	b, err := bridge.New(bridge.Config{Peer: "eu", SourceBrokers: src, TargetBrokers: dst, Partitions: parts, FetchMaxWait: 20 * time.Millisecond},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return b, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestBridge_CopiesAndResumesWithoutDuplicates(t *testing.T) {
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, oplog.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	produce(t, src.ListenAddrs(), 0, 100)
	b, stop := run(t, src.ListenAddrs(), dst.ListenAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if lag, err := b.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("lag after catch-up = %d, %v", lag, err)
	}
	stop()

	produce(t, src.ListenAddrs(), 100, 50)
	b2, stop2 := run(t, src.ListenAddrs(), dst.ListenAddrs())
	defer stop2()
	if err := b2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := mirrored(t, dst.ListenAddrs())
	if len(got) != 150 {
		t.Fatalf("mirrored %d distinct keys, want 150", len(got))
	}
	for k, ps := range got {
		if len(ps) != 1 {
			t.Fatalf("%s copied %d times", k, len(ps))
		}
		if want := oplog.Partition([]byte(k), parts); ps[0] != want {
			t.Fatalf("%s in partition %d, source partition %d", k, ps[0], want)
		}
	}
}

func TestBridge_CatchUpGivesUpOnUnreachablePeer(t *testing.T) {
	dst, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	b, stop := run(t, []string{"127.0.0.1:1"}, dst.ListenAddrs())
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.CatchUp(ctx); err == nil {
		t.Fatal("CatchUp of an unreachable peer succeeded")
	}
}

// TestBridge_ProduceErrorSkipsNothing: the local cluster refuses the first
// produce with an error franz-go does not retry. The bridge must not move
// past those records: it starts again from the mirror's last copied record
// and every source record ends up in the mirror exactly once.
func TestBridge_ProduceErrorSkipsNothing(t *testing.T) {
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, oplog.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var refused atomic.Int32
	dst.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if refused.Load() > 0 {
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
				refused.Add(1)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	produce(t, src.ListenAddrs(), 0, 100)
	b, stop := run(t, src.ListenAddrs(), dst.ListenAddrs())
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if refused.Load() == 0 {
		t.Fatal("no produce request was refused")
	}
	produce(t, src.ListenAddrs(), 100, 20)
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := mirrored(t, dst.ListenAddrs())
	for i := 0; i < 120; i++ {
		if k := fmt.Sprintf("k%d", i); len(got[k]) != 1 {
			t.Fatalf("%s copied %d times, want once (refused partitions: %d)", k, len(got[k]), refused.Load())
		}
	}
}
