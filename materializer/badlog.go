package materializer

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BadRecordLogLimit is how many bad records a topic partition logs per
// second, each with its topic, partition and offset; further ones in that
// second are counted and reported by one "... and K more" line.
const BadRecordLogLimit = 10

// badLog rate-limits the bad-record log lines of one topic partition.
type badLog struct {
	mu         sync.Mutex
	window     time.Time // start of the current second
	logged     int       // lines logged in the window
	suppressed int64     // records not logged since the last summary
	first      int64     // offsets of the first and last of them
	last       int64
}

// allow reports whether the bad record at offset, seen at now, is logged,
// and returns the records left unlogged before it (more, from offset first
// to last) when a summary of them is due: at the start of a new second.
func (b *badLog) allow(now time.Time, offset int64) (log bool, more, first, last int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.window.IsZero() || now.Sub(b.window) >= time.Second || now.Before(b.window) {
		more, first, last = b.suppressed, b.first, b.last
		b.window, b.logged, b.suppressed = now, 0, 0
	}
	if b.logged < BadRecordLogLimit {
		b.logged++
		return true, more, first, last
	}
	if b.suppressed == 0 {
		b.first = offset
	}
	b.suppressed++
	b.last = offset
	return false, more, first, last
}

// flush returns and forgets the records left unlogged.
func (b *badLog) flush() (more, first, last int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	more, first, last = b.suppressed, b.first, b.last
	b.suppressed = 0
	return more, first, last
}

// badRecord counts and skips a record that does not decode, logging it
// with its topic, partition and offset, at most BadRecordLogLimit a second
// per topic partition.
func (n *Node) badRecord(r *kgo.Record, err error) {
	n.badRecordAt(time.Now(), r, err)
}

func (n *Node) badRecordAt(now time.Time, r *kgo.Record, err error) {
	n.bad.Add(1)
	id := topicPartition{r.Topic, r.Partition}
	v, ok := n.badLogs.Load(id)
	if !ok {
		v, _ = n.badLogs.LoadOrStore(id, &badLog{})
	}
	log, more, first, last := v.(*badLog).allow(now, r.Offset)
	if more > 0 {
		n.logBadSummary(r.Topic, r.Partition, more, first, last)
	}
	if log {
		n.log.Error().Str("topic", r.Topic).Int32("partition", r.Partition).Int64("offset", r.Offset).
			Err(err).Msg("skipping a record that is not a georep event")
	}
}

// flushBadRecords logs the summary of every topic partition's bad records
// left unlogged.
func (n *Node) flushBadRecords() {
	n.badLogs.Range(func(k, v any) bool {
		if more, first, last := v.(*badLog).flush(); more > 0 {
			id := k.(topicPartition)
			n.logBadSummary(id.topic, id.partition, more, first, last)
		}
		return true
	})
}

func (n *Node) logBadSummary(topic string, partition int32, more, first, last int64) {
	n.log.Error().Str("topic", topic).Int32("partition", partition).Int64("skipped", more).
		Int64("from_offset", first).Int64("to_offset", last).
		Msgf("... and %d more records that are not georep events skipped (offsets %d..%d; rate-limited log)", more, first, last)
}

// topicPartition keys Node.badLogs.
type topicPartition struct {
	topic     string
	partition int32
}
