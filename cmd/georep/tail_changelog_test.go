package main

import (
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTailCmd_Changelog(t *testing.T) {
	c := newCluster(t)
	rec := func(key, value string) *kgo.Record {
		r := &kgo.Record{Topic: "georep.changelog", Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	produceRecs(t, c,
		rec("cart:7", `{"before":null,"after":{"type":"hash","encoding":"utf8","value":{"sku-1":"2"},"expire_at_ms":null},"op":"c","source":{"region":"eu","instance_id":2,"dot":{"origin":2,"seq":4}},"ts_ms":1777636803012}`),
		rec("big", `{"before":null,"after":null,"op":"u","truncated":true,"type":"set","len":200000,"source":{"region":"us","instance_id":1,"dot":{"origin":1,"seq":9}},"ts_ms":1777636803012}`),
		rec("cart:7", `{"before":null,"after":null,"op":"d","source":{"region":"us","instance_id":1,"dot":{"origin":1,"seq":10}},"ts_ms":1777636804000}`),
		rec("cart:7", ""),
	)
	brokers := c.ListenAddrs()
	got := runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Changelog: true, ChangelogTopic: "georep.changelog", Key: "cart:*"})
	want := []string{
		`2026-05-01T12:00:03.012Z c "cart:7" eu(2):4 {"type":"hash","encoding":"utf8","value":{"sku-1":"2"},"expire_at_ms":null}`,
		`2026-05-01T12:00:04.000Z d "cart:7" us(1):10`,
		`TOMBSTONE "cart:7"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %q, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %s\nwant       %s", i, got[i], want[i])
		}
	}
	got = runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Changelog: true, ChangelogTopic: "georep.changelog", Key: "big"})
	if len(got) != 1 || got[0] != `2026-05-01T12:00:03.012Z u "big" us(1):9 set of 200000 elements, too large for a record` {
		t.Fatalf("truncated record: %q", got)
	}
	got = runTail(t, &TailCmd{Brokers: brokers, FromBeginning: true, Changelog: true, ChangelogTopic: "georep.changelog", JSON: true, Key: "cart:*"})
	if len(got) != 3 {
		t.Fatalf("json: %q", got)
	}
	var last struct {
		Key   string
		Value json.RawMessage
	}
	if err := json.Unmarshal([]byte(got[2]), &last); err != nil || last.Key != "cart:7" || string(last.Value) != "null" {
		t.Fatalf("json tombstone %s (%v)", got[2], err)
	}
	if err := (&TailCmd{Brokers: brokers, Changelog: true, ChangelogTopic: "nope"}).run(t.Context(), testLog(t), nil); err == nil {
		t.Fatal("a missing changelog topic is no error")
	}
}
