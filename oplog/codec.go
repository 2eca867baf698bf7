package oplog

import (
	"errors"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog/oplogpb"
)

// SchemaVersion is the event schema version carried in every record's
// georep-schema header.
const SchemaVersion = "1"

// ErrBadRecord is returned for a record that is not a georep event of a
// schema version this build reads.
var ErrBadRecord = errors.New("oplog: bad record")

// Encode returns the protobuf encoding of ev. See appendEvent;
// encode_test.go checks it against proto.Marshal.
func Encode(ev *crdt.Event) []byte { return appendEvent(make([]byte, 0, encodedSize(ev)), ev) }

func pbShares(ss []crdt.Share) []*oplogpb.Share {
	var out []*oplogpb.Share
	for _, s := range ss {
		ps := &oplogpb.Share{Origin: uint32(s.Origin), Start: s.Start, Seq: s.Seq, Hlc: uint64(s.HLC), Int: s.Int}
		if !s.Float.IsZero() {
			ps.Float = pbFloat(s.Float)
		}
		out = append(out, ps)
	}
	return out
}

func fromPBShares(ps []*oplogpb.Share) []crdt.Share {
	var out []crdt.Share
	for _, s := range ps {
		out = append(out, crdt.Share{
			Origin: crdt.ReplicaID(s.Origin), Start: s.Start, Seq: s.Seq,
			HLC: crdt.HLC(s.Hlc), Int: s.Int, Float: fromPBFloat(s.Float),
		})
	}
	return out
}

func pbFloat(f crdt.Float) *oplogpb.LongDouble {
	return &oplogpb.LongDouble{Mant: f.Mant, Exp: f.Exp, Neg: f.Neg}
}

func fromPBFloat(f *oplogpb.LongDouble) crdt.Float {
	if f == nil {
		return crdt.Float{}
	}
	return crdt.Float{Mant: f.Mant, Exp: f.Exp, Neg: f.Neg}
}

// maxOpKind is the greatest op kind this build applies.
const maxOpKind = crdt.MaxOpKind

// Decode parses an event encoded by Encode. It rejects events this build
// cannot apply (unknown op kinds, missing dot, no ops) with ErrBadRecord.
// See decodeEvent; decode_test.go checks it against proto.Unmarshal.
func Decode(b []byte) (*crdt.Event, error) { return decodeEvent(b) }
