package materializer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// ReplayConfig configures a Replay.
type ReplayConfig struct {
	// Region is the region whose state is rebuilt.
	Region string
	// Brokers are the bootstrap servers of the region's Kafka cluster.
	Brokers []string
	// DataDir is the state directory to build. It must be empty, hold an
	// unfinished replay's progress, or Force must be set. Empty keeps the
	// state in memory (tests).
	DataDir string
	// Topic is the regions' topic name (default georep.ops).
	Topic string
	// Peers name the peer regions whose mirrored topics are consumed; empty
	// consumes every "<peer>.<topic>" the cluster holds.
	Peers []string
	// Partitions of the topics; 0 takes the topics' count.
	Partitions int32
	// FetchMaxWait is the consumer's long-poll time (default 100ms).
	FetchMaxWait time.Duration
	// ApplyBatch is the most events a partition worker takes at once
	// (default 16384; the apply loop also splits transactions by size).
	// Replay uses bigger batches than a node: fewer commits, and a key
	// written several times in a batch is read and written once.
	ApplyBatch int
	// KeyCacheMB is how many MiB of decoded key states each partition's
	// apply worker keeps (default 32; negative: none): a replay writes
	// each key many times.
	KeyCacheMB int
	// Force replays into a non-empty directory: the state there is kept
	// and the replay continues from its stored offsets.
	Force bool
	// AllowGaps replays even when retention deleted events the state has
	// not applied (the result then lacks them).
	AllowGaps bool
}

func (c *ReplayConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = oplog.Topic
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 100 * time.Millisecond
	}
	if c.ApplyBatch == 0 {
		c.ApplyBatch = 16384
	}
	if c.KeyCacheMB == 0 {
		c.KeyCacheMB = 32
	}
}

// Validate reports a configuration error.
func (c ReplayConfig) Validate() error {
	switch {
	case c.Region == "":
		return errors.New("materializer: region name is required")
	case len(c.Brokers) == 0:
		return errors.New("materializer: Kafka bootstrap servers are required")
	case c.Partitions < 0 || c.Partitions > 1024:
		return fmt.Errorf("materializer: partitions must be 1..1024, got %d", c.Partitions)
	}
	return nil
}

// Replay errors.
var (
	// ErrNotEmpty is returned for a replay into a directory that holds
	// something other than an unfinished replay, without Force.
	ErrNotEmpty = errors.New("materializer: state directory is not empty")
	// ErrReplayMismatch is returned when an unfinished replay in the
	// directory was of another region, topic or partition count.
	ErrReplayMismatch = errors.New("materializer: directory holds another replay")
	// ErrWrongCluster is returned when the brokers are not the region's
	// own cluster.
	ErrWrongCluster = errors.New("materializer: not the region's cluster")
	// ErrLogGap is returned when retention deleted events the state has not
	// applied.
	ErrLogGap = errors.New("materializer: the log no longer holds events the state lacks")
	// ErrAheadOfLog is returned when the state has consumed past a topic's
	// end: it was built from another cluster, or the topic was recreated.
	ErrAheadOfLog = errors.New("materializer: state is ahead of the log")
)

// ReplayMarkerFile is the file in a state directory that says a replay into
// it has not finished; a replay finding it continues.
const ReplayMarkerFile = "georep-replay.json"

type replayMarker struct {
	Region     string    `json:"region"`
	Topic      string    `json:"topic"`
	Partitions int32     `json:"partitions,omitempty"`
	Started    time.Time `json:"started"`
	// Snapshot names the snapshot restored (or being restored) first.
	Snapshot string `json:"snapshot,omitempty"`
	Restored bool   `json:"restored,omitempty"`
}

// Replay rebuilds a region's state from the topics of its Kafka cluster:
// the region's own topic and every mirrored peer topic, each from the offset
// the state has stored (the start for a new state) up to the end offsets
// listed when Run begins. It applies through the node's apply loop (no
// write path, no expiry reaper), so the state it builds is the one a node
// would have built and a node can start on it.
type Replay struct {
	cfg    ReplayConfig
	log    zerolog.Logger
	n      *Node
	marker *replayMarker // nil without a data directory
	// Resumed is set when the directory held an unfinished replay.
	resumed   bool
	forced    bool
	closeOnce sync.Once

	mu      sync.Mutex // guards the progress fields below
	started time.Time
	from    oplog.Offsets // per topic partition, where this run starts
	ends    oplog.Offsets
	applied int64 // n.applied when the run began
	bad     int64
}

// NewReplay checks the state directory and opens it. It starts nothing.
func NewReplay(cfg ReplayConfig, log zerolog.Logger) (*Replay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With().Str("component", "replay").Str("region", cfg.Region).Logger()
	r := &Replay{cfg: cfg, log: log}
	if cfg.DataDir != "" {
		if err := r.prepareDir(); err != nil {
			return nil, err
		}
	}
	db, err := openBadger(cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	mcfg := Config{
		Region:       cfg.Region,
		Brokers:      cfg.Brokers,
		DataDir:      cfg.DataDir,
		Topic:        cfg.Topic,
		Partitions:   cfg.Partitions,
		FetchMaxWait: cfg.FetchMaxWait,
		ApplyBatch:   cfg.ApplyBatch,
		KeyCacheMB:   cfg.KeyCacheMB,
	}
	r.n = newNode(mcfg, log, nil)
	r.n.ownRegion = cfg.Region
	r.n.db = db
	return r, nil
}

// prepareDir decides what the directory holds: nothing (a new replay), an
// unfinished replay (resumed), or anything else (refused unless Force).
func (r *Replay) prepareDir() error {
	dir := r.cfg.DataDir
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	m := &replayMarker{Region: r.cfg.Region, Topic: r.cfg.Topic, Partitions: r.cfg.Partitions, Started: time.Now().UTC()}
	if len(entries) > 0 {
		b, err := os.ReadFile(filepath.Join(dir, ReplayMarkerFile))
		switch {
		case err == nil:
			var old replayMarker
			if err := json.Unmarshal(b, &old); err != nil {
				return fmt.Errorf("read %s: %w", ReplayMarkerFile, err)
			}
			if old.Region != r.cfg.Region || old.Topic != r.cfg.Topic ||
				(r.cfg.Partitions != 0 && old.Partitions != 0 && old.Partitions != r.cfg.Partitions) {
				return fmt.Errorf("%w: %q holds an unfinished replay of region %s, topic %s, %d partitions", ErrReplayMismatch, dir, old.Region, old.Topic, old.Partitions)
			}
			m = &old
			r.resumed = true
		case !errors.Is(err, os.ErrNotExist):
			return err
		case !r.cfg.Force:
			return fmt.Errorf("%w: %q (replay builds a new state; give an empty directory, or force to continue from the state there)", ErrNotEmpty, dir)
		default:
			r.forced = true
		}
	}
	r.marker = m
	return r.saveMarker()
}

func (r *Replay) saveMarker() error {
	if r.marker == nil {
		return nil
	}
	b, err := json.MarshalIndent(r.marker, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(r.cfg.DataDir, ReplayMarkerFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Resumed reports whether the directory held an unfinished replay that this
// one continues.
func (r *Replay) Resumed() bool { return r.resumed }

// Restore loads a snapshot (rd, named name) into the new state before Run.
// In a resumed replay that already restored it, it does nothing and reports
// false. A snapshot restores only into a new state.
func (r *Replay) Restore(ctx context.Context, rd io.Reader, name string) (SnapshotHeader, bool, error) {
	m := r.marker
	if m == nil {
		m = &replayMarker{} // in memory
	}
	switch {
	case m.Restored && m.Snapshot == name:
		return SnapshotHeader{}, false, nil
	case m.Restored || (r.resumed && m.Snapshot == "") || r.forced:
		return SnapshotHeader{}, false, fmt.Errorf("%w: a snapshot restores only into an empty directory, %q already holds state", ErrNotEmpty, r.cfg.DataDir)
	}
	br := bufio.NewReaderSize(rd, 1<<16)
	hdr, err := ReadSnapshotHeader(br)
	if err != nil {
		return hdr, false, err
	}
	if err := r.checkSnapshot(hdr); err != nil {
		return hdr, false, err
	}
	m.Snapshot, m.Restored = name, false
	if m.Partitions == 0 {
		m.Partitions = hdr.Partitions
	}
	if err := r.saveMarker(); err != nil {
		return hdr, false, err
	}
	// An interrupted restore left part of the entries: start it over.
	if err := r.n.db.DropAll(); err != nil {
		return hdr, false, fmt.Errorf("clear state: %w", err)
	}
	st, err := loadSnapshot(ctx, r.n.db, br)
	if err != nil {
		return hdr, false, err
	}
	m.Restored = true
	if err := r.saveMarker(); err != nil {
		return hdr, false, err
	}
	for o, name := range hdr.Origins {
		r.n.originNames.LoadOrStore(o, name)
	}
	r.log.Debug().Str("snapshot", name).Int64("keys", st.Keys).Msg("snapshot restored")
	return hdr, true, nil
}

func (r *Replay) checkSnapshot(h SnapshotHeader) error {
	switch {
	case h.Region != "" && h.Region != r.cfg.Region:
		return fmt.Errorf("%w: it is region %s's state, not %s's", ErrSnapshotMismatch, h.Region, r.cfg.Region)
	case h.Topic != r.cfg.Topic:
		return fmt.Errorf("%w: topic %s, not %s", ErrSnapshotMismatch, h.Topic, r.cfg.Topic)
	case r.cfg.Partitions != 0 && h.Partitions != r.cfg.Partitions:
		return fmt.Errorf("%w: %d partitions, not %d", ErrSnapshotMismatch, h.Partitions, r.cfg.Partitions)
	case r.marker != nil && r.marker.Partitions != 0 && h.Partitions != r.marker.Partitions:
		return fmt.Errorf("%w: %d partitions, not %d", ErrSnapshotMismatch, h.Partitions, r.marker.Partitions)
	}
	if _, ok := h.Offsets[oplog.MirrorTopic(r.cfg.Region, r.cfg.Topic)]; ok {
		return fmt.Errorf("%w: it consumed %s, so it is another region's state", ErrSnapshotMismatch, oplog.MirrorTopic(r.cfg.Region, r.cfg.Topic))
	}
	return nil
}

// ReplayProgress is how far a replay's run has come.
type ReplayProgress struct {
	// Events counts the events applied in this run (duplicates excluded).
	Events int64
	// Read counts the records consumed in this run (events, duplicates,
	// bad records and transaction markers).
	Read int64
	// Remaining counts the records left up to the end offsets.
	Remaining int64
	// Total is Read + Remaining when the run began.
	Total int64
	// BadRecords counts records skipped because they are not georep events.
	BadRecords int64
	// Elapsed is the run's time so far.
	Elapsed time.Duration
}

// Progress reports the run's progress; it may be called from any
// goroutine, before (zero), during and after Run.
func (r *Replay) Progress() ReplayProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.from == nil {
		return ReplayProgress{}
	}
	pr := ReplayProgress{
		Events:     r.n.applied.Load() - r.applied,
		BadRecords: r.n.bad.Load() - r.bad,
		Elapsed:    time.Since(r.started),
	}
	pos := r.n.positions()
	for t, parts := range r.ends {
		for p, end := range parts {
			from := r.from.Get(t, p)
			cur := max(pos.Get(t, p), from)
			pr.Total += max(0, end-from)
			pr.Remaining += max(0, end-cur)
			pr.Read += cur - from
		}
	}
	return pr
}

// ReplayTopic is one consumed topic in a replay's result.
type ReplayTopic struct {
	Name       string
	Peer       string // "" for the region's own topic
	Partitions int32
	Read       int64 // records consumed in this run
	End        int64 // sum of the end offsets
}

// ReplayResult is what a replay's run did.
type ReplayResult struct {
	ReplayProgress
	// Complete is set when every partition reached its end offset.
	Complete bool
	// Resumed is set when the run continued an unfinished replay.
	Resumed bool
	// Partitions of the topics.
	Partitions int32
	Topics     []ReplayTopic
	// Applied is, per origin, the greatest sequence applied (over every
	// partition, this run and earlier ones).
	Applied crdt.Clock
	// Origins names the origin instance IDs seen in this run.
	Origins map[crdt.ReplicaID]string
	// Gaps lists the partitions whose first events retention deleted
	// (AllowGaps).
	Gaps []string
}

// Run consumes until every topic partition reaches the end offset listed
// when it began, or ctx ends (the result is then not Complete and the error
// is ctx's; a later replay into the same directory continues). It returns
// after all its goroutines have exited; the state stays open until Close.
func (r *Replay) Run(ctx context.Context) (ReplayResult, error) {
	res := ReplayResult{Resumed: r.resumed}
	if m := r.marker; m != nil && m.Snapshot != "" && !m.Restored {
		return res, fmt.Errorf("materializer: the restore of snapshot %s into %q did not finish; give the snapshot again", m.Snapshot, r.cfg.DataDir)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.cfg.Brokers...), kgo.WithLogger(oplog.Logger(r.log)))
	if err != nil {
		return res, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := r.topics(ctx, adm)
	if err != nil {
		return res, err
	}
	n := r.n
	n.cfg.Partitions = r.cfg.Partitions
	n.topics = topics.Names()
	res.Partitions = r.cfg.Partitions
	for i := int32(0); i < r.cfg.Partitions; i++ {
		p := newPartition(i, int64(r.cfg.KeyCacheMB)<<20)
		n.parts = append(n.parts, p)
	}
	if err := r.checkStoredPartitions(); err != nil {
		return res, err
	}
	if err := n.loadMarks(); err != nil {
		return res, err
	}
	if empty, err := r.stateEmpty(); err != nil {
		return res, err
	} else if empty {
		// Until a cache forgets a key, a key it does not hold is absent:
		// first writes need no read.
		for _, p := range n.parts {
			p.cache.setComplete()
		}
	}
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	starts, err := oplog.StartOffsets(mctx, adm, n.topics...)
	if err == nil {
		r.ends, err = oplog.StableOffsets(mctx, adm, n.topics...)
	}
	cancel()
	if err != nil {
		return res, err
	}
	if err := r.checkOrigins(ctx, topics, starts); err != nil {
		return res, err
	}
	from, gaps, err := r.startPositions(starts)
	if err != nil {
		return res, err
	}
	res.Gaps = gaps
	n.cons, err = kgo.NewClient(
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumePartitions(n.startOffsets()),
		kgo.FetchMaxWait(r.cfg.FetchMaxWait),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(oplog.Logger(r.log)),
	)
	if err != nil {
		return res, fmt.Errorf("kafka consumer: %w", err)
	}
	defer n.cons.Close()

	r.mu.Lock()
	r.from, r.started = from, time.Now()
	r.applied, r.bad = n.applied.Load(), n.bad.Load()
	r.mu.Unlock()

	caughtUp := false
	g, gctx := errgroup.WithContext(ctx)
	runCtx, stop := context.WithCancel(gctx)
	defer stop()
	for _, p := range n.parts {
		g.Go(func() error { return n.work(runCtx, p) })
	}
	g.Go(func() error { return n.poll(runCtx) })
	g.Go(func() error {
		defer stop()
		if n.waitApplied(runCtx, r.ends) == nil {
			caughtUp = true
		}
		return nil
	})
	err = g.Wait()
	n.flushBadRecords()

	res.ReplayProgress = r.Progress()
	res.Complete = caughtUp && err == nil
	res.Topics = r.topicResults(topics)
	res.Applied = n.appliedClock()
	res.Origins = map[crdt.ReplicaID]string{}
	n.originNames.Range(func(k, v any) bool {
		res.Origins[k.(crdt.ReplicaID)] = v.(string)
		return true
	})
	if err != nil {
		return res, err
	}
	if !res.Complete {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		return res, errors.New("replay stopped before catching up")
	}
	if r.marker != nil {
		if err := os.Remove(filepath.Join(r.cfg.DataDir, ReplayMarkerFile)); err != nil {
			return res, err
		}
		r.marker = nil
	}
	return res, nil
}

// topics lists the topics to consume and settles the partition count.
func (r *Replay) topics(ctx context.Context, adm *kadm.Client) (oplog.Topics, error) {
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := oplog.ListTopics(mctx, adm, r.cfg.Topic, r.cfg.Peers)
	if err != nil {
		return topics, err
	}
	if t, ok := topics.Mirrors[r.cfg.Region]; ok {
		return topics, fmt.Errorf("%w: it holds %s, the mirror of region %s's topic; give the brokers of %s's own cluster", ErrWrongCluster, t, r.cfg.Region, r.cfg.Region)
	}
	names := topics.Names()
	if len(names) == 0 {
		return topics, fmt.Errorf("%w: the cluster holds no %s topic and no mirror of one", oplog.ErrNoTopic, r.cfg.Topic)
	}
	if topics.Own == "" {
		r.log.Warn().Str("topic", r.cfg.Topic).Msg("the cluster has no own topic: the region never wrote, or these are not its brokers")
	}
	want := r.cfg.Partitions
	if want == 0 && r.marker != nil {
		want = r.marker.Partitions
	}
	for _, t := range names {
		n := topics.Partitions[t]
		if want == 0 {
			want = n
		}
		if n != want {
			return topics, fmt.Errorf("topic %s has %d partitions, expected %d: every georep topic must have the same count", t, n, want)
		}
	}
	r.cfg.Partitions = want
	if r.marker != nil && r.marker.Partitions != want {
		r.marker.Partitions = want
		if err := r.saveMarker(); err != nil {
			return topics, err
		}
	}
	return topics, nil
}

// checkStoredPartitions refuses a state whose stored offsets name
// partitions the topics do not have.
func (r *Replay) checkStoredPartitions() error {
	txn := r.n.db.NewTransaction(false)
	defer txn.Discard()
	pos, err := readPositions(txn)
	if err != nil {
		return err
	}
	for t, parts := range pos {
		for p := range parts {
			if p >= r.cfg.Partitions {
				return fmt.Errorf("%w: the state has consumed %s partition %d, the topics have %d partitions", ErrReplayMismatch, t, p, r.cfg.Partitions)
			}
		}
	}
	return nil
}

// stateEmpty reports whether the state holds no key and no offset.
func (r *Replay) stateEmpty() (bool, error) {
	txn := r.n.db.NewTransaction(false)
	defer txn.Discard()
	for _, prefix := range []byte{prefixMeta, prefixOffset} {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		it.Rewind()
		found := it.Valid()
		it.Close()
		if found {
			return false, nil
		}
	}
	return true, nil
}

// startPositions checks the stored positions against the log and returns
// where the run starts in every topic partition.
func (r *Replay) startPositions(starts oplog.Offsets) (oplog.Offsets, []string, error) {
	pos := r.n.positions()
	from := oplog.Offsets{}
	var gaps []string
	for t, parts := range r.ends {
		for p, end := range parts {
			cur, start := pos.Get(t, p), starts.Get(t, p)
			if cur > end {
				return nil, nil, fmt.Errorf("%w: %s partition %d is consumed up to offset %d, the topic ends at %d (state from another cluster, or the topic was recreated)", ErrAheadOfLog, t, p, cur, end)
			}
			if cur < start {
				gap := fmt.Sprintf("%s/%d: offsets %d..%d deleted", t, p, cur, start-1)
				if !r.cfg.AllowGaps {
					return nil, nil, fmt.Errorf("%w: %s; restore a snapshot that covers them, or allow gaps", ErrLogGap, gap)
				}
				gaps = append(gaps, gap)
				r.log.Warn().Str("topic", t).Int32("partition", p).Int64("from", cur).Int64("to", start).Msg("events deleted by retention are missing from the state")
				cur = start
			}
			from.Set(t, p, cur)
		}
	}
	sort.Strings(gaps)
	return from, gaps, nil
}

func (r *Replay) topicResults(topics oplog.Topics) []ReplayTopic {
	pos := r.n.positions()
	var out []ReplayTopic
	for _, name := range topics.Names() {
		rt := ReplayTopic{Name: name, Partitions: topics.Partitions[name]}
		for peer, t := range topics.Mirrors {
			if t == name {
				rt.Peer = peer
			}
		}
		for p, end := range r.ends[name] {
			rt.End += end
			from := r.from.Get(name, p)
			rt.Read += max(pos.Get(name, p), from) - from
		}
		out = append(out, rt)
	}
	return out
}

// Close closes the state; later calls do nothing.
func (r *Replay) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.n.db.Close() })
	return err
}

// positions returns every partition's applied position per topic.
func (n *Node) positions() oplog.Offsets {
	out := oplog.Offsets{}
	for _, p := range n.parts {
		p.mu.Lock()
		for t, off := range p.pos {
			out.Set(t, p.id, off)
		}
		p.mu.Unlock()
	}
	return out
}

// appliedClock returns, per origin, the greatest sequence applied in any
// partition.
func (n *Node) appliedClock() crdt.Clock {
	var c crdt.Clock
	for _, p := range n.parts {
		p.mu.Lock()
		for o, m := range p.wm {
			c = c.With(o, m.seq)
		}
		p.mu.Unlock()
	}
	return c
}
