package materializer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// ChangelogFormat is the version of the changelog record format
// (docs/cdc.md), in the georep-changelog header of every record.
const ChangelogFormat = "1"

// HeaderChangelog names the changelog format header.
const HeaderChangelog = "georep-changelog"

// clEnvelope is a changelog record's value (Debezium's envelope).
type clEnvelope struct {
	Before    *clValue `json:"before"` // always null: georep keeps no previous value
	After     *clValue `json:"after"`
	Op        string   `json:"op"`
	Truncated bool     `json:"truncated,omitempty"`
	Type      string   `json:"type,omitempty"` // truncated records: the value's type
	Len       int64    `json:"len,omitempty"`  // truncated records: its element count
	Source    clSrc    `json:"source"`
	TsMs      int64    `json:"ts_ms"`
}

// clValue is a key's visible value.
type clValue struct {
	Type string `json:"type"`
	// Encoding is "utf8" when every byte string of the value is valid
	// UTF-8 and appears as is, "base64" when they all appear base64
	// encoded (standard alphabet, padded).
	Encoding   string `json:"encoding"`
	Value      any    `json:"value"`
	ExpireAtMs *int64 `json:"expire_at_ms"`
}

type clSrc struct {
	Region     string `json:"region"`      // the region the change originated in
	InstanceID uint32 `json:"instance_id"` // its instance ID
	Dot        clDot  `json:"dot"`
	HLC        clHLC  `json:"hlc"`
	TsMs       int64  `json:"ts_ms"` // the HLC's wall-clock time
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
	Node       string `json:"node"`               // the region whose node published the record
	Snapshot   bool   `json:"snapshot,omitempty"` // a record of the initial snapshot (op "r"): no event
}

type clDot struct {
	Origin uint32 `json:"origin"`
	Seq    uint64 `json:"seq"`
}

type clHLC struct {
	Raw     uint64 `json:"raw"`
	Time    string `json:"time"`
	Logical uint16 `json:"logical"`
}

var typeNames = map[crdt.Type]string{
	crdt.TypeString: "string",
	crdt.TypeHash:   "hash",
	crdt.TypeSet:    "set",
	crdt.TypeZSet:   "zset",
	crdt.TypeList:   "list",
}

// clRaw is a visible value read from the state, before encoding.
type clRaw struct {
	t      crdt.Type
	str    []byte    // string
	elems  [][]byte  // hash fields, set members, sorted-set members, list elements
	vals   [][]byte  // hash values
	scores []float64 // sorted-set scores
	size   int       // bytes read
	count  int64     // elements
	big    bool      // over the limits: publish truncated
}

// records returns the records publishing key's value as s sees it: the
// value (or a delete and its tombstone).
func (c *changelog) records(s *Snapshot, key []byte, m clMark) ([]*kgo.Record, error) {
	n := c.n
	k, err := s.Get(key)
	if err != nil {
		return nil, err
	}
	env := clEnvelope{Source: c.source(m.src), TsMs: time.Now().UnixMilli()}
	t := k.Type(s.now)
	switch {
	case t == crdt.TypeNone && m.snapshot:
		return nil, nil // nothing to publish for a key not visible at the snapshot
	case t == crdt.TypeNone:
		env.Op = "d"
	default:
		raw, err := c.read(s, key, k, t)
		if err != nil {
			return nil, err
		}
		switch {
		case m.snapshot:
			env.Op = "r"
			env.Source.Snapshot = true
		case m.existed:
			env.Op = "u"
		default:
			env.Op = "c"
		}
		if !raw.big {
			env.After = raw.value()
			if at, _ := k.Expiry(); at != 0 {
				env.After.ExpireAtMs = &at
			}
		}
		if raw.big || raw.size > c.maxBytes {
			env.truncate(raw)
		}
	}
	v, err := marshalEnvelope(&env)
	if err != nil {
		return nil, err
	}
	if len(v)+len(key) > c.maxBytes && !env.Truncated {
		env.truncate(&clRaw{t: t, count: lenOf(k, t)})
		if v, err = marshalEnvelope(&env); err != nil {
			return nil, err
		}
	}
	if env.Truncated {
		c.truncated.Add(1)
	}
	part := oplog.Partition(key, n.cfg.Partitions)
	hdrs := []kgo.RecordHeader{
		{Key: HeaderChangelog, Value: []byte(ChangelogFormat)},
		{Key: oplog.HeaderRegion, Value: []byte(n.cfg.Region)},
	}
	recs := []*kgo.Record{{Topic: c.topic, Key: key, Value: v, Partition: part, Headers: hdrs}}
	if env.Op == "d" {
		// A tombstone, so that a compacted topic forgets the key.
		recs = append(recs, &kgo.Record{Topic: c.topic, Key: key, Partition: part, Headers: hdrs})
	}
	return recs, nil
}

func (e *clEnvelope) truncate(raw *clRaw) {
	e.After = nil
	if e.Op != "r" {
		e.Op = "u"
	}
	e.Truncated = true
	e.Type = typeNames[raw.t]
	e.Len = raw.count
}

func lenOf(k *crdt.Key, t crdt.Type) int64 {
	if t == crdt.TypeString {
		return 1
	}
	return k.Len(t)
}

func marshalEnvelope(e *clEnvelope) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func (c *changelog) source(src clSource) clSrc {
	if src.seq == 0 {
		return clSrc{Region: c.n.cfg.Region, InstanceID: uint32(c.n.origin), Node: c.n.cfg.Region}
	}
	name := c.n.cfg.Region
	if src.origin != c.n.origin {
		name = ""
		if v, ok := c.n.originNames.Load(src.origin); ok {
			name = v.(string)
		}
	}
	return clSrc{
		Region:     name,
		InstanceID: uint32(src.origin),
		Dot:        clDot{Origin: uint32(src.origin), Seq: src.seq},
		HLC: clHLC{
			Raw:     uint64(src.hlc),
			Time:    time.UnixMilli(src.hlc.Millis()).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			Logical: uint16(src.hlc & 0xFFFF),
		},
		TsMs:      src.hlc.Millis(),
		Topic:     src.topic,
		Partition: src.partition,
		Offset:    src.offset,
		Node:      c.n.cfg.Region,
	}
}

// read reads key's visible value of type t, stopping at the limits.
func (c *changelog) read(s *Snapshot, key []byte, k *crdt.Key, t crdt.Type) (*clRaw, error) {
	raw := &clRaw{t: t}
	switch t {
	case crdt.TypeString:
		v, _ := k.String(s.now)
		raw.str, raw.size, raw.count = v, len(v), 1
		return raw, nil
	case crdt.TypeList:
		l, err := s.List(key)
		if err != nil {
			// Not readable (lists not wired in this build, or a damaged
			// list): published truncated rather than blocking the stream.
			c.n.log.Warn().Bytes("key", key).Err(err).Msg("changelog: list not readable; published without its value")
			raw.big = true
			return raw, nil
		}
		raw.count = l.Len()
		if raw.count > int64(c.maxElems) {
			raw.big = true
			return raw, nil
		}
		err = l.Range(0, false, func(_ crdt.ElemID, v []byte) bool {
			raw.elems = append(raw.elems, bytes.Clone(v))
			raw.size += len(v) + 4
			return raw.size <= c.maxBytes
		})
		raw.big = raw.size > c.maxBytes
		return raw, err
	}
	raw.count = k.Len(t)
	if raw.count > int64(c.maxElems) {
		raw.big = true
		return raw, nil
	}
	if t == crdt.TypeZSet {
		err := s.ScanScores(key, math.Inf(-1), nil, false, func(member []byte, score float64) bool {
			raw.elems = append(raw.elems, member)
			raw.scores = append(raw.scores, score)
			raw.size += len(member) + 24
			return raw.size <= c.maxBytes
		})
		raw.big = raw.size > c.maxBytes
		return raw, err
	}
	err := s.ScanElems(key, t, nil, func(elem []byte, cell *crdt.Cell) bool {
		raw.elems = append(raw.elems, elem)
		raw.size += len(elem) + 4
		if t == crdt.TypeHash {
			v, _ := cell.Value()
			raw.vals = append(raw.vals, v)
			raw.size += len(v) + 4
		}
		return raw.size <= c.maxBytes
	})
	raw.big = raw.size > c.maxBytes
	return raw, err
}

// value renders the value for JSON.
func (r *clRaw) value() *clValue {
	valid := utf8.Valid(r.str)
	for _, b := range r.elems {
		valid = valid && utf8.Valid(b)
	}
	for _, b := range r.vals {
		valid = valid && utf8.Valid(b)
	}
	enc := "utf8"
	str := func(b []byte) string { return string(b) }
	if !valid {
		enc = "base64"
		str = base64.StdEncoding.EncodeToString
	}
	out := &clValue{Type: typeNames[r.t], Encoding: enc}
	switch r.t {
	case crdt.TypeString:
		out.Value = str(r.str)
	case crdt.TypeHash:
		m := make(map[string]string, len(r.elems))
		for i, f := range r.elems {
			m[str(f)] = str(r.vals[i])
		}
		out.Value = m
	case crdt.TypeZSet:
		a := make([][2]any, len(r.elems))
		for i, e := range r.elems {
			a[i] = [2]any{str(e), jsonScore(r.scores[i])}
		}
		out.Value = a
	default: // set (in member byte order), list (in list order)
		a := make([]string, len(r.elems))
		for i, e := range r.elems {
			a[i] = str(e)
		}
		out.Value = a
	}
	return out
}

// jsonScore is a score as JSON: a number, or "inf" / "-inf".
func jsonScore(f float64) any {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return f
}
