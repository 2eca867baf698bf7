package oplog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog/oplogpb"
)

// encodeProto is the reference encoder: the generated messages and
// proto.Marshal. Encode must give the same bytes.
func encodeProto(ev *crdt.Event) []byte {
	pb := &oplogpb.Event{
		Origin: uint32(ev.Dot.Origin),
		Seq:    ev.Dot.Seq,
		Hlc:    uint64(ev.HLC),
		Key:    ev.Key,
	}
	for _, d := range ev.Observed {
		pb.Observed = append(pb.Observed, &oplogpb.Dot{Origin: uint32(d.Origin), Seq: d.Seq})
	}
	for i := range ev.Ops {
		op := &ev.Ops[i]
		p := &oplogpb.Op{
			Kind:  oplogpb.OpKind(op.Kind),
			Type:  oplogpb.DataType(op.Type),
			Value: op.Value,
			Int:   op.Int,
			At:    op.At,
			Start: op.Start,
		}
		if !op.Float.IsZero() {
			p.Float = pbFloat(op.Float)
		}
		p.Shares = pbShares(op.Shares)
		p.Elem = op.Elem
		for _, e := range op.Elems {
			p.Elems = append(p.Elems, &oplogpb.ElemShares{Elem: e.Elem, Shares: pbShares(e.Shares)})
		}
		p.Anchor, p.Before, p.Counter = op.Anchor, op.Before, op.Counter
		pb.Ops = append(pb.Ops, p)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	if err != nil {
		panic(fmt.Sprintf("oplog: marshal event: %v", err)) // only on invalid UTF-8 in string fields, which Event has none of
	}
	return b
}

// TestEncode_MatchesProto checks the hand-written encoder against
// proto.Marshal of the generated messages, on random events with every
// field of the schema (random messages decoded by the reference decoder).
func TestEncode_MatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 0
	for i := 0; i < 20000; i++ {
		var pb oplogpb.Event
		randomMessage(rng, pb.ProtoReflect(), 0)
		b, err := proto.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := decodeProto(b)
		if err != nil {
			continue
		}
		n++
		if got, want := Encode(ev), encodeProto(ev); !bytes.Equal(got, want) {
			t.Fatalf("%+v:\nEncode      % x\nproto.Marshal % x\n(a field added to event.proto must be encoded in oplog/encode.go too)", ev, got, want)
		}
	}
	if n < 1000 {
		t.Fatalf("only %d of the random messages were valid events", n)
	}
}

func TestEncode_Cases(t *testing.T) {
	for i, ev := range []*crdt.Event{
		{Dot: crdt.Dot{Origin: 1, Seq: 1}, Ops: []crdt.Op{{Kind: crdt.OpDelete}}},
		{Dot: crdt.Dot{Origin: 1<<32 - 1, Seq: 1<<64 - 1}, HLC: 1<<64 - 1, Key: bytes.Repeat([]byte("k"), 300),
			Observed: crdt.Clock{{Origin: 1, Seq: 0}, {Origin: 2, Seq: 1 << 40}},
			Ops: []crdt.Op{
				{Kind: crdt.OpIncr, Int: -1 << 63, Start: 1},
				{Kind: crdt.OpIncrFloat, Float: crdt.Float{Mant: 1, Exp: -1 << 31, Neg: true}},
				{Kind: crdt.OpExpire, At: -5},
				{Kind: crdt.OpSet, Value: bytes.Repeat([]byte("v"), 1<<14), Shares: []crdt.Share{{}, {Origin: 1, Float: crdt.Float{Mant: 7, Exp: 1 << 30}}}},
				{Kind: crdt.OpDeleteType, Type: crdt.TypeHash, Elems: []crdt.ElemShares{{}, {Elem: []byte("e"), Shares: []crdt.Share{{Int: 1}}}}},
				{Kind: crdt.OpLInsert, Elem: make([]byte, 16), Anchor: []byte{1}, Before: true, Counter: 1 << 63},
			}},
	} {
		if got, want := Encode(ev), encodeProto(ev); !bytes.Equal(got, want) {
			t.Errorf("case %d:\nEncode        % x\nproto.Marshal % x", i, got, want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	ev := &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: 12345}, HLC: crdt.MakeHLC(1700000000000, 0), Key: []byte("user:12345"),
		Observed: crdt.Clock{{Origin: 1, Seq: 12000}, {Origin: 2, Seq: 400}},
		Ops:      []crdt.Op{{Kind: crdt.OpSet, Value: []byte("abcdefghijklmnopqrstuvwxyz012345")}, {Kind: crdt.OpExpire}}}
	for _, c := range []struct {
		name string
		fn   func(*crdt.Event) []byte
	}{{"wire", Encode}, {"proto", encodeProto}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.fn(ev)
			}
		})
	}
}

// TestRecordSize_Bounds: RecordSize never underestimates the record batch
// NewRecord makes (encoding, key, headers, framing).
func TestRecordSize_Bounds(t *testing.T) {
	big := &crdt.Event{Dot: crdt.Dot{Origin: 7, Seq: 1 << 40}, HLC: 1 << 60, Key: []byte("k"),
		Observed: crdt.Clock{{Origin: 1, Seq: 1 << 50}, {Origin: 7, Seq: 1 << 40}},
		Ops:      []crdt.Op{{Kind: crdt.OpDelete, Shares: []crdt.Share{{Origin: 1, Int: -1 << 63, Start: 1 << 62}}}, {Kind: crdt.OpSet, Value: bytes.Repeat([]byte("v"), 999_000)}}}
	rng := rand.New(rand.NewPCG(5, 6))
	evs := []*crdt.Event{big}
	for i := 0; i < 5000; i++ {
		var pb oplogpb.Event
		randomMessage(rng, pb.ProtoReflect(), 0)
		b, err := proto.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := decodeProto(b); err == nil {
			evs = append(evs, ev)
		}
	}
	for _, ev := range evs {
		rec := NewRecord("region-name", "georep.ops", ev, 8)
		n := len(rec.Key) + len(rec.Value) + 61 + 21 // batch header, record framing
		for _, h := range rec.Headers {
			n += len(h.Key) + len(h.Value) + 4
		}
		if got := RecordSize(ev); got < n {
			t.Fatalf("RecordSize = %d, the record batch takes %d: %+v", got, n, ev)
		}
	}
	if RecordSize(big) > MaxRecordBytes {
		t.Fatalf("a 999,000-byte value (RecordSize %d) must fit in MaxRecordBytes %d", RecordSize(big), MaxRecordBytes)
	}
}
