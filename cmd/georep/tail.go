package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/tidwall/match"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogpb"
)

// TailCmd prints the events of a region's Kafka cluster.
type TailCmd struct {
	Brokers       []string `help:"Bootstrap servers of a region's Kafka cluster (for georep dev: its Kafka port, 19092 for the first region)." required:"" sep:","`
	Region        string   `help:"Only events that originated in this region (the cluster's own topic or the region's mirror)."`
	FromBeginning bool     `help:"Start at the beginning of the topics; without --follow, stop at their end." name:"from-beginning"`
	Key           string   `help:"Only keys matching this glob ('*' any run of bytes, '?' one byte, '\\' escapes)." placeholder:"PATTERN"`
	JSON          bool     `help:"One JSON object per line (see docs/schema.md)." name:"json"`
	Follow        bool     `help:"Keep printing new events (the default without --from-beginning)."`
	Topic         string   `help:"Name of every region's topic." default:"georep.ops"`

	Changelog      bool   `help:"Print the changelog's records (each changed key's new value, docs/cdc.md) instead of events."`
	ChangelogTopic string `help:"Name of the changelog topic." default:"georep.changelog" name:"changelog-topic"`
}

// Run prints events until the end (without --follow) or until ctx ends.
func (c *TailCmd) Run(ctx context.Context, log zerolog.Logger) error {
	return c.run(ctx, log, os.Stdout)
}

func (c *TailCmd) run(ctx context.Context, log zerolog.Logger, out io.Writer) error {
	follow := c.Follow || !c.FromBeginning
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.WithLogger(oplog.Logger(log)))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var names []string
	var topics oplog.Topics
	if c.Changelog {
		names, err = c.changelogTopics(mctx, adm)
	} else {
		topics, err = oplog.ListTopics(mctx, adm, c.Topic, nil)
		names = topics.Names()
	}
	if err != nil {
		return err
	}
	if c.Region != "" {
		names = nil
		if topics.Own != "" {
			names = append(names, topics.Own)
		}
		if t, ok := topics.Mirrors[c.Region]; ok {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: no %s topic or mirror of one in the cluster at %s", oplog.ErrNoTopic, c.Topic, strings.Join(c.Brokers, ","))
	}
	starts, err := oplog.StartOffsets(mctx, adm, names...)
	if err != nil {
		return err
	}
	ends, err := oplog.StableOffsets(mctx, adm, names...)
	if err != nil {
		return err
	}
	cancel()

	next := oplog.Offsets{} // per partition, the next offset to print
	consume := map[string]map[int32]kgo.Offset{}
	for t, parts := range ends {
		consume[t] = map[int32]kgo.Offset{}
		for p, end := range parts {
			at := end
			if c.FromBeginning {
				at = starts.Get(t, p)
			}
			next.Set(t, p, at)
			consume[t][p] = kgo.NewOffset().At(at)
		}
	}
	done := func() bool {
		for t, parts := range ends {
			for p, end := range parts {
				if next.Get(t, p) < end {
					return false
				}
			}
		}
		return true
	}
	if !follow && done() {
		return nil
	}
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(oplog.Logger(log)),
	)
	if err != nil {
		return err
	}
	defer cons.Close()

	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	p := printer{w: w, json: c.JSON, key: c.Key, region: c.Region, topic: c.Topic, cl: c.Changelog}
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn().Str("topic", t).Int32("partition", p).Err(err).Msg("fetch")
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			next.Set(r.Topic, r.Partition, r.Offset+1)
			if !r.Attrs.IsControl() {
				p.record(r)
			}
		})
		if err := w.Flush(); err != nil {
			return err // stdout closed (tail | head)
		}
		if !follow && done() {
			return nil
		}
	}
}

// printer formats records, one line each.
type printer struct {
	w      io.Writer
	json   bool
	key    string // glob, "" for all
	region string // origin filter, "" for all
	topic  string
	cl     bool // changelog records (tail_changelog.go)
	buf    []byte
}

func (p *printer) record(r *kgo.Record) {
	if p.key != "" && !match.Match(string(r.Key), p.key) {
		return
	}
	if p.cl {
		p.changelog(r)
		return
	}
	if p.region != "" {
		origin := oplog.RegionOf(r)
		if origin == "" {
			origin, _ = oplog.PeerOfMirror(r.Topic, p.topic)
		}
		if origin != p.region && !(origin == "" && r.Topic == p.topic) {
			return
		}
	}
	ev, err := oplog.ParseRecord(r)
	p.buf = p.buf[:0]
	switch {
	case err != nil && p.json:
		b, _ := json.Marshal(badJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: bytesJSON(r.Key), Error: err.Error()})
		p.buf = append(b, '\n')
	case err != nil:
		p.buf = fmt.Appendf(p.buf, "BAD %s/%d@%d key=%s: %v\n", r.Topic, r.Partition, r.Offset, quote(r.Key, 80), err)
	case p.json:
		b, _ := json.Marshal(eventJSON(r, ev))
		p.buf = append(b, '\n')
	default:
		p.buf = appendHuman(p.buf, oplog.RegionOf(r), ev)
	}
	p.w.Write(p.buf)
}

// appendHuman formats ev as one line:
//
//	2026-05-01T12:00:00.123Z +0 us(1):42 "user:1" SET "bar"; EXPIRE persist
func appendHuman(b []byte, region string, ev *crdt.Event) []byte {
	b = append(b, hlcTime(ev.HLC)...)
	b = fmt.Appendf(b, " +%d ", hlcLogical(ev.HLC))
	if region != "" {
		b = fmt.Appendf(b, "%s(%d):%d ", region, ev.Dot.Origin, ev.Dot.Seq)
	} else {
		b = fmt.Appendf(b, "%d:%d ", ev.Dot.Origin, ev.Dot.Seq)
	}
	b = append(b, quote(ev.Key, 200)...)
	for i := range ev.Ops {
		op := &ev.Ops[i]
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, ' ')
		b = append(b, kindName(op.Kind)...)
		f := fieldsOf(op)
		switch {
		case f.list:
			b = append(b, ' ')
			b = append(b, listID(op.Elem)...)
		case f.elem:
			b = append(b, ' ')
			b = append(b, quote(op.Elem, 200)...)
		}
		if f.typ {
			b = append(b, ' ')
			b = append(b, typeName(op.Type)...)
		}
		switch {
		case f.score:
			b = append(b, ' ')
			b = append(b, scoreText(op.Value)...)
		case f.value:
			b = append(b, ' ')
			b = append(b, quote(op.Value, 200)...)
		}
		if f.int {
			b = fmt.Appendf(b, " %d", op.Int)
		}
		if f.float {
			b = append(b, ' ')
			b = append(b, floatText(op.Float)...)
		}
		if f.at {
			if op.At == 0 {
				b = append(b, " persist"...)
			} else {
				b = append(b, ' ')
				b = append(b, msTime(op.At)...)
			}
		}
		if f.start {
			b = fmt.Appendf(b, " start=%d", op.Start)
		}
		if f.insert {
			side := "after"
			if op.Before {
				side = "before"
			}
			anchor := "head"
			if len(op.Anchor) > 0 {
				anchor = listID(op.Anchor)
			}
			b = fmt.Appendf(b, " %s %s counter=%d", side, anchor, op.Counter)
		}
		b = appendShares(b, " shares=", op.Shares)
		for _, es := range op.Elems {
			b = append(b, " elem "...)
			b = append(b, quote(es.Elem, 80)...)
			b = appendShares(b, " shares=", es.Shares)
		}
	}
	if len(ev.Observed) > 0 {
		b = append(b, " observed="...)
		for i, d := range ev.Observed {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, "%d:%d", d.Origin, d.Seq)
		}
	}
	return append(b, '\n')
}

// opFields says which of an op's fields to print: those its kind uses, and
// any other that is set (so kinds this build does not know still show).
type opFields struct {
	elem, list, insert, typ, value, score, int, float, at, start bool
}

func fieldsOf(op *crdt.Op) opFields {
	var f opFields
	switch op.Kind {
	case crdt.OpDeleteType:
		f.typ = true
	case crdt.OpSet, crdt.OpHSet:
		f.value = true
	case crdt.OpIncr, crdt.OpHIncr:
		f.int, f.start = true, true
	case crdt.OpIncrFloat, crdt.OpHIncrFloat, crdt.OpZIncr:
		f.float, f.start = true, true
	case crdt.OpZAdd:
		f.score = true
	case crdt.OpExpire:
		f.at = true
	case crdt.OpLInsert:
		f.list, f.value, f.insert = true, true, true
	case crdt.OpLSet:
		f.list, f.value = true, true
	case crdt.OpLRem:
		f.list = true
	}
	f.elem = !f.list && ((op.Kind >= crdt.OpHSet && op.Kind <= crdt.OpZRem) || len(op.Elem) > 0)
	f.insert = f.insert || len(op.Anchor) > 0 || op.Before || op.Counter != 0
	f.typ = f.typ || op.Type != crdt.TypeNone
	f.value = f.value || (!f.score && len(op.Value) > 0)
	f.int = f.int || op.Int != 0
	f.float = f.float || !op.Float.IsZero()
	f.at = f.at || op.At != 0
	f.start = f.start || op.Start != 0
	return f
}

func appendShares(b []byte, label string, shares []crdt.Share) []byte {
	if len(shares) == 0 {
		return b
	}
	b = append(b, label...)
	b = append(b, '[')
	for j, s := range shares {
		if j > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%d/%d@%d:", s.Origin, s.Start, s.Seq)
		if !s.Float.IsZero() {
			b = fmt.Appendf(b, "%d+%s", s.Int, floatText(s.Float))
		} else {
			b = strconv.AppendInt(b, s.Int, 10)
		}
	}
	return append(b, ']')
}

// listID formats a list element id (origin, seq and index, big-endian
// 4+8+4 bytes) as origin:seq.index; "0:0.i" is the event's own i-th insert.
func listID(b []byte) string {
	if len(b) != 16 {
		return quote(b, 40)
	}
	return fmt.Sprintf("%d:%d.%d", binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint32(b[12:]))
}

// scoreText formats a ZADD score (8-byte big-endian IEEE 754) the way Redis
// replies with scores.
func scoreText(v []byte) string {
	if len(v) != 8 {
		return "<bad score " + strconv.Itoa(len(v)) + " bytes>"
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(v))
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

func hlcTime(h crdt.HLC) string { return msTime(h.Millis()) }

func hlcLogical(h crdt.HLC) uint16 { return uint16(h & 0xffff) }

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// kindName is the schema's name of an op kind without its prefix (SET).
func kindName(k crdt.OpKind) string {
	return strings.TrimPrefix(oplogpb.OpKind(k).String(), "OP_KIND_")
}

// typeName is the schema's name of a data type without its prefix
// (STRING).
func typeName(t crdt.Type) string {
	return strings.TrimPrefix(oplogpb.DataType(t).String(), "DATA_TYPE_")
}

// floatText is the shortest decimal that identifies f at its 64-bit
// precision.
func floatText(f crdt.Float) string { return f.Big().Text('g', -1) }

// quote is a Go-quoted string, cut to max bytes with the full length noted.
func quote(b []byte, max int) string {
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:max])) + "...(" + strconv.Itoa(len(b)) + " bytes)"
}

// bytesJSON is a byte string in JSON: a string when it is UTF-8, else
// base64 under a "base64" key.
type bytesJSON []byte

func (b bytesJSON) MarshalJSON() ([]byte, error) {
	if utf8.Valid(b) {
		return json.Marshal(string(b))
	}
	return json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString(b)})
}

type badJSON struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Key       bytesJSON `json:"key"`
	Error     string    `json:"error"`
}

type eventJSONT struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Region    string    `json:"region,omitempty"`
	Origin    uint32    `json:"origin"`
	Seq       uint64    `json:"seq"`
	HLC       hlcJSON   `json:"hlc"`
	Key       bytesJSON `json:"key"`
	Observed  []dotJSON `json:"observed,omitempty"`
	Ops       []opJSON  `json:"ops"`
}

type hlcJSON struct {
	Time    string `json:"time"`
	Logical uint16 `json:"logical"`
	Raw     uint64 `json:"raw"`
}

type dotJSON struct {
	Origin uint32 `json:"origin"`
	Seq    uint64 `json:"seq"`
}

type floatJSON struct {
	Decimal string `json:"decimal"`
	Mant    uint64 `json:"mant"`
	Exp     int32  `json:"exp"`
	Neg     bool   `json:"neg,omitempty"`
}

type shareJSON struct {
	Origin uint32     `json:"origin"`
	Start  uint64     `json:"start"`
	Seq    uint64     `json:"seq"`
	HLC    uint64     `json:"hlc"`
	Int    int64      `json:"int"`
	Float  *floatJSON `json:"float,omitempty"`
}

type elemSharesJSON struct {
	Elem   bytesJSON   `json:"elem"`
	Shares []shareJSON `json:"shares"`
}

type opJSON struct {
	Kind    string           `json:"kind"`
	Type    string           `json:"type,omitempty"`
	Elem    *bytesJSON       `json:"elem,omitempty"`
	ElemID  string           `json:"elem_id,omitempty"`
	Value   *bytesJSON       `json:"value,omitempty"`
	Score   string           `json:"score,omitempty"`
	Int     *int64           `json:"int,omitempty"`
	Float   *floatJSON       `json:"float,omitempty"`
	AtMs    *int64           `json:"at_ms,omitempty"`
	At      string           `json:"at,omitempty"`
	Start   *uint64          `json:"start,omitempty"`
	Anchor  *string          `json:"anchor,omitempty"`
	Before  *bool            `json:"before,omitempty"`
	Counter *uint64          `json:"counter,omitempty"`
	Shares  []shareJSON      `json:"shares,omitempty"`
	Elems   []elemSharesJSON `json:"elems,omitempty"`
}

func toFloatJSON(f crdt.Float) *floatJSON {
	return &floatJSON{Decimal: floatText(f), Mant: f.Mant, Exp: f.Exp, Neg: f.Neg}
}

func sharesJSON(shares []crdt.Share) []shareJSON {
	var out []shareJSON
	for _, s := range shares {
		sj := shareJSON{Origin: uint32(s.Origin), Start: s.Start, Seq: s.Seq, HLC: uint64(s.HLC), Int: s.Int}
		if !s.Float.IsZero() {
			sj.Float = toFloatJSON(s.Float)
		}
		out = append(out, sj)
	}
	return out
}

func eventJSON(r *kgo.Record, ev *crdt.Event) eventJSONT {
	e := eventJSONT{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Region: oplog.RegionOf(r),
		Origin: uint32(ev.Dot.Origin), Seq: ev.Dot.Seq,
		HLC: hlcJSON{Time: hlcTime(ev.HLC), Logical: hlcLogical(ev.HLC), Raw: uint64(ev.HLC)},
		Key: ev.Key,
		Ops: []opJSON{},
	}
	for _, d := range ev.Observed {
		e.Observed = append(e.Observed, dotJSON{Origin: uint32(d.Origin), Seq: d.Seq})
	}
	for i := range ev.Ops {
		op := &ev.Ops[i]
		o := opJSON{Kind: kindName(op.Kind)}
		f := fieldsOf(op)
		if f.list {
			o.ElemID = listID(op.Elem)
		} else if f.elem {
			el := bytesJSON(op.Elem)
			o.Elem = &el
		}
		if f.insert {
			anchor := ""
			if len(op.Anchor) > 0 {
				anchor = listID(op.Anchor)
			}
			o.Anchor, o.Before, o.Counter = &anchor, &op.Before, &op.Counter
		}
		if f.typ {
			o.Type = typeName(op.Type)
		}
		switch {
		case f.score:
			o.Score = scoreText(op.Value)
		case f.value:
			v := bytesJSON(op.Value)
			o.Value = &v
		}
		if f.int {
			o.Int = &op.Int
		}
		if f.float {
			o.Float = toFloatJSON(op.Float)
		}
		if f.at {
			o.AtMs = &op.At
			if op.At != 0 {
				o.At = msTime(op.At)
			}
		}
		if f.start {
			o.Start = &op.Start
		}
		o.Shares = sharesJSON(op.Shares)
		for _, es := range op.Elems {
			o.Elems = append(o.Elems, elemSharesJSON{Elem: es.Elem, Shares: sharesJSON(es.Shares)})
		}
		e.Ops = append(e.Ops, o)
	}
	return e
}
