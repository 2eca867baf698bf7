package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/oplog/oplogtest"
)

// tailCluster holds one event of every op kind, from us (own topic) and eu
// (mirror), and two bad records.
func tailCluster(t *testing.T) (brokers []string, recs []*kgo.Record) {
	c := newCluster(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	us, eu := oplogtest.NewOrigin("us", 1, now), oplogtest.NewOrigin("eu", 2, now)
	rec := func(o *oplogtest.Origin, ev *crdt.Event) *kgo.Record { return o.Record("us", oplog.Topic, ev, 4) }
	recs = []*kgo.Record{
		rec(us, us.Set("user:1", "bar")),
		rec(eu, eu.Incr("hits", 5)),
		rec(eu, eu.IncrFloat("temp", "1.5")),
		rec(us, us.Expire("user:1", now+3600_000)),
		rec(us, us.Emit("user:1", crdt.Op{Kind: crdt.OpDeleteType, Type: crdt.TypeHash})),
		rec(eu, eu.Del("hits")),
		rec(us, us.Emit("cart:7", crdt.Op{Kind: crdt.OpHSet, Elem: []byte("sku-1"), Value: []byte("2")})),
		rec(us, us.Emit("board", crdt.Op{Kind: crdt.OpZAdd, Elem: []byte("ann"), Value: binary.BigEndian.AppendUint64(nil, math.Float64bits(2.5))},
			crdt.Op{Kind: crdt.OpZIncr, Elem: []byte("ann"), Float: crdt.Float{Mant: 1 << 63, Exp: -63}})),
		rec(us, us.Emit("todo", crdt.Op{Kind: crdt.OpLInsert, Elem: listElem(0, 0, 1), Value: []byte("milk"), Anchor: listElem(2, 15, 1), Before: true, Counter: 3})),
	}
	trunc := *recs[0]
	trunc.Value = trunc.Value[:7]
	recs = append(recs, &trunc, &kgo.Record{Topic: oplog.MirrorTopic("eu", oplog.Topic), Partition: 3, Key: []byte("user:2"), Value: []byte("{}junk")})
	produceRecs(t, c, recs...)
	return c.ListenAddrs(), recs
}

func runTail(t *testing.T, c *TailCmd) []string {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.run(ctx, testLog(t), &out); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(out.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestTailCmd_Human(t *testing.T) {
	brokers, recs := tailCluster(t)
	lines := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Topic: oplog.Topic})
	if len(lines) != len(recs) {
		t.Fatalf("%d lines for %d records:\n%s", len(lines), len(recs), strings.Join(lines, "\n"))
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`2026-05-01T12:00:00.000Z +0 us(1):1 "user:1" SET "bar"; EXPIRE persist`,
		`eu(2):1 "hits" INCR 5 start=0`,
		`+1 eu(2):2 "temp" INCR_FLOAT 1.5 start=0`,
		`us(1):2 "user:1" EXPIRE 2026-05-01T13:00:00.000Z observed=1:1`,
		`us(1):3 "user:1" DELETE_TYPE HASH observed=1:2`,
		`eu(2):3 "hits" DELETE shares=[2/1@1:5] observed=2:1`,
		`us(1):4 "cart:7" HSET "sku-1" "2"`,
		`us(1):5 "board" ZADD "ann" 2.5; ZINCR "ann" 1 start=0`,
		`us(1):6 "todo" LINSERT 0:0.1 "milk" before 2:15.1 counter=3`,
		`BAD georep.ops/`,
		`BAD eu.georep.ops/3@1 key="user:2": oplog: bad record`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
}

func TestTailCmd_JSON(t *testing.T) {
	brokers, recs := tailCluster(t)
	lines := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, JSON: true, Topic: oplog.Topic})
	if len(lines) != len(recs) {
		t.Fatalf("%d lines for %d records", len(lines), len(recs))
	}
	kinds := map[string]map[string]any{}
	bad := 0
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if _, ok := m["error"]; ok {
			bad++
			if _, ok := m["offset"]; !ok {
				t.Errorf("bad record without its offset: %s", l)
			}
			continue
		}
		for _, op := range m["ops"].([]any) {
			o := op.(map[string]any)
			kinds[o["kind"].(string)] = o
		}
		if m["hlc"].(map[string]any)["time"] == "" || m["region"] == "" || m["origin"].(float64) == 0 {
			t.Errorf("event lacks its stamp: %s", l)
		}
	}
	if bad != 2 {
		t.Errorf("%d bad records, want 2", bad)
	}
	for _, k := range []string{"DELETE", "DELETE_TYPE", "SET", "INCR", "INCR_FLOAT", "EXPIRE", "HSET", "ZADD", "ZINCR", "LINSERT"} {
		if kinds[k] == nil {
			t.Errorf("no %s op in %v", k, kinds)
		}
	}
	if kinds["SET"]["value"] != "bar" || kinds["INCR"]["int"].(float64) != 5 ||
		kinds["INCR_FLOAT"]["float"].(map[string]any)["decimal"] != "1.5" || kinds["DELETE_TYPE"]["type"] != "HASH" ||
		kinds["EXPIRE"]["at"] != "2026-05-01T13:00:00.000Z" || kinds["HSET"]["elem"] != "sku-1" || kinds["ZADD"]["score"] != "2.5" ||
		kinds["LINSERT"]["elem_id"] != "0:0.1" || kinds["LINSERT"]["anchor"] != "2:15.1" || kinds["LINSERT"]["before"] != true {
		t.Errorf("op fields: %v", kinds)
	}
}

func TestTailCmd_Filters(t *testing.T) {
	brokers, _ := tailCluster(t)
	t.Run("Key", func(t *testing.T) {
		lines := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Key: "user:*", Topic: oplog.Topic})
		if len(lines) != 5 { // 3 events, 2 bad records of user:1 and user:2
			t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.Contains(l, `"user:`) {
				t.Errorf("unmatched key: %s", l)
			}
		}
	})
	t.Run("Region", func(t *testing.T) {
		lines := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Region: "eu", Topic: oplog.Topic})
		if len(lines) != 4 { // 3 events and the junk record on eu's mirror
			t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.Contains(l, "eu(2)") && !strings.HasPrefix(l, "BAD eu.georep.ops") {
				t.Errorf("not eu's: %s", l)
			}
		}
	})
	t.Run("NoMatch", func(t *testing.T) {
		if lines := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Key: "nothing*", Topic: oplog.Topic}); len(lines) != 0 {
			t.Fatalf("lines: %q", lines)
		}
	})
}

func TestTailCmd_Follow(t *testing.T) {
	c := newCluster(t)
	o := oplogtest.NewOrigin("us", 1, time.Now().UnixMilli())
	produceRecs(t, c, o.Record("us", oplog.Topic, o.Set("old", "1"), 4))
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&TailCmd{Brokers: c.ListenAddrs(), Topic: oplog.Topic}).run(ctx, testLog(t), &out) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), `"new"`) {
		if time.Now().After(deadline) {
			t.Fatalf("new event not printed: %q", out.String())
		}
		produceRecs(t, c, o.Record("us", oplog.Topic, o.Set("new", "2"), 4))
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), `"old"`) {
		t.Fatalf("printed an event from before it started: %q", out.String())
	}
}

func TestBytesJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"user:1", `"user:1"`},
		{"é\n", `"é\n"`},
		{"\xff\x00", `{"base64":"/wA="}`},
	} {
		b, err := json.Marshal(bytesJSON(c.in))
		if err != nil || string(b) != c.want {
			t.Errorf("%q: %s, %v; want %s", c.in, b, err, c.want)
		}
	}
}

// listElem is a list element id: origin, seq, index.
func listElem(origin uint32, seq uint64, index uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, origin)
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint32(b, index)
}
