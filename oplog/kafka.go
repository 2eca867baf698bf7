package oplog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultPartitions is the partition count of georep topics when not
// configured. Every region must use the same count.
const DefaultPartitions = 8

// EnsureTopics creates each topic with partitions partitions unless it
// exists; an existing topic with another partition count is an error, since
// key-to-partition mapping must agree across regions.
//
// A topic another client created a moment earlier (TOPIC_ALREADY_EXISTS) may
// not be in every broker's metadata yet: EnsureTopics then polls until it is,
// with fresh metadata requests (franz-go would otherwise answer from its
// metadata cache, where "unknown topic" stays for 5 s), until ctx ends.
func EnsureTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics ...string) error {
	return EnsureTopicsWith(ctx, adm, partitions, nil, topics...)
}

// EnsureTopicsWith is EnsureTopics creating missing topics with the topic
// configs (e.g. "cleanup.policy"); an existing topic's configs are left as
// they are.
func EnsureTopicsWith(ctx context.Context, adm *kadm.Client, partitions int32, configs map[string]*string, topics ...string) error {
	resp, err := adm.CreateTopics(ctx, partitions, -1, configs, topics...)
	if err != nil {
		return fmt.Errorf("create topics %s: %w", strings.Join(topics, ","), err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Topic, t.Err)
		}
	}
	wait := 20 * time.Millisecond
	for {
		missing, err := checkTopics(ctx, adm, partitions, topics)
		if err != nil || missing == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not available: %w", missing.topic, missing.err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

type missingTopic struct {
	topic string
	err   error
}

// checkTopics describes the topics with a metadata request that bypasses
// the client's cache (kadm.WithAuthorizedOps does) and refreshes it. It
// returns the first topic not (yet) available, or an error for a wrong
// partition count.
func checkTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics []string) (*missingTopic, error) {
	md, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topics...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("describe topics: %w", err)
		}
		return &missingTopic{topic: strings.Join(topics, ","), err: err}, nil
	}
	for _, t := range topics {
		d, ok := md[t]
		switch {
		case !ok:
			return &missingTopic{topic: t, err: kerr.UnknownTopicOrPartition}, nil
		case d.Err != nil && !kerr.IsRetriable(d.Err):
			// Not authorized, invalid name...: waiting will not help.
			return nil, fmt.Errorf("topic %s: %w", t, d.Err)
		case d.Err != nil:
			return &missingTopic{topic: t, err: d.Err}, nil
		case len(d.Partitions) == 0:
			return &missingTopic{topic: t, err: kerr.LeaderNotAvailable}, nil
		}
		if n := int32(len(d.Partitions)); n != partitions {
			return nil, fmt.Errorf("topic %s has %d partitions, georep is configured for %d: every region must use the same count", t, n, partitions)
		}
		for _, p := range d.Partitions {
			if p.Err != nil && !errors.Is(p.Err, kerr.ReplicaNotAvailable) {
				return &missingTopic{topic: fmt.Sprintf("%s/%d", t, p.Partition), err: p.Err}, nil
			}
		}
	}
	return nil, nil
}
