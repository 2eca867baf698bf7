package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// docExample is one example event of docs/schema.md with the record that
// carries it.
type docExample struct {
	region    string
	topic     string
	partition int32
	offset    int64
	ev        crdt.Event
}

// schemaDocExamples are the events of docs/schema.md's examples, in order.
func schemaDocExamples(t *testing.T) []docExample {
	t.Helper()
	at := func(s string) crdt.HLC {
		tm, err := time.Parse(time.RFC3339, "2026-05-01T"+s+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return crdt.MakeHLC(tm.UnixMilli(), 0)
	}
	float := func(s string) crdt.Float {
		f, ok := crdt.ParseFloat([]byte(s))
		if !ok {
			t.Fatalf("float %q", s)
		}
		return f
	}
	ev := func(origin crdt.ReplicaID, seq uint64, hlc string, key string, observed crdt.Clock, ops ...crdt.Op) crdt.Event {
		return crdt.Event{Dot: crdt.Dot{Origin: origin, Seq: seq}, HLC: at(hlc), Key: []byte(key), Observed: observed, Ops: ops}
	}
	obs := func(pairs ...uint64) crdt.Clock {
		var c crdt.Clock
		for i := 0; i < len(pairs); i += 2 {
			c = c.With(crdt.ReplicaID(pairs[i]), pairs[i+1])
		}
		return c
	}
	us := func(part int32, off int64, e crdt.Event) docExample {
		return docExample{"us", oplog.Topic, part, off, e}
	}
	eu := func(topic string, part int32, off int64, e crdt.Event) docExample {
		return docExample{"eu", topic, part, off, e}
	}
	mirror := oplog.MirrorTopic("eu", oplog.Topic)
	elem := func(s string) []byte { return []byte(s) }
	score := binary.BigEndian.AppendUint64(nil, math.Float64bits(2.5))
	return []docExample{
		us(5, 0, ev(1, 1, "12:00:00", "user:1", nil, crdt.Op{Kind: crdt.OpSet, Value: elem("alice")}, crdt.Op{Kind: crdt.OpExpire})),
		eu(mirror, 5, 0, ev(2, 1, "12:00:00", "visits", nil, crdt.Op{Kind: crdt.OpIncr, Int: 5})),
		eu(mirror, 7, 0, ev(2, 2, "12:00:01", "temp", nil, crdt.Op{Kind: crdt.OpIncrFloat, Float: float("0.1")})),
		us(5, 1, ev(1, 2, "12:00:01", "user:1", obs(1, 1), crdt.Op{Kind: crdt.OpExpire, At: at("13:00:00").Millis()})),
		us(5, 2, ev(1, 3, "12:00:02", "user:1", obs(1, 2), crdt.Op{Kind: crdt.OpExpire})),
		eu(mirror, 5, 1, ev(2, 3, "12:00:02", "visits", obs(2, 1), crdt.Op{Kind: crdt.OpDelete,
			Shares: []crdt.Share{{Origin: 2, Start: 1, Seq: 1, HLC: at("12:00:00"), Int: 5}}})),
		us(5, 8, ev(1, 9, "12:00:08", "user:1", obs(1, 8), crdt.Op{Kind: crdt.OpDeleteType, Type: crdt.TypeSet},
			crdt.Op{Kind: crdt.OpSet, Value: elem("bob")}, crdt.Op{Kind: crdt.OpExpire})),
		us(4, 0, ev(1, 4, "12:00:03", "cart:7", nil, crdt.Op{Kind: crdt.OpHSet, Elem: elem("sku-1"), Value: elem("2")})),
		us(4, 1, ev(1, 5, "12:00:04", "cart:7", obs(1, 4), crdt.Op{Kind: crdt.OpHIncr, Elem: elem("sku-1"), Int: 3})),
		us(4, 2, ev(1, 6, "12:00:05", "cart:7", obs(1, 5), crdt.Op{Kind: crdt.OpHDel, Elem: elem("sku-1"),
			Shares: []crdt.Share{{Origin: 1, Start: 5, Seq: 5, HLC: at("12:00:04"), Int: 3}}})),
		us(6, 0, ev(1, 7, "12:00:06", "tags", nil, crdt.Op{Kind: crdt.OpSAdd, Elem: elem("red")})),
		us(6, 1, ev(1, 8, "12:00:07", "tags", obs(1, 7), crdt.Op{Kind: crdt.OpSRem, Elem: elem("red")})),
		eu(mirror, 7, 0, ev(2, 4, "12:00:03", "board", nil, crdt.Op{Kind: crdt.OpZAdd, Elem: elem("ann"), Value: score})),
		eu(mirror, 7, 1, ev(2, 5, "12:00:04", "board", obs(2, 4), crdt.Op{Kind: crdt.OpZRem, Elem: elem("ann")})),
		us(4, 3, ev(1, 11, "12:00:10", "prices", nil, crdt.Op{Kind: crdt.OpHIncrFloat, Elem: elem("tea"), Float: float("0.25")})),
		eu(mirror, 7, 2, ev(2, 6, "12:00:05", "board", obs(2, 5), crdt.Op{Kind: crdt.OpZIncr, Elem: elem("ann"), Float: float("1.5")})),
		us(7, 3, ev(1, 10, "12:00:09", "todo", obs(1, 9, 2, 15), crdt.Op{Kind: crdt.OpLInsert, Elem: listElem(0, 0, 1), Value: elem("milk"),
			Anchor: listElem(2, 15, 1), Before: true, Counter: 3})),
		us(7, 4, ev(1, 12, "12:00:11", "todo", obs(1, 10, 2, 15), crdt.Op{Kind: crdt.OpLSet, Elem: listElem(1, 10, 1), Value: elem("oat milk")})),
		us(7, 5, ev(1, 13, "12:00:12", "todo", obs(1, 12, 2, 15), crdt.Op{Kind: crdt.OpLRem, Elem: listElem(2, 15, 1)})),
	}
}

var docEventLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT[0-9:.]+Z \+\d+ `)

// TestSchemaDoc_Examples checks docs/schema.md against tail's formatter:
// every example line is what georep tail prints for its event, every JSON
// example what georep tail --json prints, and every op kind has an example.
func TestSchemaDoc_Examples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	var textLines []string
	var jsonDocs []any
	inJSON := false
	var block bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case line == "```json":
			inJSON = true
			block.Reset()
		case inJSON && line == "```":
			inJSON = false
			dec := json.NewDecoder(&block)
			for dec.More() {
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatalf("docs/schema.md: a JSON example does not parse: %v", err)
				}
				jsonDocs = append(jsonDocs, v)
			}
		case inJSON:
			block.WriteString(line + "\n")
		case docEventLine.MatchString(line):
			textLines = append(textLines, line)
		}
	}

	examples := schemaDocExamples(t)
	human := map[string]bool{}
	kinds := map[crdt.OpKind]bool{}
	var generated []any
	for _, ex := range examples {
		line := strings.TrimSuffix(string(appendHuman(nil, ex.region, &ex.ev)), "\n")
		human[line] = true
		for _, op := range ex.ev.Ops {
			kinds[op.Kind] = true
		}
		r := oplog.NewRecord(ex.region, ex.topic, &ex.ev, 8)
		r.Partition, r.Offset = ex.partition, ex.offset
		b, err := json.Marshal(eventJSON(r, &ex.ev))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		generated = append(generated, v)
		found := false
		for _, l := range textLines {
			found = found || l == line
		}
		if !found {
			t.Errorf("docs/schema.md lacks the example line\n%s", line)
		}
	}
	for _, l := range textLines {
		if !human[l] {
			t.Errorf("docs/schema.md: example line not generated by the test (add its event to schemaDocExamples, or fix it):\n%s", l)
		}
	}
	for _, d := range jsonDocs {
		found := false
		for _, g := range generated {
			found = found || reflect.DeepEqual(d, g)
		}
		if !found {
			b, _ := json.Marshal(d)
			t.Errorf("docs/schema.md: JSON example is not what georep tail --json prints for any example event:\n%s", b)
		}
	}
	for k := crdt.OpKind(1); k <= crdt.MaxOpKind; k++ {
		if !kinds[k] {
			t.Errorf("docs/schema.md has no example of op kind %s", kindName(k))
		}
	}
}
