package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/oplog"
)

// changelogTopics returns the changelog topic, checking that the cluster
// has it (georep tail --changelog).
func (c *TailCmd) changelogTopics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	if c.Region != "" {
		return nil, fmt.Errorf("--region does not apply to --changelog: a changelog holds one region's values")
	}
	td, err := adm.ListTopics(ctx, c.ChangelogTopic)
	if err != nil {
		return nil, fmt.Errorf("list topics at %s: %w", strings.Join(c.Brokers, ","), err)
	}
	if d, ok := td[c.ChangelogTopic]; !ok || d.Err != nil {
		return nil, fmt.Errorf("%w: no changelog topic %s in the cluster at %s (run the node with --changelog)", oplog.ErrNoTopic, c.ChangelogTopic, strings.Join(c.Brokers, ","))
	}
	return []string{c.ChangelogTopic}, nil
}

// changelogRecord is the part of a changelog record (docs/cdc.md) the text
// form prints.
type changelogRecord struct {
	Op        string          `json:"op"`
	After     json.RawMessage `json:"after"`
	Truncated bool            `json:"truncated"`
	Type      string          `json:"type"`
	Len       int64           `json:"len"`
	TsMs      int64           `json:"ts_ms"`
	Source    struct {
		Region string `json:"region"`
		Dot    struct {
			Origin uint32 `json:"origin"`
			Seq    uint64 `json:"seq"`
		} `json:"dot"`
	} `json:"source"`
}

// changelogJSON is a changelog record in --json form: its Kafka position,
// key, and value as it is (null for a tombstone).
type changelogJSON struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       bytesJSON       `json:"key"`
	Value     json.RawMessage `json:"value"`
}

// changelog formats a changelog record:
//
//	2026-05-01T12:00:00.123Z u "cart:7" us(1):42 {"type":"hash",...}
//	2026-05-01T12:00:00.123Z d "cart:7" us(1):43
//	TOMBSTONE "cart:7"
func (p *printer) changelog(r *kgo.Record) {
	p.buf = p.buf[:0]
	var rec changelogRecord
	err := json.Unmarshal(r.Value, &rec)
	switch {
	case p.json:
		v := json.RawMessage(r.Value)
		if r.Value == nil {
			v = json.RawMessage("null")
		} else if err != nil {
			v, _ = json.Marshal(string(r.Value))
		}
		b, _ := json.Marshal(changelogJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: bytesJSON(r.Key), Value: v})
		p.buf = append(b, '\n')
	case r.Value == nil:
		p.buf = fmt.Appendf(p.buf, "TOMBSTONE %s\n", quote(r.Key, 200))
	case err != nil:
		p.buf = fmt.Appendf(p.buf, "BAD %s/%d@%d key=%s: %v\n", r.Topic, r.Partition, r.Offset, quote(r.Key, 80), err)
	default:
		p.buf = append(p.buf, msTime(rec.TsMs)...)
		p.buf = fmt.Appendf(p.buf, " %s %s", rec.Op, quote(r.Key, 200))
		if rec.Source.Dot.Seq != 0 {
			p.buf = fmt.Appendf(p.buf, " %s(%d):%d", rec.Source.Region, rec.Source.Dot.Origin, rec.Source.Dot.Seq)
		}
		switch {
		case rec.Truncated:
			p.buf = fmt.Appendf(p.buf, " %s of %d elements, too large for a record", rec.Type, rec.Len)
		case len(rec.After) > 0 && string(rec.After) != "null":
			after := string(rec.After)
			if len(after) > 400 {
				after = after[:400] + fmt.Sprintf("...(%d bytes)", len(rec.After))
			}
			p.buf = append(p.buf, ' ')
			p.buf = append(p.buf, after...)
		}
		p.buf = append(p.buf, '\n')
	}
	p.w.Write(p.buf)
}
