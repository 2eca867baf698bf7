package materializer

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

type badLine struct {
	Msg       string `json:"message"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    *int64 `json:"offset"`
	Skipped   int64  `json:"skipped"`
	From      int64  `json:"from_offset"`
	To        int64  `json:"to_offset"`
}

func badLines(t *testing.T, buf *bytes.Buffer) []badLine {
	t.Helper()
	var out []badLine
	dec := json.NewDecoder(buf)
	for dec.More() {
		var l badLine
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// TestNode_BadRecord checks that every bad record is counted and, up to
// BadRecordLogLimit a second per topic partition, logged with its topic,
// partition and offset; the rest are summarized by an "... and K more" line.
func TestNode_BadRecord(t *testing.T) {
	var buf bytes.Buffer
	n := newNode(Config{}, zerolog.New(&buf), nil)
	t0 := time.Unix(1700000000, 0)
	bad := func(at time.Time, topic string, part int32, offsets ...int64) {
		for _, off := range offsets {
			n.badRecordAt(at, &kgo.Record{Topic: topic, Partition: part, Offset: off}, errors.New("garbage"))
		}
	}
	span := func(from, to int64) []int64 {
		var s []int64
		for o := from; o <= to; o++ {
			s = append(s, o)
		}
		return s
	}
	// Within one second: 25 in a/0 (10 logged), 3 in a/1 (all logged).
	bad(t0, "a", 0, span(100, 124)...)
	bad(t0.Add(500*time.Millisecond), "a", 1, 7, 8, 9)
	lines := badLines(t, &buf)
	if len(lines) != BadRecordLogLimit+3 {
		t.Fatalf("%d lines, want %d: %+v", len(lines), BadRecordLogLimit+3, lines)
	}
	for i, l := range lines {
		want, part := int64(100+i), int32(0)
		if i >= BadRecordLogLimit {
			want, part = int64(7+i-BadRecordLogLimit), 1
		}
		if l.Topic != "a" || l.Partition != part || l.Offset == nil || *l.Offset != want {
			t.Errorf("line %d: %+v, want a/%d offset %d", i, l, part, want)
		}
	}
	// The next second: the summary of the 15 unlogged, then the record.
	bad(t0.Add(time.Second), "a", 0, 200)
	lines = badLines(t, &buf)
	if len(lines) != 2 || lines[0].Skipped != 15 || lines[0].From != 110 || lines[0].To != 124 ||
		lines[0].Msg[:len("... and 15 more")] != "... and 15 more" || lines[1].Offset == nil || *lines[1].Offset != 200 {
		t.Fatalf("lines %+v", lines)
	}
	// Flushing reports what is left unlogged, once.
	bad(t0.Add(1500*time.Millisecond), "a", 0, span(201, 212)...)
	if lines = badLines(t, &buf); len(lines) != BadRecordLogLimit-1 {
		t.Fatalf("%d lines, want %d", len(lines), BadRecordLogLimit-1)
	}
	n.flushBadRecords()
	n.flushBadRecords()
	lines = badLines(t, &buf)
	if len(lines) != 1 || lines[0].Topic != "a" || lines[0].Partition != 0 || lines[0].Skipped != 3 || lines[0].From != 210 || lines[0].To != 212 {
		t.Fatalf("flushed %+v", lines)
	}
	if got := n.bad.Load(); got != 25+3+1+12 {
		t.Fatalf("counted %d bad records, want 41", got)
	}
}
