package oplog

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
)

// Topic is the default name of every region's own topic. A deployment may
// choose another (Config.Topic), the same in every region, e.g. to run
// several georep deployments on shared Kafka clusters.
const Topic = "georep.ops"

// MirrorTopic is the name of region's topic as mirrored into another
// region's cluster (MirrorMaker 2's DefaultReplicationPolicy naming).
func MirrorTopic(region, topic string) string { return region + "." + topic }

// Header names.
const (
	HeaderSchema = "georep-schema"
	HeaderOrigin = "georep-origin"
	HeaderRegion = "georep-region"
)

// NewRecord returns the record for ev, produced by region into topic, which
// has partitions partitions.
func NewRecord(region, topic string, ev *crdt.Event, partitions int32) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Key:       ev.Key,
		Value:     Encode(ev),
		Partition: Partition(ev.Key, partitions),
		Headers: []kgo.RecordHeader{
			{Key: HeaderSchema, Value: []byte(SchemaVersion)},
			{Key: HeaderOrigin, Value: strconv.AppendUint(nil, uint64(ev.Dot.Origin), 10)},
			{Key: HeaderRegion, Value: []byte(region)},
		},
	}
}

// ParseRecord decodes r's event. It checks the schema header and that the
// record key matches the event's key.
func ParseRecord(r *kgo.Record) (*crdt.Event, error) {
	for _, h := range r.Headers {
		if h.Key == HeaderSchema && string(h.Value) != SchemaVersion {
			return nil, fmt.Errorf("%w: schema version %q", ErrBadRecord, h.Value)
		}
	}
	ev, err := Decode(r.Value)
	if err != nil {
		return nil, err
	}
	if string(ev.Key) != string(r.Key) {
		return nil, fmt.Errorf("%w: record key does not match event key", ErrBadRecord)
	}
	return ev, nil
}

// RegionOf returns the georep-region header of r, "" if none.
func RegionOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderRegion {
			return string(h.Value)
		}
	}
	return ""
}
