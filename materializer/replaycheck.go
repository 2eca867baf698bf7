package materializer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// ErrWrongRegion is returned when the region's own topic holds another
// region's events: the brokers are another region's cluster.
var ErrWrongRegion = errors.New("materializer: the own topic holds another region's events")

// RegionError is the ErrWrongRegion of a replay: Topic, the region's own
// topic, holds the events of Found, not of Region.
type RegionError struct {
	Topic  string
	Region string
	Found  []string // sorted
}

func (e *RegionError) Error() string {
	if len(e.Found) == 1 {
		return fmt.Sprintf("materializer: topic %s holds region %s's events, not %s's", e.Topic, e.Found[0], e.Region)
	}
	return fmt.Sprintf("materializer: topic %s holds the events of regions %s, not only %s's", e.Topic, strings.Join(e.Found, ", "), e.Region)
}

// Unwrap returns ErrWrongRegion.
func (e *RegionError) Unwrap() error { return ErrWrongRegion }

// sampleLimit is how many records without georep headers a partition may
// begin with before its sampling gives up.
const sampleLimit = 100

// sample reads the first record carrying the origin headers in every
// non-empty topic partition (from starts up to r.ends) and returns, per
// topic, the regions named and, per origin instance ID, its region name.
func (r *Replay) sample(ctx context.Context, topics []string, starts oplog.Offsets) (map[string]map[string]bool, map[crdt.ReplicaID]string, error) {
	regions := map[string]map[string]bool{}
	names := map[crdt.ReplicaID]string{}
	consume := map[string]map[int32]kgo.Offset{}
	type tp struct {
		t string
		p int32
	}
	left := map[tp]int64{} // partitions still to sample -> records seen
	for _, t := range topics {
		for p, end := range r.ends[t] {
			if start := starts.Get(t, p); start < end {
				if consume[t] == nil {
					consume[t] = map[int32]kgo.Offset{}
				}
				consume[t][p] = kgo.NewOffset().At(start)
				left[tp{t, p}] = 0
			}
		}
	}
	if len(left) == 0 {
		return regions, names, nil
	}
	// Read uncommitted with the control records: every offset comes, so a
	// partition that ends in markers or aborted records still ends.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(1<<20),
		kgo.FetchMaxWait(r.cfg.FetchMaxWait),
		kgo.WithLogger(oplog.Logger(r.log)),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, nil, fmt.Errorf("read %s partition %d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			k := tp{rec.Topic, rec.Partition}
			seen, ok := left[k]
			if !ok {
				return
			}
			if !rec.Attrs.IsControl() {
				if name, origin, ok := originOf(rec); ok {
					if regions[rec.Topic] == nil {
						regions[rec.Topic] = map[string]bool{}
					}
					regions[rec.Topic][name] = true
					if _, dup := names[origin]; !dup {
						names[origin] = name
					}
					delete(left, k)
					return
				}
			}
			if seen+1 >= sampleLimit || rec.Offset+1 >= r.ends.Get(rec.Topic, rec.Partition) {
				delete(left, k)
				return
			}
			left[k] = seen + 1
		})
	}
	return regions, names, nil
}

// originOf returns the region name and instance ID in r's headers.
func originOf(r *kgo.Record) (string, crdt.ReplicaID, bool) {
	var name string
	var origin uint64
	var haveOrigin bool
	for _, h := range r.Headers {
		switch h.Key {
		case oplog.HeaderRegion:
			name = string(h.Value)
		case oplog.HeaderOrigin:
			v, err := strconv.ParseUint(string(h.Value), 10, 32)
			if err != nil {
				return "", 0, false
			}
			origin, haveOrigin = v, true
		}
	}
	return name, crdt.ReplicaID(origin), name != "" && haveOrigin
}

// checkOrigins samples the topics: the own topic must hold only the
// region's events; the origin names found name the result's origins.
func (r *Replay) checkOrigins(ctx context.Context, topics oplog.Topics, starts oplog.Offsets) error {
	regions, names, err := r.sample(ctx, topics.Names(), starts)
	if err != nil {
		return err
	}
	if found := regions[topics.Own]; topics.Own != "" && len(found) > 0 && (len(found) > 1 || !found[r.cfg.Region]) {
		e := &RegionError{Topic: topics.Own, Region: r.cfg.Region}
		for name := range found {
			e.Found = append(e.Found, name)
		}
		sort.Strings(e.Found)
		return e
	}
	for o, name := range names {
		r.n.originNames.LoadOrStore(o, name)
	}
	return nil
}

// checkOwnRecord checks the first own-topic record of origin o in p names
// the replayed region.
func (n *Node) checkOwnRecord(p *partition, o crdt.ReplicaID, r *kgo.Record) error {
	if name := oplog.RegionOf(r); name != "" && name != n.ownRegion {
		found := []string{name, n.ownRegion}
		sort.Strings(found)
		return &RegionError{Topic: r.Topic, Region: n.ownRegion, Found: found}
	}
	if p.ownOrigins == nil {
		p.ownOrigins = map[crdt.ReplicaID]bool{}
	}
	p.ownOrigins[o] = true
	return nil
}
