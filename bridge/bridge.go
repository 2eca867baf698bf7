package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/oplog"
)

// HeaderSourceOffset is the header carrying a mirrored record's offset in
// the peer's topic.
const HeaderSourceOffset = "georep-src-offset"

// Config configures one bridge.
type Config struct {
	// Peer is the region whose topic is copied.
	Peer string `help:"Peer region whose topic is mirrored." env:"PEER"`
	// SourceBrokers are the peer cluster's bootstrap servers.
	SourceBrokers []string `help:"Bootstrap servers of the peer's Kafka cluster." name:"source-brokers" env:"SOURCE_BROKERS"`
	// TargetBrokers are the local cluster's bootstrap servers.
	TargetBrokers []string `help:"Bootstrap servers of the local Kafka cluster." name:"target-brokers" env:"TARGET_BROKERS"`
	// Topic is the regions' topic name (default georep.ops).
	Topic string `help:"Name of the regions' topic." default:"georep.ops" env:"TOPIC"`
	// Partitions of the topics (default 8).
	Partitions int32 `help:"Partitions of georep topics." default:"8" env:"PARTITIONS"`
	// FetchMaxWait is the source consumer's long-poll (default 100ms).
	FetchMaxWait time.Duration `help:"Fetch long-poll time." default:"100ms" name:"fetch-max-wait" env:"FETCH_MAX_WAIT"`
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	switch {
	case c.Peer == "":
		return errors.New("bridge: peer region is required")
	case len(c.SourceBrokers) == 0:
		return errors.New("bridge: source (peer) brokers are required")
	case len(c.TargetBrokers) == 0:
		return errors.New("bridge: target (local) brokers are required")
	}
	return nil
}

// Bridge copies one peer's topic into the local cluster.
type Bridge struct {
	cfg Config
	log zerolog.Logger

	admMu sync.Mutex
	admCl *kgo.Client // peer cluster, for end offsets; under admMu
	adm   *kadm.Client

	mu      sync.Mutex
	changed *sync.Cond
	pos     map[int32]int64 // next source offset not yet durably copied
	started bool
}

// New returns a bridge; Run starts it.
func New(cfg Config, log zerolog.Logger) (*Bridge, error) {
	if cfg.Topic == "" {
		cfg.Topic = oplog.Topic
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = oplog.DefaultPartitions
	}
	if cfg.FetchMaxWait == 0 {
		cfg.FetchMaxWait = 100 * time.Millisecond
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, log: log.With().Str("component", "bridge").Str("peer", cfg.Peer).Logger(), pos: make(map[int32]int64)}
	b.changed = sync.NewCond(&b.mu)
	return b, nil
}

// Peer is the mirrored region.
func (b *Bridge) Peer() string { return b.cfg.Peer }

// Run copies records until ctx ends. Unreachable clusters are retried. A
// record the local cluster refuses (a produce error franz-go does not retry)
// stops the copy before the bridge's position moves past it; the bridge
// then starts again from the mirror's last copied record (its
// georep-src-offset header), so no record is ever skipped.
func (b *Bridge) Run(ctx context.Context) error {
	defer b.Close()
	for {
		err := b.copy(ctx)
		if ctx.Err() != nil {
			return nil
		}
		b.log.Error().Err(err).Msg("mirroring stopped; restarting from the last record in the local mirror")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// copy mirrors until ctx ends (nil) or a record cannot be produced (its
// error).
func (b *Bridge) copy(ctx context.Context) error {
	target := oplog.MirrorTopic(b.cfg.Peer, b.cfg.Topic)
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(b.cfg.TargetBrokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(oplog.Logger(b.log)),
	)
	if err != nil {
		return fmt.Errorf("bridge %s: target client: %w", b.cfg.Peer, err)
	}
	defer prod.Close()
	var start map[int32]int64
	for {
		if start, err = b.resume(ctx, prod, target); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		b.log.Warn().Err(err).Msg("local cluster not ready; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	offs := make(map[int32]kgo.Offset)
	b.mu.Lock()
	for p := int32(0); p < b.cfg.Partitions; p++ {
		b.pos[p] = start[p]
		offs[p] = kgo.NewOffset().At(start[p])
	}
	b.started = true
	b.changed.Broadcast()
	b.mu.Unlock()
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(b.cfg.SourceBrokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.cfg.Topic: offs}),
		kgo.FetchMaxWait(b.cfg.FetchMaxWait),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.WithLogger(oplog.Logger(b.log)),
	)
	if err != nil {
		return fmt.Errorf("bridge %s: source client: %w", b.cfg.Peer, err)
	}
	defer cons.Close()
	b.log.Info().Msg("mirroring")
	var failMu sync.Mutex
	var failed error // first produce error of the current batch
	for {
		fs := cons.PollRecords(ctx, 8192)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				b.log.Debug().Int32("partition", p).Err(err).Msg("fetch from peer")
			}
		})
		next := make(map[int32]int64)
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			out := &kgo.Record{
				Topic:     target,
				Partition: r.Partition,
				Key:       r.Key,
				Value:     r.Value,
				Timestamp: r.Timestamp,
				Headers:   append(append([]kgo.RecordHeader(nil), r.Headers...), kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)}),
			}
			prod.Produce(ctx, out, func(out *kgo.Record, err error) {
				if err != nil {
					failMu.Lock()
					if failed == nil {
						failed = fmt.Errorf("copy %s/%d offset %d to %s: %w", b.cfg.Topic, out.Partition, r.Offset, target, err)
					}
					failMu.Unlock()
				}
			})
		})
		if len(next) == 0 {
			continue
		}
		// Flush returns only when ctx ends; a record's own failure comes
		// through its promise (franz-go retries retriable errors without
		// limit, and fails the partition's later buffered records with
		// it, so nothing after a failed record lands in the mirror).
		if err := prod.Flush(ctx); err != nil {
			return nil
		}
		failMu.Lock()
		err := failed
		failMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		b.mu.Lock()
		for p, off := range next {
			b.pos[p] = off
		}
		b.changed.Broadcast()
		b.mu.Unlock()
	}
}

// resume ensures the local mirror topic exists and finds, per partition, the
// source offset after the last record copied.
func (b *Bridge) resume(ctx context.Context, prod *kgo.Client, target string) (map[int32]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(prod)
	if err := oplog.EnsureTopics(cctx, adm, b.cfg.Partitions, target); err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(cctx, target)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(cctx, target)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	last := make(map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok && o.Offset > s.Offset {
				last[o.Partition] = kgo.NewOffset().At(o.Offset - 1)
			}
		}
	})
	if len(last) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.cfg.TargetBrokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{target: last}),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.WithLogger(oplog.Logger(b.log)),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(last) > 0 {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			return nil, fmt.Errorf("read last mirrored records: %w", cctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := last[r.Partition]; !ok {
				return
			}
			delete(last, r.Partition)
			for _, h := range r.Headers {
				if h.Key == HeaderSourceOffset {
					if off, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
						out[r.Partition] = off + 1
					}
				}
			}
		})
	}
	return out, nil
}

// CatchUp blocks until everything the peer's topic held when it was called
// is durably copied.
func (b *Bridge) CatchUp(ctx context.Context) error {
	ends, err := b.sourceEnds(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.changed.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		done := b.started
		for p, end := range ends {
			if b.pos[p] < end {
				done = false
			}
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b.changed.Wait()
	}
}

// Lag returns how many source records are not yet copied.
func (b *Bridge) Lag(ctx context.Context) (int64, error) {
	ends, err := b.sourceEnds(ctx)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var lag int64
	for p, end := range ends {
		if d := end - b.pos[p]; d > 0 {
			lag += d
		}
	}
	return lag, nil
}

// sourceAdmin returns a long-lived admin client of the peer's cluster,
// created on first use (STATUS and SYNC ask for end offsets often).
func (b *Bridge) sourceAdmin() (*kadm.Client, error) {
	b.admMu.Lock()
	defer b.admMu.Unlock()
	if b.adm == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.SourceBrokers...), kgo.WithLogger(oplog.Logger(b.log)))
		if err != nil {
			return nil, err
		}
		b.admCl, b.adm = cl, kadm.NewClient(cl)
	}
	return b.adm, nil
}

// Close releases the admin client used by CatchUp and Lag.
func (b *Bridge) Close() {
	b.admMu.Lock()
	defer b.admMu.Unlock()
	if b.admCl != nil {
		b.admCl.Close()
		b.admCl, b.adm = nil, nil
	}
}

func (b *Bridge) sourceEnds(ctx context.Context) (map[int32]int64, error) {
	adm, err := b.sourceAdmin()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(cctx, b.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("peer %s unreachable: %w", b.cfg.Peer, err)
	}
	out := make(map[int32]int64)
	var firstErr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			firstErr = o.Err
			return
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}
