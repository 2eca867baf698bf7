package oplog

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/georep/georep/crdt"
)

// appendEvent appends the wire encoding of ev (proto/georep/v1/event.proto)
// without the generated messages: byte for byte what proto.Marshal gives for
// them, fields in number order with zero scalars, empty bytes and zero
// floats left out. encode_test.go checks it against proto.Marshal on random
// events, so a field added to the schema must be encoded here too.
func appendEvent(b []byte, ev *crdt.Event) []byte {
	b = appendUint(b, 1, uint64(ev.Dot.Origin))
	b = appendUint(b, 2, ev.Dot.Seq)
	b = appendUint(b, 3, uint64(ev.HLC))
	b = appendBytes(b, 4, ev.Key)
	for _, d := range ev.Observed {
		b = appendMessage(b, 5, func(b []byte) []byte {
			b = appendUint(b, 1, uint64(d.Origin))
			return appendUint(b, 2, d.Seq)
		})
	}
	for i := range ev.Ops {
		op := &ev.Ops[i]
		b = appendMessage(b, 6, func(b []byte) []byte { return appendOp(b, op) })
	}
	return b
}

func appendOp(b []byte, op *crdt.Op) []byte {
	b = appendUint(b, 1, uint64(op.Kind))
	b = appendUint(b, 2, uint64(op.Type))
	b = appendBytes(b, 3, op.Value)
	b = appendUint(b, 4, protowire.EncodeZigZag(op.Int))
	b = appendFloat(b, 5, op.Float)
	b = appendUint(b, 6, protowire.EncodeZigZag(op.At))
	b = appendUint(b, 7, op.Start)
	b = appendShares(b, 8, op.Shares)
	b = appendBytes(b, 9, op.Elem)
	for i := range op.Elems {
		e := &op.Elems[i]
		b = appendMessage(b, 10, func(b []byte) []byte {
			b = appendBytes(b, 1, e.Elem)
			return appendShares(b, 2, e.Shares)
		})
	}
	b = appendBytes(b, 11, op.Anchor)
	if op.Before {
		b = appendUint(b, 12, 1)
	}
	return appendUint(b, 13, op.Counter)
}

func appendShares(b []byte, num protowire.Number, ss []crdt.Share) []byte {
	for i := range ss {
		s := &ss[i]
		b = appendMessage(b, num, func(b []byte) []byte {
			b = appendUint(b, 1, uint64(s.Origin))
			b = appendUint(b, 2, s.Start)
			b = appendUint(b, 3, s.Seq)
			b = appendUint(b, 4, uint64(s.HLC))
			b = appendUint(b, 5, protowire.EncodeZigZag(s.Int))
			return appendFloat(b, 6, s.Float)
		})
	}
	return b
}

// appendFloat appends f as a LongDouble message, nothing when it is zero.
func appendFloat(b []byte, num protowire.Number, f crdt.Float) []byte {
	if f.IsZero() {
		return b
	}
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendUint(b, 1, f.Mant)
		b = appendUint(b, 2, protowire.EncodeZigZag(int64(f.Exp)))
		if f.Neg {
			b = appendUint(b, 3, 1)
		}
		return b
	})
}

// appendUint appends a varint field, nothing when v is 0.
func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendBytes appends a bytes field, nothing when v is empty.
func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendMessage appends a message field whose body appends: the body is
// written first, then moved up behind its length.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = body(b)
	n := len(b) - start
	h := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, h)...)
	copy(b[start+h:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}

// MaxRecordBytes is the largest record batch georep produces: franz-go's
// default producer limit, just under Kafka's default message.max.bytes
// (1 MiB + 12). A write whose event does not fit is refused (RecordSize).
const MaxRecordBytes = 1_000_012

// RecordSize estimates the bytes of ev's record batch on a georep topic:
// its encoding, the Kafka key (the Redis key again), the headers and the
// batch framing. It errs on the large side.
func RecordSize(ev *crdt.Event) int { return encodedSize(ev) + len(ev.Key) + 256 }

// encodedSize is a capacity that usually holds ev's encoding.
func encodedSize(ev *crdt.Event) int {
	n := 32 + len(ev.Key) + 12*len(ev.Observed)
	for i := range ev.Ops {
		op := &ev.Ops[i]
		n += 32 + len(op.Value) + len(op.Elem) + len(op.Anchor) + 40*len(op.Shares)
		for _, e := range op.Elems {
			n += 8 + len(e.Elem) + 40*len(e.Shares)
		}
	}
	return n
}
