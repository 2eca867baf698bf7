package materializer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// The changelog (docs/cdc.md) publishes, for every key an applied event
// changed, the key's new visible value to a topic of the region's cluster.
//
// Crash safety: the apply transaction that changes a key also writes the
// key's dirty mark,
//
//	'd' slot(2) rediskey -> version(1) flags(1) origin(4) seq(8) hlc(8)
//	                        partition(4) offset(8) topic
//
// naming the last event that changed it (the record's source). The
// changelog goroutine reads marks and the values they point at from one
// snapshot, produces the records (idempotent producer, acks=all), and once
// Kafka acknowledged them deletes each mark unless an apply rewrote it
// meanwhile. A crash anywhere leaves the mark, so the change is published
// again after the restart (at least once). The partition's changelog lock
// orders an apply's commit against the check-and-delete of a mark of the
// same partition (Badger runs without conflict detection).
const prefixChangelog = 'd'

// DefaultChangelogTopic is the changelog topic's default name.
const DefaultChangelogTopic = "georep.changelog"

// Limits of one changelog record (docs/cdc.md): a collection with more
// elements, or a value whose JSON is larger, is published truncated (op
// "u", after null, truncated true). Kafka's default record limit is 1 MB.
const (
	changelogMaxElems = 100_000
	changelogMaxBytes = 900 << 10
)

// A changelog round reads at most this many marks (and this many bytes of
// record values) before producing them.
const (
	changelogLinger     = 10 * time.Millisecond // least pause between caught-up rounds
	changelogRoundKeys  = 512
	changelogRoundBytes = 8 << 20
)

const (
	markVersion     = 1
	markFlagExisted = 1 // the key was visible before its first unpublished change
)

func changelogKey(key []byte) []byte {
	b := make([]byte, 0, 3+len(key))
	b = append(b, prefixChangelog)
	b = binary.BigEndian.AppendUint16(b, oplog.HashSlot(key))
	return append(b, key...)
}

// clSource is the event a changelog record reports as its source.
type clSource struct {
	origin    crdt.ReplicaID
	seq       uint64
	hlc       crdt.HLC
	topic     string
	partition int32
	offset    int64
}

// clMark is a decoded dirty mark.
type clMark struct {
	existed  bool
	snapshot bool // of the initial snapshot (changelog_seed.go), not of a change
	src      clSource
}

func (m clMark) marshal() []byte {
	b := make([]byte, 0, 34+len(m.src.topic))
	var flags byte
	if m.existed {
		flags |= markFlagExisted
	}
	if m.snapshot {
		flags |= markFlagSnapshot
	}
	b = append(b, markVersion, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(m.src.origin))
	b = binary.BigEndian.AppendUint64(b, m.src.seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.src.hlc))
	b = binary.BigEndian.AppendUint32(b, uint32(m.src.partition))
	b = binary.BigEndian.AppendUint64(b, uint64(m.src.offset))
	return append(b, m.src.topic...)
}

func unmarshalMark(v []byte) (clMark, error) {
	if len(v) < 34 || v[0] != markVersion {
		return clMark{}, errors.New("materializer: bad changelog mark")
	}
	return clMark{
		existed:  v[1]&markFlagExisted != 0,
		snapshot: v[1]&markFlagSnapshot != 0,
		src: clSource{
			origin:    crdt.ReplicaID(beUint32(v[2:6])),
			seq:       beUint64(v[6:14]),
			hlc:       crdt.HLC(beUint64(v[14:22])),
			partition: int32(beUint32(v[22:26])),
			offset:    int64(beUint64(v[26:34])),
			topic:     string(v[34:]),
		},
	}, nil
}

// changelog is the node's changelog publisher; nil when the option is off.
type changelog struct {
	n     *Node
	topic string
	prod  *kgo.Client
	adm   *kadm.Client
	locks []sync.Mutex // per partition index: an apply's commit vs a mark's removal
	kick  chan struct{}

	maxElems int // changelogMaxElems; tests lower them
	maxBytes int // changelogMaxBytes

	published atomic.Int64 // records acknowledged by Kafka (tombstones included)
	truncated atomic.Int64 // records published without their value (too large)
	marks     atomic.Int64 // dirty marks found by the last round (0: caught up)
}

// newChangelog opens the changelog's producer (it connects lazily).
func newChangelog(n *Node) (*changelog, error) {
	c := &changelog{
		n:     n,
		topic: n.cfg.ChangelogTopic,
		locks: make([]sync.Mutex, n.cfg.Partitions),
		kick:  make(chan struct{}, 1),

		maxElems: changelogMaxElems,
		maxBytes: changelogMaxBytes,
	}
	var err error
	c.prod, err = kgo.NewClient(
		kgo.SeedBrokers(n.cfg.Brokers...),
		kgo.DefaultProduceTopic(c.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.WithLogger(oplog.Logger(n.log.With().Str("component", "changelog").Logger())),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka changelog producer: %w", err)
	}
	c.adm = kadm.NewClient(c.prod)
	return c, nil
}

// clBatch collects the keys one apply batch changes. Its methods do
// nothing on a nil receiver (the changelog is off).
type clBatch struct {
	c     *changelog
	part  int32
	now   int64
	marks map[string]*clMark // key -> its mark; src.seq 0 while unchanged
}

// changelogBatch starts the changelog bookkeeping of an apply batch of
// partition p; nil when the changelog is off.
func (n *Node) changelogBatch(p *partition) *clBatch {
	if n.cl == nil {
		return nil
	}
	return &clBatch{c: n.cl, part: p.id, now: n.now(), marks: make(map[string]*clMark)}
}

// before notes whether l's key is visible before the batch changes it;
// call it before applying each event.
func (b *clBatch) before(l *loaded) {
	if b == nil {
		return
	}
	if _, ok := b.marks[string(l.key)]; !ok {
		b.marks[string(l.key)] = &clMark{existed: l.k.Type(b.now) != crdt.TypeNone}
	}
}

// note records that the event of r changed key.
func (b *clBatch) note(key []byte, r *kgo.Record, ev *crdt.Event) {
	if b == nil {
		return
	}
	m := b.marks[string(key)]
	if m == nil {
		m = &clMark{}
		b.marks[string(key)] = m
	}
	m.src = clSource{origin: ev.Dot.Origin, seq: ev.Dot.Seq, hlc: ev.HLC, topic: r.Topic, partition: r.Partition, offset: r.Offset}
}

// entries is how many Badger entries write adds to the transaction.
func (b *clBatch) entries() int {
	if b == nil {
		return 0
	}
	return len(b.marks)
}

// write stores the marks of the changed keys in txn. A key that already
// has a mark (not yet published) keeps its existed flag.
func (b *clBatch) write(txn *badger.Txn) error {
	if b == nil {
		return nil
	}
	for key, m := range b.marks {
		if m.src.seq == 0 {
			continue
		}
		mk := changelogKey([]byte(key))
		item, err := txn.Get(mk)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read changelog mark of %q: %w", key, err)
		default:
			if err := item.Value(func(v []byte) error {
				old, err := unmarshalMark(v)
				if err == nil {
					m.existed = old.existed
				}
				return nil
			}); err != nil {
				return fmt.Errorf("read changelog mark of %q: %w", key, err)
			}
		}
		if err := txn.Set(mk, m.marshal()); err != nil {
			return err
		}
	}
	return nil
}

// commit commits txn under the partition's changelog lock.
func (b *clBatch) commit(txn *badger.Txn) error {
	if b == nil {
		return txn.Commit()
	}
	mu := &b.c.locks[b.part]
	mu.Lock()
	defer mu.Unlock()
	return txn.Commit()
}

// done wakes the publisher after a commit that wrote marks.
func (b *clBatch) done() {
	if b == nil {
		return
	}
	for _, m := range b.marks {
		if m.src.seq != 0 {
			select {
			case b.c.kick <- struct{}{}:
			default:
			}
			return
		}
	}
}

// clItem is one mark read by a round: its records and how to retire it.
type clItem struct {
	markKey []byte
	mark    []byte // the mark's value as read: removed only if still equal
	recs    []*kgo.Record
}

// run publishes marks until ctx ends. Kafka trouble is logged and retried;
// it never stops the node.
func (c *changelog) run(ctx context.Context) error {
	log := c.n.log.With().Str("component", "changelog").Str("topic", c.topic).Logger()
	backoff := func(attempt int) time.Duration {
		return min(250*time.Millisecond<<min(attempt, 5), 5*time.Second)
	}
	for attempt := 0; ; attempt++ {
		err := c.ensureTopic(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt%10 == 0 {
			log.Warn().Err(err).Msg("cannot create the changelog topic yet; changes are kept and published once Kafka answers")
		}
		if !sleepCtx(ctx, backoff(attempt)) {
			return nil
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.seed(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Error().Err(err).Msg("marking the state for the changelog's initial snapshot; retrying")
		if !sleepCtx(ctx, backoff(attempt)) {
			return nil
		}
	}
	var cursor []byte
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failures := 0
	for {
		start := time.Now()
		items, next, err := c.collect(cursor)
		if err == nil && len(items) > 0 {
			err = c.publish(ctx, items)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if failures%10 == 0 {
				log.Warn().Err(err).Msg("publishing changes; retrying (they stay marked until Kafka acknowledges them)")
			}
			failures++
			if !sleepCtx(ctx, backoff(failures)) {
				return nil
			}
			continue
		}
		if failures > 0 {
			log.Info().Msg("publishing changes again")
			failures = 0
		}
		cursor = next
		if cursor != nil {
			continue // more marks after this round's
		}
		if len(items) > 0 {
			// Caught up, but marks may have been written during the
			// round. Before the next one, let changes coalesce for about
			// as long as this round took (10 ms at least): a hot key with
			// a large value is then re-read at most about half the time.
			if !sleepCtx(ctx, max(time.Since(start), changelogLinger)) {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-tick.C:
		}
	}
}

// sleepCtx waits d and reports true, or false as soon as ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ensureTopic creates the changelog topic (compacted, partitioned like the
// regional topic) unless it exists, and checks its partition count.
func (c *changelog) ensureTopic(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	compact := "compact"
	return oplog.EnsureTopicsWith(cctx, c.adm, c.n.cfg.Partitions, map[string]*string{"cleanup.policy": &compact}, c.topic)
}

// collect reads up to a round's worth of marks at or after cursor, and
// for each the records to publish, all from one snapshot. next is where
// the following round starts, nil after the last mark.
func (c *changelog) collect(cursor []byte) (items []clItem, next []byte, err error) {
	n := c.n
	var size int
	err = n.db.View(func(txn *badger.Txn) error {
		s := &Snapshot{txn: txn, now: n.now(), rd: elemReader{txn: txn}}
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte{prefixChangelog}})
		defer it.Close()
		start := []byte{prefixChangelog}
		if cursor != nil {
			start = cursor
		}
		journaled := journaledParts(txn)
		var total int64
		for it.Seek(start); it.Valid(); it.Next() {
			if len(items) >= changelogRoundKeys || size >= changelogRoundBytes {
				next = it.Item().KeyCopy(nil)
				break
			}
			total++
			mk := it.Item().KeyCopy(nil)
			if len(mk) >= 3 && journaled[oplog.PartitionOfSlot(binary.BigEndian.Uint16(mk[1:3]), n.cfg.Partitions)] {
				continue // lists half written (listjournal.go): next round
			}
			mv, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			item := clItem{markKey: mk, mark: mv}
			m, err := unmarshalMark(mv)
			if err == nil && len(mk) < 3 {
				err = errors.New("materializer: changelog mark without a key")
			}
			if err != nil {
				// Not a mark this build wrote: drop it rather than loop on it.
				n.log.Error().Bytes("mark", mk).Err(err).Msg("dropping an unreadable changelog mark")
				items = append(items, item)
				continue
			}
			recs, err := c.records(s, mk[3:], m)
			if err != nil {
				return err
			}
			for _, r := range recs {
				size += len(r.Key) + len(r.Value)
			}
			item.recs = recs
			items = append(items, item)
		}
		c.marks.Store(total)
		return nil
	})
	return items, next, err
}

// journaledParts returns the partitions whose list journal is not written
// out yet in txn's snapshot: a big list write committed its key states
// while its list records were still being written, so the snapshot may
// show such a list half written. The partition's worker kicks the
// publisher again once the journal is done.
func journaledParts(txn *badger.Txn) map[int32]bool {
	var out map[int32]bool
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixListJournal}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) < 5 {
			continue
		}
		if out == nil {
			out = make(map[int32]bool)
		}
		out[int32(binary.BigEndian.Uint32(k[1:5]))] = true
	}
	return out
}

// publish produces the items' records and retires the marks of those Kafka
// acknowledged. It returns the first produce error.
func (c *changelog) publish(ctx context.Context, items []clItem) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	failed := make([]bool, len(items))
	for i := range items {
		for _, r := range items[i].recs {
			wg.Add(1)
			c.prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					c.published.Add(1)
					return
				}
				mu.Lock()
				failed[i] = true
				if firstErr == nil {
					firstErr = fmt.Errorf("produce to %s: %w", c.topic, err)
				}
				mu.Unlock()
			})
		}
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return ctx.Err() // the producer's Close fails what is left
	}
	byPart := make(map[int32][]clItem)
	for i, it := range items {
		if failed[i] {
			continue
		}
		var pi int32
		if len(it.markKey) >= 3 {
			pi = oplog.PartitionOfSlot(binary.BigEndian.Uint16(it.markKey[1:3]), c.n.cfg.Partitions)
		}
		byPart[pi] = append(byPart[pi], it)
	}
	for pi, its := range byPart {
		if err := c.retire(pi, its); err != nil {
			return err
		}
	}
	return firstErr
}

// retire deletes the marks of published items that no apply has rewritten
// since they were read.
func (c *changelog) retire(pi int32, items []clItem) error {
	mu := &c.locks[pi]
	mu.Lock()
	defer mu.Unlock()
	txn := c.n.db.NewTransaction(true)
	defer txn.Discard()
	for _, it := range items {
		item, err := txn.Get(it.markKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		same := false
		if err := item.Value(func(v []byte) error { same = bytes.Equal(v, it.mark); return nil }); err != nil {
			return err
		}
		if !same {
			continue // changed again: the next round publishes the newer value
		}
		if err := txn.Delete(it.markKey); err != nil {
			return err
		}
	}
	return txn.Commit()
}

// ChangelogStats reports the changelog publisher's counters.
type ChangelogStats struct {
	// Enabled is whether the node publishes a changelog.
	Enabled bool
	// Topic is the changelog topic.
	Topic string
	// Published counts records Kafka acknowledged since the start.
	Published int64
	// Truncated counts records published without their value.
	Truncated int64
	// Pending is the number of changed keys the publisher's last round
	// found unpublished (at most a round's worth; 0: it had caught up).
	Pending int64
}

// ChangelogStats returns the changelog publisher's counters.
func (n *Node) ChangelogStats() ChangelogStats {
	if n.cl == nil {
		return ChangelogStats{}
	}
	return ChangelogStats{
		Enabled:   true,
		Topic:     n.cl.topic,
		Published: n.cl.published.Load(),
		Truncated: n.cl.truncated.Load(),
		Pending:   n.cl.marks.Load(),
	}
}
