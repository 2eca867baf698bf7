package materializer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// Config configures a region's node state and write path.
type Config struct {
	// Region is this region's name (e.g. "us").
	Region string `help:"Region name." env:"REGION"`
	// InstanceID is this region's instance ID: unique, never reused.
	InstanceID uint32 `help:"Region instance ID (1..)." name:"instance-id" env:"INSTANCE_ID"`
	// Topic is the regions' topic name (default georep.ops); peers' topics
	// are consumed as "<peer>.<topic>" from the local cluster.
	Topic string `help:"Name of every region's topic (the same everywhere)." default:"georep.ops" env:"TOPIC"`
	// Peers are the other regions' names.
	Peers []string `help:"Peer region names." env:"PEERS"`
	// Brokers are the bootstrap servers of the region's own Kafka cluster.
	Brokers []string `help:"Bootstrap servers of the region's Kafka cluster." env:"BROKERS"`
	// DataDir is Badger's directory; empty keeps state in memory.
	DataDir string `help:"State directory (Badger)." name:"data-dir" env:"DATA_DIR"`
	// Partitions of every georep topic (default 8); equal in every region.
	Partitions int32 `help:"Partitions of georep topics (same in every region)." default:"8" env:"PARTITIONS"`
	// WriteTimeout bounds how long a write waits to become durable (default 5s).
	WriteTimeout time.Duration `help:"How long a write may wait for Kafka before failing." default:"5s" name:"write-timeout" env:"WRITE_TIMEOUT"`
	// ClockOffset shifts the region's wall clock (for trying clock skew).
	ClockOffset time.Duration `help:"Shift this region's wall clock (testing skew)." name:"clock-offset" env:"CLOCK_OFFSET"`
	// FetchMaxWait is the consumer's long-poll time (default 100ms).
	FetchMaxWait time.Duration `help:"Kafka fetch long-poll time." default:"100ms" name:"fetch-max-wait" env:"FETCH_MAX_WAIT"`
	// ApplyBatch is the most events applied in one Badger transaction
	// (default 2048).
	ApplyBatch int `help:"Most events per Badger transaction." default:"2048" name:"apply-batch" env:"APPLY_BATCH"`
	// SnapshotDir is where GEOREP SNAPSHOT and periodic snapshots are
	// written (default: "snapshots" in DataDir; none for in-memory state).
	SnapshotDir string `help:"Directory of snapshots written by GEOREP SNAPSHOT and --snapshot-interval (default: <data-dir>/snapshots)." name:"snapshot-dir" env:"SNAPSHOT_DIR"`
	// SnapshotInterval writes a snapshot this often; 0 writes none.
	SnapshotInterval time.Duration `help:"Write a snapshot into the snapshot directory this often (0: never)." name:"snapshot-interval" env:"SNAPSHOT_INTERVAL"`
	// SnapshotKeep is how many of the newest snapshots periodic snapshots
	// keep (default 2); older ones are removed.
	SnapshotKeep int `help:"Snapshots to keep: each periodic snapshot removes all but the newest this many." default:"2" name:"snapshot-keep" env:"SNAPSHOT_KEEP"`
	// StartPaused starts with inbound replication paused (GEOREP RESUME
	// starts it), e.g. to look at a new region before it catches up.
	StartPaused bool `help:"Start with inbound replication paused (GEOREP RESUME starts it)." name:"start-paused" env:"START_PAUSED"`
	// PeerBrokers are the peers' clusters' bootstrap servers, by peer, where
	// known. The node reads each peer's own topic there to learn what the
	// peer has written (GEOREP SYNC, STATUS, a new region's catch-up),
	// whoever mirrors it. The command line fills it from --peer-brokers.
	PeerBrokers map[string][]string `kong:"-"`
	// Changelog publishes every changed key's new visible value to
	// ChangelogTopic in the region's cluster (docs/cdc.md).
	Changelog bool `help:"Publish each changed key's new value to the changelog topic (docs/cdc.md)." env:"CHANGELOG"`
	// ChangelogTopic is the changelog's topic (default georep.changelog).
	ChangelogTopic string `help:"Topic of the changelog in the region's cluster." default:"georep.changelog" name:"changelog-topic" env:"CHANGELOG_TOPIC"`
	// KeyCacheMB is how many MiB of decoded key states each partition's
	// apply worker keeps in memory (0: 4; negative: none).
	KeyCacheMB int `help:"MiB of decoded key states each partition's apply worker keeps in memory (negative: none)." default:"4" name:"key-cache-mb" env:"KEY_CACHE_MB"`
}

// defaultKeyCacheMB is a node's KeyCacheMB when none is given.
const defaultKeyCacheMB = 4

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = oplog.Topic
	}
	if c.Partitions == 0 {
		c.Partitions = oplog.DefaultPartitions
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 100 * time.Millisecond
	}
	if c.ApplyBatch == 0 {
		c.ApplyBatch = 2048
	}
	if c.SnapshotDir == "" && c.DataDir != "" {
		c.SnapshotDir = filepath.Join(c.DataDir, "snapshots")
	}
	if c.SnapshotKeep == 0 {
		c.SnapshotKeep = 2
	}
	if c.ChangelogTopic == "" {
		c.ChangelogTopic = DefaultChangelogTopic
	}
	if c.KeyCacheMB == 0 {
		c.KeyCacheMB = defaultKeyCacheMB
	}
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Region == "":
		return errors.New("materializer: region name is required")
	case c.InstanceID == 0:
		return errors.New("materializer: instance ID must be at least 1")
	case len(c.Brokers) == 0:
		return errors.New("materializer: Kafka bootstrap servers are required")
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("materializer: partitions must be 1..1024, got %d", c.Partitions)
	case c.SnapshotInterval < 0 || c.SnapshotKeep < 1:
		return fmt.Errorf("materializer: snapshot interval must be 0 or more and snapshots kept at least 1, got %s and %d", c.SnapshotInterval, c.SnapshotKeep)
	case c.SnapshotInterval > 0 && c.SnapshotDir == "":
		return errors.New("materializer: periodic snapshots need a snapshot directory (or a data directory)")
	}
	if !validName(c.Region) {
		return fmt.Errorf("materializer: region name %q must be 1-32 letters, digits, '-' or '_'", c.Region)
	}
	for _, p := range c.Peers {
		if p == c.Region || !validName(p) {
			return fmt.Errorf("materializer: bad peer region %q (must differ from the region and be 1-32 letters, digits, '-' or '_')", p)
		}
	}
	return nil
}

// validName reports whether a region name is usable in topic names.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Inbound is replication from one peer into the local cluster (a bridge).
type Inbound interface {
	// Peer is the peer region's name.
	Peer() string
	// Lag returns how many of the peer's events are not yet copied.
	Lag(ctx context.Context) (int64, error)
}

// Node is one region's state: the materializer and the write path.
type Node struct {
	cfg    Config
	log    zerolog.Logger
	origin crdt.ReplicaID

	db   *badger.DB
	prod *kgo.Client
	cons *kgo.Client
	adm  *kadm.Client

	txnMu sync.Mutex
	txn   *kgo.Client // transactional producer for multi-key writes; under txnMu

	inbound []Inbound
	watch   map[string]*peerWatch // by peer, where its cluster is known
	topics  []string              // consumed: own first, then mirrors

	clockMu sync.Mutex
	last    crdt.HLC
	seqMu   sync.Mutex
	seq     uint64

	parts []*partition

	writable    atomic.Bool
	reason      atomic.Value // string
	paused      atomic.Bool
	joining     atomic.Bool // a new region catching up with its peers (join.go)
	bad         atomic.Int64
	applied     atomic.Int64
	badLogged   sync.Map // "list <key>" -> struct{}
	badLogs     sync.Map // topicPartition -> *badLog
	originNames sync.Map // crdt.ReplicaID -> region name, from record headers
	// ownRegion, set by a replay, is the region every record of the own
	// topic must name (replaycheck.go).
	ownRegion string

	ready chan struct{} // closed once caught up and writable

	el     elemNode                  // collection element bookkeeping (elemapply.go)
	lwatch atomic.Pointer[listWatch] // WatchLists callback (lists.go)
	// listSpill, when set (tests), spills a batch's list records above this
	// many entries instead of at Badger's limits (listjournal.go).
	listSpill atomic.Int64

	snapMu chan struct{} // one snapshot written at a time (snapfiles.go)

	cl *changelog // nil unless Config.Changelog (changelog.go)
}

// New opens the node's state and Kafka clients. It starts no goroutine of
// its own; Run does.
func New(cfg Config, log zerolog.Logger, inbound ...Inbound) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With().Str("component", "materializer").Str("region", cfg.Region).Logger()
	n := newNode(cfg, log, inbound)
	n.topics = append(n.topics, cfg.Topic)
	for _, p := range cfg.Peers {
		n.topics = append(n.topics, oplog.MirrorTopic(p, cfg.Topic))
		if brokers := cfg.PeerBrokers[p]; len(brokers) > 0 {
			n.watch[p] = newPeerWatch(p, brokers, cfg.Topic, log)
		}
	}
	db, err := openBadger(cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	n.db = db
	for i := int32(0); i < cfg.Partitions; i++ {
		p := newPartition(i, int64(cfg.KeyCacheMB)<<20)
		n.parts = append(n.parts, p)
	}
	if err := n.loadMarks(); err != nil {
		db.Close()
		return nil, err
	}
	if !cfg.Changelog {
		if err := n.forgetChangelogSeeds(); err != nil {
			db.Close()
			return nil, err
		}
	}
	n.prod, err = kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(cfg.WriteTimeout),
		kgo.RecordDeliveryTimeout(cfg.WriteTimeout),
		kgo.MaxBufferedRecords(100000),
		kgo.WithLogger(oplog.Logger(log)),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	n.adm = kadm.NewClient(n.prod)
	n.cons, err = kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(n.startOffsets()),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(oplog.Logger(log)),
	)
	if err != nil {
		n.prod.Close()
		db.Close()
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	if cfg.StartPaused {
		n.Pause()
	}
	if cfg.Changelog {
		if n.cl, err = newChangelog(n); err != nil {
			n.cons.Close()
			n.prod.Close()
			db.Close()
			return nil, err
		}
	}
	return n, nil
}

// newNode returns a node with no state or clients yet (New and NewReplay
// open them).
func newNode(cfg Config, log zerolog.Logger, inbound []Inbound) *Node {
	n := &Node{
		cfg:     cfg,
		log:     log,
		origin:  crdt.ReplicaID(cfg.InstanceID),
		inbound: inbound,
		watch:   make(map[string]*peerWatch),
		ready:   make(chan struct{}),
		snapMu:  make(chan struct{}, 1),
	}
	n.reason.Store("starting")
	return n
}

func openBadger(dir string, log zerolog.Logger) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithInMemory(dir == "").
		WithLogger(badgerLogger{log.With().Str("component", "badger").Logger()}).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithValueLogFileSize(256 << 20).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithNumCompactors(2).
		WithDetectConflicts(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open state %q: %w", dir, err)
	}
	return db, nil
}

// Origin is the region's instance ID.
func (n *Node) Origin() crdt.ReplicaID { return n.origin }

// Region is the region's name.
func (n *Node) Region() string { return n.cfg.Region }

// Ready is closed once the node has caught up with its own topic and
// accepts writes.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// now is the region's wall clock in ms.
func (n *Node) now() int64 { return time.Now().Add(n.cfg.ClockOffset).UnixMilli() }

// nextHLC stamps a local event.
func (n *Node) nextHLC() crdt.HLC {
	n.clockMu.Lock()
	n.last = crdt.NextHLC(n.last, n.now())
	h := n.last
	n.clockMu.Unlock()
	return h
}

// observeHLC moves the clock past an applied event's stamp, so a write made
// after seeing it is stamped later whatever the wall clocks say.
func (n *Node) observeHLC(h crdt.HLC) {
	n.clockMu.Lock()
	if h > n.last {
		n.last = h
	}
	n.clockMu.Unlock()
}

// Run applies the log until ctx ends. It first catches up with the region's
// own topic, recovering the last sequence number it used, and only then
// accepts writes. It closes the node's clients and state before returning.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range n.parts {
		g.Go(func() error { return n.work(ctx, p) })
	}
	g.Go(func() error { return n.poll(ctx) })
	g.Go(func() error { return n.startup(ctx) })
	g.Go(func() error { return n.reap(ctx) })
	if n.cfg.SnapshotInterval > 0 {
		g.Go(func() error { return n.snapshotLoop(ctx) })
	}
	if n.cl != nil {
		g.Go(func() error { return n.cl.run(ctx) })
	}
	err := g.Wait()
	n.flushBadRecords()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (n *Node) close() {
	n.txnMu.Lock()
	n.resetTxnClient()
	n.txnMu.Unlock()
	n.cons.Close()
	n.prod.Close()
	for _, w := range n.watch {
		w.close()
	}
	if n.cl != nil {
		n.cl.prod.Close()
	}
	if err := n.db.Close(); err != nil {
		n.log.Error().Err(err).Msg("close state")
	}
}

// startup creates the topics, waits until every record the own topic held
// is applied, recovers the sequence counter and opens writes.
func (n *Node) startup(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := n.catchUpOwn(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		n.reason.Store("catching up with its own topic: " + err.Error())
		if attempt%10 == 0 {
			n.log.Warn().Err(err).Msg("not in sync yet; writes are refused until Kafka answers")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	var seq uint64
	for _, p := range n.parts {
		p.mu.Lock()
		if m := p.wm[n.origin]; m.seq > seq {
			seq = m.seq
		}
		p.mu.Unlock()
	}
	n.seqMu.Lock()
	if seq > n.seq {
		n.seq = seq
	}
	n.seqMu.Unlock()
	if seq == 0 && len(n.cfg.Peers) > 0 {
		// Never written: a new region catches up with its peers first
		// (join.go).
		n.reason.Store("catching up with its peers")
		if err := n.catchUpPeers(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
	n.reason.Store("")
	n.writable.Store(true)
	close(n.ready)
	n.log.Info().Uint64("seq", seq).Msg("in sync; accepting writes")
	return nil
}

func (n *Node) catchUpOwn(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := oplog.EnsureTopics(cctx, n.adm, n.cfg.Partitions, n.topics...); err != nil {
		return err
	}
	ends, err := n.endOffsets(cctx, n.cfg.Topic)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, ends)
}

// endOffsets lists the end offset of every partition of the topics.
func (n *Node) endOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	lo, err := n.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[int32]int64)
	var firstErr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("end offset %s/%d: %w", o.Topic, o.Partition, o.Err)
			}
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, firstErr
}

// waitApplied blocks until every listed topic partition is applied up to
// its offset.
func (n *Node) waitApplied(ctx context.Context, ends map[string]map[int32]int64) error {
	for topic, parts := range ends {
		for pi, end := range parts {
			if int(pi) >= len(n.parts) {
				continue
			}
			p := n.parts[pi]
			if err := p.waitPos(ctx, topic, end); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadMarks reads the stored offsets and watermarks into the partitions.
func (n *Node) loadMarks() error {
	return n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixOffset}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			pi := int32(beUint32(k[1:5]))
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if int(pi) < len(n.parts) && len(v) == 8 {
				n.parts[pi].pos[string(k[5:])] = int64(beUint64(v))
			}
		}
		it2 := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixWatermark}})
		defer it2.Close()
		for it2.Rewind(); it2.Valid(); it2.Next() {
			k := it2.Item().Key()
			pi := int32(beUint32(k[1:5]))
			o := crdt.ReplicaID(beUint32(k[5:9]))
			v, err := it2.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if int(pi) < len(n.parts) && len(v) == 16 {
				m := mark{seq: beUint64(v), hlc: crdt.HLC(beUint64(v[8:]))}
				n.parts[pi].wm[o] = m
				n.observeHLC(m.hlc)
			}
		}
		return nil
	})
}

func (n *Node) startOffsets() map[string]map[int32]kgo.Offset {
	out := make(map[string]map[int32]kgo.Offset)
	for _, t := range n.topics {
		out[t] = make(map[int32]kgo.Offset)
		for _, p := range n.parts {
			off := kgo.NewOffset().AtStart()
			if pos, ok := p.pos[t]; ok {
				off = kgo.NewOffset().At(pos)
			}
			out[t][p.id] = off
		}
	}
	return out
}

// WriteTimeout is how long a write may wait to become durable and applied.
func (n *Node) WriteTimeout() time.Duration { return n.cfg.WriteTimeout }
