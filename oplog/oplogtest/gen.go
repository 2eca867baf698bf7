package oplogtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// Origin is one region's stream of events. It keeps its own view of every
// key it wrote (not of other origins' writes, so its events are concurrent
// with theirs) and stamps events like the write path: dot, HLC, observed
// context, observed counter shares, share identity.
type Origin struct {
	Region string
	ID     crdt.ReplicaID
	// Now is the origin's wall clock in ms; events get HLCs from it.
	Now  int64
	seq  uint64
	last crdt.HLC
	keys map[string]*crdt.Key
}

// NewOrigin returns region's origin with instance ID id at wall clock now.
func NewOrigin(region string, id crdt.ReplicaID, now int64) *Origin {
	return &Origin{Region: region, ID: id, Now: now, keys: map[string]*crdt.Key{}}
}

// Emit returns the event of ops on key and applies it to the origin's view.
func (o *Origin) Emit(key string, ops ...crdt.Op) *crdt.Event {
	k := o.keys[key]
	if k == nil {
		k = &crdt.Key{}
		o.keys[key] = k
	}
	if k.Expired(o.Now) {
		ops = append([]crdt.Op{{Kind: crdt.OpDelete}}, ops...)
	}
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case crdt.OpDelete, crdt.OpSet:
			op.Shares = k.ObservedShares()
		case crdt.OpIncr, crdt.OpIncrFloat:
			op.Start = k.OwnShareStart(o.ID)
		}
	}
	o.seq++
	o.last = crdt.NextHLC(o.last, o.Now)
	ev := &crdt.Event{Dot: crdt.Dot{Origin: o.ID, Seq: o.seq}, HLC: o.last, Key: []byte(key), Observed: k.VV.Clone(), Ops: ops}
	k.Apply(ev, nil)
	if k.Empty() {
		delete(o.keys, key)
	}
	return ev
}

// Set emits SET key value (with its TTL cleared, as SET does).
func (o *Origin) Set(key, value string) *crdt.Event {
	return o.Emit(key, crdt.Op{Kind: crdt.OpSet, Value: []byte(value)}, crdt.Op{Kind: crdt.OpExpire})
}

// Incr emits INCRBY key n.
func (o *Origin) Incr(key string, n int64) *crdt.Event {
	return o.Emit(key, crdt.Op{Kind: crdt.OpIncr, Int: n})
}

// IncrFloat emits INCRBYFLOAT key f (f must parse).
func (o *Origin) IncrFloat(key, f string) *crdt.Event {
	v, ok := crdt.ParseFloat([]byte(f))
	if !ok {
		panic("oplogtest: bad float " + f)
	}
	return o.Emit(key, crdt.Op{Kind: crdt.OpIncrFloat, Float: v})
}

// Del emits DEL key.
func (o *Origin) Del(key string) *crdt.Event { return o.Emit(key, crdt.Op{Kind: crdt.OpDelete}) }

// Expire emits PEXPIREAT key at (0: PERSIST).
func (o *Origin) Expire(key string, at int64) *crdt.Event {
	return o.Emit(key, crdt.Op{Kind: crdt.OpExpire, At: at})
}

// Record returns ev's record as it lies in the cluster of region local:
// in the own topic when ev's origin is local, else in the origin's mirror.
func (o *Origin) Record(local, topic string, ev *crdt.Event, partitions int32) *kgo.Record {
	r := oplog.NewRecord(o.Region, topic, ev, partitions)
	if o.Region != local {
		r.Topic = oplog.MirrorTopic(o.Region, topic)
	}
	return r
}

// Kind is a workload mix.
type Kind string

// Workload mixes.
const (
	// Strings is SET only.
	Strings Kind = "strings"
	// Mixed is 50% SET, 20% INCRBY, 10% INCRBYFLOAT, 10% DEL, 10% EXPIRE
	// (half of them in the past, so some keys are expired).
	Mixed Kind = "mixed"
)

// Workload returns n events of kind over keys keys, spread round-robin over
// origins, as records of region local's cluster. It is reproducible for a
// seed.
func Workload(kind Kind, n, keys int, seed uint64, local, topic string, partitions int32, origins ...*Origin) []*kgo.Record {
	rng := rand.New(rand.NewPCG(seed, 42))
	out := make([]*kgo.Record, 0, n)
	value := make([]byte, 32)
	for i := 0; i < n; i++ {
		o := origins[i%len(origins)]
		o.Now++
		key := "key:" + strconv.Itoa(rng.IntN(keys))
		for j := range value {
			value[j] = 'a' + byte(rng.IntN(26))
		}
		var ev *crdt.Event
		r := rng.IntN(100)
		switch {
		case kind == Strings || r < 50:
			ev = o.Set(key, string(value))
		case r < 70:
			ev = o.Incr("ctr:"+key, int64(rng.IntN(100))-20)
		case r < 80:
			ev = o.IncrFloat("flt:"+key, fmt.Sprintf("%d.%02d", rng.IntN(10), rng.IntN(100)))
		case r < 90:
			ev = o.Del(key)
		case r < 95:
			ev = o.Expire(key, o.Now+int64(rng.IntN(1000))-900) // mostly in the past
		default:
			ev = o.Expire(key, o.Now+365*24*3600*1000)
		}
		out = append(out, o.Record(local, topic, ev, partitions))
	}
	return out
}

// Produce writes recs into the cluster at brokers, creating their topics
// with partitions partitions, and waits until all are durable.
func Produce(ctx context.Context, brokers []string, partitions int32, recs []*kgo.Record) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.AllowAutoTopicCreation(),
		kgo.MaxBufferedRecords(1<<16),
		kgo.ProducerBatchMaxBytes(4<<20),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := ensure(ctx, cl, partitions, recs); err != nil {
		return err
	}
	var mu sync.Mutex
	var first error
	for _, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return first
}
