package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogpb"
)

// garbage returns records that are not georep events a region may apply,
// for topic, one set per partition.
func garbage(t *testing.T, topic string, partitions int32, rng *rand.Rand) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	mustMarshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hdr := func(schema string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: oplog.HeaderSchema, Value: []byte(schema)},
			{Key: oplog.HeaderOrigin, Value: []byte("99")},
			{Key: oplog.HeaderRegion, Value: []byte("mallory")},
		}
	}
	for p := int32(0); p < partitions; p++ {
		random := make([]byte, 64+rng.IntN(512))
		for i := range random {
			random[i] = byte(rng.Uint32())
		}
		// A valid event of an unknown origin, to be refused because of its
		// header or its key, never applied.
		poison := func(key string, seq uint64) []byte {
			return oplog.Encode(&crdt.Event{
				Dot: crdt.Dot{Origin: 99, Seq: seq}, HLC: crdt.HLC(time.Now().UnixMilli()) << 16, Key: []byte(key),
				Ops: []crdt.Op{{Kind: crdt.OpSet, Value: []byte("poison")}},
			})
		}
		pk := fmt.Sprintf("poison:%d", p)
		batch := []*kgo.Record{
			// Random bytes, with and without headers.
			&kgo.Record{Key: []byte("random"), Value: random},
			&kgo.Record{Key: []byte(pk), Value: random, Headers: hdr(oplog.SchemaVersion)},
			// Empty and null values.
			&kgo.Record{Key: []byte("empty"), Value: []byte{}},
			&kgo.Record{Key: nil, Value: nil},
			// Valid protobuf of other messages. A Dot has an Event's first two
			// fields (origin 1, a huge sequence): taken for an event it would
			// make every later write of region 1 look like a duplicate.
			&kgo.Record{Value: mustMarshal(&oplogpb.Dot{Origin: 1, Seq: 1 << 40})},
			&kgo.Record{Value: mustMarshal(&oplogpb.Dot{Origin: 2, Seq: 1 << 40})},
			&kgo.Record{Value: mustMarshal(&oplogpb.Dot{Origin: 3, Seq: 1 << 40})},
			&kgo.Record{Key: []byte("share"), Value: mustMarshal(&oplogpb.Share{Origin: 1, Start: 5, Seq: 7, Hlc: 9, Int: 11})},
			&kgo.Record{Value: mustMarshal(&oplogpb.Share{Origin: 2, Start: 1 << 40, Seq: 7, Hlc: 9})},
			// A well-formed event under a schema version this build does not read.
			&kgo.Record{Key: []byte(pk), Value: poison(pk, 1), Headers: hdr("99")},
			// A well-formed event whose record key is not the event's key.
			&kgo.Record{Key: []byte(pk + ":other"), Value: poison(pk, 2), Headers: hdr(oplog.SchemaVersion)},
			// An op kind no build knows.
			&kgo.Record{Key: []byte(pk), Value: mustMarshal(&oplogpb.Event{
				Origin: 99, Seq: 3, Hlc: 1, Key: []byte(pk), Ops: []*oplogpb.Op{{Kind: 250}},
			}), Headers: hdr(oplog.SchemaVersion)},
		}
		for _, r := range batch {
			r.Topic, r.Partition = topic, p
		}
		out = append(out, batch...)
	}
	return out
}

func produce(t *testing.T, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce garbage: %v", err)
	}
}

// TestBadRecords: records that are not georep events, in a region's own
// topic and in a mirror topic, are counted and skipped; later good records
// are applied and replicate; nothing stops.
func TestBadRecords(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	parts := c.cfg.Partitions
	keys := c.keysInPartitions("good:", int(parts))
	for _, k := range keys {
		c.expect("us", "OK", "SET", k, "before")
	}
	c.converge()

	rng := rand.New(rand.NewPCG(1, 2))
	own := garbage(t, c.topic(), parts, rng)
	mirror := garbage(t, oplog.MirrorTopic("us", c.topic()), parts, rng)
	produce(t, c.region("us").Brokers, own)    // us's own topic: seen by us, mirrored to eu and ap
	produce(t, c.region("eu").Brokers, mirror) // eu's copy of us's topic only

	// Good writes after the garbage, from every region and in every
	// partition, apply everywhere.
	for i, k := range keys {
		c.expect(c.names[i%len(c.names)], "OK", "SET", k, "after")
		c.expect("us", strconv.Itoa(i+1), "INCR", "n")
	}
	for _, r := range c.names {
		c.expect(r, "OK", "SET", "from:"+r, r)
	}
	c.converge()
	c.alive()
	for _, k := range keys {
		c.expectAll("after", "GET", k)
	}
	c.expectAll(strconv.Itoa(len(keys)), "GET", "n")
	for _, r := range c.names {
		c.expectAll(r, "GET", "from:"+r)
	}
	for p := int32(0); p < parts; p++ {
		c.expectAll("0", "EXISTS", fmt.Sprintf("poison:%d", p), fmt.Sprintf("poison:%d:other", p))
	}

	want := map[string]int64{"us": int64(len(own)), "eu": int64(len(own) + len(mirror)), "ap": int64(len(own))}
	for _, r := range c.names {
		st := c.status(r)
		if st.BadRecords != want[r] {
			t.Errorf("%s: GEOREP STATUS bad_records = %d, want %d", r, st.BadRecords, want[r])
		}
		if got := c.info(r, "georep")["bad_records"]; got != strconv.FormatInt(want[r], 10) {
			t.Errorf("%s: INFO georep bad_records = %s, want %d", r, got, want[r])
		}
		for _, o := range []string{"99"} {
			if seq, ok := st.Applied[o]; ok {
				t.Errorf("%s: applied an event of origin %s (seq %d)", r, o, seq)
			}
		}
	}
}
