package oplog

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/georep/georep/crdt"
)

// eventAlloc is an event and room for its usual number of ops, allocated
// together.
type eventAlloc struct {
	ev  crdt.Event
	ops [2]crdt.Op
}

// decodeEvent parses an Event straight from the protobuf wire format into a
// crdt.Event: the same result as proto.Unmarshal into oplogpb.Event followed
// by conversion, without the intermediate messages (every applied record
// goes through here, and replay throughput depends on it). It follows
// proto3 decoding rules: unknown fields, and known fields with another wire
// type, are skipped; for a repeated scalar the last value wins; a repeated
// singular message field merges; an empty bytes field reads as nil. Byte
// fields point into one copy of b.
func decodeEvent(b []byte) (*crdt.Event, error) {
	buf := append([]byte(nil), b...)
	a := &eventAlloc{}
	ev := &a.ev
	var origin uint32
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return nil, wireError(n)
		}
		buf = buf[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			origin, buf = uint32(v), buf[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			ev.Dot.Seq, buf = v, buf[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			ev.HLC, buf = crdt.HLC(v), buf[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			ev.Key, buf = nilIfEmpty(v), buf[n:]
		case num == 5 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			o, seq, err := decodeDot(v)
			if err != nil {
				return nil, err
			}
			ev.Observed, buf = ev.Observed.With(crdt.ReplicaID(o), seq), buf[n:]
		case num == 6 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return nil, wireError(n)
			}
			if ev.Ops == nil {
				ev.Ops = a.ops[:0]
			}
			ev.Ops = append(ev.Ops, crdt.Op{})
			if err := decodeOp(v, &ev.Ops[len(ev.Ops)-1]); err != nil {
				return nil, err
			}
			buf = buf[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, buf)
			if n < 0 {
				return nil, wireError(n)
			}
			buf = buf[n:]
		}
	}
	ev.Dot.Origin = crdt.ReplicaID(origin)
	if origin == 0 || ev.Dot.Seq == 0 {
		return nil, fmt.Errorf("%w: missing origin or sequence", ErrBadRecord)
	}
	// Every event has at least one op. Without this check, a valid protobuf
	// of another message whose first fields are varints (a Dot, a Share)
	// decodes as an event of a real origin with an arbitrary sequence, and
	// applying it makes that origin's later events look like duplicates.
	if len(ev.Ops) == 0 {
		return nil, fmt.Errorf("%w: event has no ops", ErrBadRecord)
	}
	for i := range ev.Ops {
		if k := ev.Ops[i].Kind; k == 0 || k > maxOpKind {
			return nil, fmt.Errorf("%w: unknown op kind %d", ErrBadRecord, k)
		}
	}
	return ev, nil
}

func wireError(n int) error {
	return fmt.Errorf("%w: %v", ErrBadRecord, protowire.ParseError(n))
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// decodeDot parses a Dot message.
func decodeDot(b []byte) (origin uint32, seq uint64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, wireError(n)
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, 0, wireError(n)
			}
			if num == 1 {
				origin = uint32(v)
			} else {
				seq = v
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, 0, wireError(n)
		}
		b = b[n:]
	}
	return origin, seq, nil
}

// decodeOp parses an Op message into op. Its kind is checked by the caller.
func decodeOp(b []byte, op *crdt.Op) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num == 1 || num == 2 || num == 4 || num == 6 || num == 7 || num == 12 || num == 13):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				// An enum is an int32; one outside the op kinds this
				// build knows (including any above 255) is rejected.
				if k := int32(v); k < 0 || k > int32(maxOpKind) {
					op.Kind = maxOpKind + 1
				} else {
					op.Kind = crdt.OpKind(k)
				}
			case 2:
				op.Type = crdt.Type(int32(v))
			case 4:
				op.Int = protowire.DecodeZigZag(v)
			case 6:
				op.At = protowire.DecodeZigZag(v)
			case 7:
				op.Start = v
			case 12:
				op.Before = protowire.DecodeBool(v)
			case 13:
				op.Counter = v
			}
		case typ == protowire.BytesType && (num == 3 || num == 5 || num == 8 || num == 9 || num == 10 || num == 11):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			switch num {
			case 3:
				op.Value = nilIfEmpty(v)
			case 5:
				if err := decodeFloat(v, &op.Float); err != nil {
					return err
				}
			case 8:
				var s crdt.Share
				if err := decodeShare(v, &s); err != nil {
					return err
				}
				op.Shares = append(op.Shares, s)
			case 9:
				op.Elem = nilIfEmpty(v)
			case 10:
				es, err := decodeElemShares(v)
				if err != nil {
					return err
				}
				op.Elems = append(op.Elems, es)
			case 11:
				op.Anchor = nilIfEmpty(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// decodeFloat merges a LongDouble message into f.
func decodeFloat(b []byte, f *crdt.Float) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		if num >= 1 && num <= 3 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				f.Mant = v
			case 2:
				f.Exp = int32(protowire.DecodeZigZag(v & 0xFFFFFFFF))
			case 3:
				f.Neg = protowire.DecodeBool(v)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
	}
	return nil
}

// decodeShare parses a Share message into s.
func decodeShare(b []byte, s *crdt.Share) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		switch {
		case num >= 1 && num <= 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				s.Origin = crdt.ReplicaID(uint32(v))
			case 2:
				s.Start = v
			case 3:
				s.Seq = v
			case 4:
				s.HLC = crdt.HLC(v)
			case 5:
				s.Int = protowire.DecodeZigZag(v)
			}
		case num == 6 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return wireError(n)
			}
			if err := decodeFloat(v, &s.Float); err != nil {
				return err
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// decodeElemShares parses an ElemShares message.
func decodeElemShares(b []byte) (crdt.ElemShares, error) {
	var es crdt.ElemShares
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return es, wireError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return es, wireError(n)
			}
			b = b[n:]
			if num == 1 {
				es.Elem = nilIfEmpty(v)
				continue
			}
			var s crdt.Share
			if err := decodeShare(v, &s); err != nil {
				return es, err
			}
			es.Shares = append(es.Shares, s)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return es, wireError(n)
			}
			b = b[n:]
		}
	}
	return es, nil
}
