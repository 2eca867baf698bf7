package oplog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNoTopic is returned when a georep topic the caller needs does not exist
// in the cluster.
var ErrNoTopic = errors.New("oplog: topic does not exist")

// Topics are the georep topics of one Kafka cluster: the region's own topic
// and the mirrored topics of its peers, with their partition counts.
type Topics struct {
	// Own is the own topic's name ("" when it does not exist).
	Own string
	// Mirrors maps each peer region to its mirrored topic.
	Mirrors map[string]string
	// Partitions is the partition count of every listed topic.
	Partitions map[string]int32
}

// Names returns the topics, own first, then the mirrors in peer order.
func (t Topics) Names() []string {
	var out []string
	if t.Own != "" {
		out = append(out, t.Own)
	}
	for _, p := range t.Peers() {
		out = append(out, t.Mirrors[p])
	}
	return out
}

// Peers returns the peer regions, sorted.
func (t Topics) Peers() []string {
	out := make([]string, 0, len(t.Mirrors))
	for p := range t.Mirrors {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// PeerOfMirror returns the peer region whose topic name is mirrored as
// name ("<peer>.<topic>"), and whether name is such a mirror. Mirrors of
// mirrors ("a.b.<topic>", which MirrorMaker 2 creates in a chain) do not
// count: georep never consumes them, since they repeat the origin's events
// in a second order.
func PeerOfMirror(name, topic string) (string, bool) {
	peer, ok := strings.CutSuffix(name, "."+topic)
	if !ok || peer == "" || strings.Contains(peer, ".") {
		return "", false
	}
	return peer, true
}

// ListTopics describes the georep topics named topic in the cluster adm
// talks to. With peers given, exactly their mirrors are listed and a missing
// one is an error wrapping ErrNoTopic; otherwise every "<peer>.<topic>" the
// cluster holds is. A missing own topic is not an error (Own is "").
func ListTopics(ctx context.Context, adm *kadm.Client, topic string, peers []string) (Topics, error) {
	md, err := adm.ListTopics(ctx)
	if err != nil {
		return Topics{}, fmt.Errorf("list topics: %w", err)
	}
	out := Topics{Mirrors: map[string]string{}, Partitions: map[string]int32{}}
	add := func(name string) error {
		d := md[name]
		if d.Err != nil {
			return fmt.Errorf("topic %s: %w", name, d.Err)
		}
		out.Partitions[name] = int32(len(d.Partitions))
		return nil
	}
	if md.Has(topic) {
		if err := add(topic); err != nil {
			return Topics{}, err
		}
		out.Own = topic
	}
	if len(peers) > 0 {
		for _, p := range peers {
			name := MirrorTopic(p, topic)
			if !md.Has(name) {
				return Topics{}, fmt.Errorf("%w: %s (mirror of peer %s)", ErrNoTopic, name, p)
			}
			if err := add(name); err != nil {
				return Topics{}, err
			}
			out.Mirrors[p] = name
		}
		return out, nil
	}
	for name, d := range md {
		peer, ok := PeerOfMirror(name, topic)
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			continue
		}
		if err := add(name); err != nil {
			return Topics{}, err
		}
		out.Mirrors[peer] = name
	}
	return out, nil
}

// Offsets are per topic, per partition offsets.
type Offsets map[string]map[int32]int64

// Set records o for topic t partition p.
func (o Offsets) Set(t string, p int32, off int64) {
	if o[t] == nil {
		o[t] = make(map[int32]int64)
	}
	o[t][p] = off
}

// Get returns the offset of topic t partition p (0 if none).
func (o Offsets) Get(t string, p int32) int64 { return o[t][p] }

// StartOffsets lists the first offset of every partition of topics (what
// retention has not deleted).
func StartOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (Offsets, error) {
	lo, err := adm.ListStartOffsets(ctx, topics...)
	return listed(lo, err, "start")
}

// StableOffsets lists the last stable offset of every partition of topics:
// the end a read-committed consumer can reach (the high watermark when no
// transaction is open).
func StableOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (Offsets, error) {
	lo, err := adm.ListCommittedOffsets(ctx, topics...)
	return listed(lo, err, "end")
}

func listed(lo kadm.ListedOffsets, err error, what string) (Offsets, error) {
	if err != nil {
		return nil, fmt.Errorf("list %s offsets: %w", what, err)
	}
	out := Offsets{}
	var firstErr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s offset of %s/%d: %w", what, o.Topic, o.Partition, o.Err)
			}
			return
		}
		out.Set(o.Topic, o.Partition, o.Offset)
	})
	return out, firstErr
}
