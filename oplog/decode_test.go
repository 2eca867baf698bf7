package oplog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog/oplogpb"
)

// decodeProto is the reference decoder: proto.Unmarshal into the generated
// messages, then conversion. decodeEvent must give the same result.
func decodeProto(b []byte) (*crdt.Event, error) {
	var pb oplogpb.Event
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if pb.Origin == 0 || pb.Seq == 0 {
		return nil, fmt.Errorf("%w: missing origin or sequence", ErrBadRecord)
	}
	if len(pb.Ops) == 0 {
		return nil, fmt.Errorf("%w: event has no ops", ErrBadRecord)
	}
	ev := &crdt.Event{
		Dot: crdt.Dot{Origin: crdt.ReplicaID(pb.Origin), Seq: pb.Seq},
		HLC: crdt.HLC(pb.Hlc),
		Key: pb.Key,
	}
	for _, d := range pb.Observed {
		ev.Observed = ev.Observed.With(crdt.ReplicaID(d.Origin), d.Seq)
	}
	for _, p := range pb.Ops {
		if p.Kind <= 0 || int32(p.Kind) > int32(maxOpKind) {
			return nil, fmt.Errorf("%w: unknown op kind %d", ErrBadRecord, p.Kind)
		}
		op := crdt.Op{
			Kind:  crdt.OpKind(p.Kind),
			Type:  crdt.Type(p.Type),
			Value: p.Value,
			Int:   p.Int,
			Float: fromPBFloat(p.Float),
			At:    p.At,
			Start: p.Start,
		}
		op.Shares = fromPBShares(p.Shares)
		op.Elem = p.Elem
		for _, e := range p.Elems {
			op.Elems = append(op.Elems, crdt.ElemShares{Elem: e.Elem, Shares: fromPBShares(e.Shares)})
		}
		op.Anchor, op.Before, op.Counter = p.Anchor, p.Before, p.Counter
		ev.Ops = append(ev.Ops, op)
	}
	return ev, nil
}

// randomMessage fills every field of m (found by reflection, so fields added
// to the schema later are covered too) with random values.
func randomMessage(rng *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if rng.IntN(4) == 0 {
			continue // leave some fields unset
		}
		if fd.IsList() {
			list := m.Mutable(fd).List()
			for n := rng.IntN(3); n > 0; n-- {
				if fd.Kind() == protoreflect.MessageKind {
					if depth > 3 {
						break
					}
					e := list.NewElement()
					randomMessage(rng, e.Message(), depth+1)
					list.Append(e)
				} else {
					list.Append(randomScalar(rng, fd))
				}
			}
			continue
		}
		if fd.Kind() == protoreflect.MessageKind {
			if depth <= 3 {
				randomMessage(rng, m.Mutable(fd).Message(), depth+1)
			}
			continue
		}
		m.Set(fd, randomScalar(rng, fd))
	}
}

func randomScalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	small := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return rng.Uint64()
		default:
			return uint64(rng.IntN(20))
		}
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.EnumKind:
		if rng.IntN(10) == 0 {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(int32(rng.Uint32())))
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rng.IntN(int(maxOpKind) + 2)))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(small()))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(small()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(small()))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(small())
	case protoreflect.BytesKind:
		b := make([]byte, rng.IntN(5))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return protoreflect.ValueOfBytes(b)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprint(rng.IntN(100)))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(rng.Float32())
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(rng.Float64())
	}
	panic(fmt.Sprintf("no random value for %v", fd.Kind()))
}

func sameDecode(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := decodeProto(b)
	got, gotErr := decodeEvent(b)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("% x: proto.Unmarshal: %v, decodeEvent: %v", b, wantErr, gotErr)
	}
	if gotErr != nil {
		if !errors.Is(gotErr, ErrBadRecord) {
			t.Fatalf("error %v does not wrap ErrBadRecord", gotErr)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("% x:\nproto.Unmarshal %+v\ndecodeEvent     %+v\n(a field added to event.proto must be decoded in oplog/decode.go too)", b, want, got)
	}
}

// TestDecodeEvent_MatchesProto checks the hand-written decoder against
// proto.Unmarshal on random messages of every field of the schema.
func TestDecodeEvent_MatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var pb oplogpb.Event
		randomMessage(rng, pb.ProtoReflect(), 0)
		b, err := proto.MarshalOptions{Deterministic: i%2 == 0}.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		sameDecode(t, b)
		// Unknown fields, repeated singular fields and wire-type mismatches.
		extra := protowire.AppendTag(nil, protowire.Number(20+rng.IntN(5)), protowire.BytesType)
		extra = protowire.AppendBytes(extra, []byte("x"))
		sameDecode(t, append(b, extra...))
		sameDecode(t, append(b, b...))
		sameDecode(t, append(b, protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 7)...))
		if len(b) > 1 {
			sameDecode(t, b[:rng.IntN(len(b))])
		}
	}
}

func TestDecodeEvent_RoundTrip(t *testing.T) {
	ev := &crdt.Event{
		Dot: crdt.Dot{Origin: 2, Seq: 9}, HLC: crdt.MakeHLC(1700000000000, 3), Key: []byte("k"),
		Observed: crdt.Clock{{Origin: 1, Seq: 4}, {Origin: 2, Seq: 8}},
		Ops: []crdt.Op{
			{Kind: crdt.OpDelete, Shares: []crdt.Share{{Origin: 1, Start: 2, Seq: 3, HLC: 4, Int: -5, Float: crdt.Float{Mant: 1 << 63, Exp: -64, Neg: true}}},
				Elems: []crdt.ElemShares{{Elem: []byte("f"), Shares: []crdt.Share{{Origin: 3, Start: 1, Seq: 1, Int: 2}}}}},
			{Kind: crdt.OpSet, Value: []byte("v")},
			{Kind: crdt.OpIncrFloat, Float: crdt.Float{Mant: 3 << 62, Exp: -62}, Start: 7},
			{Kind: crdt.OpExpire, At: 1700000001000},
			{Kind: crdt.OpHSet, Elem: []byte("f"), Value: []byte("x")},
			{Kind: crdt.OpLInsert, Elem: make([]byte, 16), Value: []byte("e"), Anchor: []byte{1, 2}, Before: true, Counter: 3},
		},
	}
	got, err := decodeEvent(Encode(ev))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, ev)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(Encode(&crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: 1}, Key: []byte("k"), Ops: []crdt.Op{{Kind: crdt.OpSet, Value: []byte("v")}}}))
	f.Add([]byte{0x08, 0x01, 0x10, 0x01, 0x32, 0x02, 0x08, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) { sameDecode(t, b) })
}

func BenchmarkDecode(b *testing.B) {
	ev := &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: 12345}, HLC: crdt.MakeHLC(1700000000000, 0), Key: []byte("user:12345"),
		Observed: crdt.Clock{{Origin: 1, Seq: 12000}, {Origin: 2, Seq: 400}},
		Ops:      []crdt.Op{{Kind: crdt.OpSet, Value: []byte("abcdefghijklmnopqrstuvwxyz012345")}, {Kind: crdt.OpExpire}}}
	raw := Encode(ev)
	for _, c := range []struct {
		name string
		fn   func([]byte) (*crdt.Event, error)
	}{{"wire", decodeEvent}, {"proto", decodeProto}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := c.fn(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
