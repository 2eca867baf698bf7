package oplog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultPartitions is the partition count of georep topics when not
// configured. Every region must use the same count.
const DefaultPartitions = 8

// EnsureTopics creates each topic with partitions partitions unless it
// exists; an existing topic with another partition count is an error, since
// key-to-partition mapping must agree across regions.
func EnsureTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics ...string) error {
	resp, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics %s: %w", strings.Join(topics, ","), err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Topic, t.Err)
		}
	}
	md, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	for _, t := range topics {
		d, ok := md[t]
		if !ok || d.Err != nil {
			return fmt.Errorf("topic %s not available: %v", t, d.Err)
		}
		if n := int32(len(d.Partitions)); n != partitions {
			return fmt.Errorf("topic %s has %d partitions, georep is configured for %d: every region must use the same count", t, n, partitions)
		}
	}
	return nil
}
