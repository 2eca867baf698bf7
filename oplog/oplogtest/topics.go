package oplogtest

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/oplog"
)

func ensure(ctx context.Context, cl *kgo.Client, partitions int32, recs []*kgo.Record) error {
	seen := map[string]bool{}
	var topics []string
	for _, r := range recs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			topics = append(topics, r.Topic)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	return oplog.EnsureTopics(ctx, kadm.NewClient(cl), partitions, topics...)
}
