package materializer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// peerProbeTimeout bounds how long Sync and the startup catch-up wait for a
// peer's cluster to answer before reporting it unreachable; Status uses
// statusProbeTimeout.
const (
	peerProbeTimeout   = 5 * time.Second
	statusProbeTimeout = 2 * time.Second
)

// lastEvent is the newest committed event of one partition of a peer's own
// topic.
type lastEvent struct {
	origin crdt.ReplicaID
	seq    uint64
	hlc    crdt.HLC
}

// peerWatch reads a peer's own topic on the peer's cluster, whoever mirrors
// it (in-process bridge, standalone bridge, MirrorMaker 2). Offsets of the
// peer's topic cannot be compared with those of the local mirror (MirrorMaker
// 2 renumbers records and drops transaction markers), so what a node waits
// for is the newest event itself: its origin and sequence number, which the
// apply loop's watermarks count.
type peerWatch struct {
	peer    string
	brokers []string
	topic   string
	log     zerolog.Logger

	mu  sync.Mutex
	cl  *kgo.Client // admin requests; created on first use, under mu
	adm *kadm.Client
}

func newPeerWatch(peer string, brokers []string, topic string, log zerolog.Logger) *peerWatch {
	return &peerWatch{peer: peer, brokers: brokers, topic: topic, log: log.With().Str("peer", peer).Logger()}
}

func (w *peerWatch) admin() (*kadm.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.adm == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...), kgo.WithLogger(oplog.Logger(w.log)))
		if err != nil {
			return nil, err
		}
		w.cl, w.adm = cl, kadm.NewClient(cl)
	}
	return w.adm, nil
}

func (w *peerWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cl != nil {
		w.cl.Close()
		w.cl, w.adm = nil, nil
	}
}

// PeerUnreachableError reports a peer whose cluster did not answer.
type PeerUnreachableError struct {
	Peer string
	Err  error
}

func (e *PeerUnreachableError) Error() string {
	return fmt.Sprintf("peer %s unreachable: %v", e.Peer, e.Err)
}

func (e *PeerUnreachableError) Unwrap() error { return e.Err }

// last returns, per partition, the newest committed event of the peer's
// topic; partitions holding none (empty, or only aborted records and
// markers) are absent. It reads read-committed backwards from each
// partition's last stable offset, in growing windows, skipping records that
// are not georep events.
func (w *peerWatch) last(ctx context.Context) (map[int32]lastEvent, error) {
	adm, err := w.admin()
	if err != nil {
		return nil, &PeerUnreachableError{Peer: w.peer, Err: err}
	}
	starts, err := oplog.StartOffsets(ctx, adm, w.topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		// franz-go may answer "unknown topic" from its metadata cache
		// for seconds after the topic was created: ask the cluster
		// (this request bypasses the cache and refreshes it).
		md, merr := adm.ListTopics(kadm.WithAuthorizedOps(ctx), w.topic)
		if merr != nil {
			return nil, &PeerUnreachableError{Peer: w.peer, Err: merr}
		}
		if d, ok := md[w.topic]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return map[int32]lastEvent{}, nil // the peer has not written yet
		}
		starts, err = oplog.StartOffsets(ctx, adm, w.topic)
	}
	if err != nil {
		return nil, &PeerUnreachableError{Peer: w.peer, Err: err}
	}
	ends, err := oplog.StableOffsets(ctx, adm, w.topic)
	if err != nil {
		return nil, &PeerUnreachableError{Peer: w.peer, Err: err}
	}
	out := make(map[int32]lastEvent)
	pending := make(map[int32]span)
	for p, end := range ends[w.topic] {
		if start := starts.Get(w.topic, p); end > start {
			pending[p] = span{start: start, end: end}
		}
	}
	for window := int64(4); len(pending) > 0; window *= 16 {
		for p, s := range pending {
			s.from = max(s.start, s.end-window)
			pending[p] = s
		}
		found, err := w.read(ctx, pending)
		if err != nil {
			return nil, &PeerUnreachableError{Peer: w.peer, Err: err}
		}
		for p, s := range pending {
			if ev, ok := found[p]; ok {
				out[p] = ev
				delete(pending, p)
			} else if s.from <= s.start {
				delete(pending, p) // no event at all
			}
		}
	}
	return out, nil
}

// span is the part of a partition last reads: [from, end), start being the
// partition's first offset.
type span struct{ start, from, end int64 }

// read consumes each partition's span and returns its newest event.
func (w *peerWatch) read(ctx context.Context, spans map[int32]span) (map[int32]lastEvent, error) {
	offs := make(map[int32]kgo.Offset, len(spans))
	for p, s := range spans {
		offs[p] = kgo.NewOffset().At(s.from)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(w.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: offs}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(oplog.Logger(w.log)),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make(map[int32]lastEvent)
	todo := make(map[int32]bool, len(spans))
	for p := range spans {
		todo[p] = true
	}
	for len(todo) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		fs.EachRecord(func(r *kgo.Record) {
			s := spans[r.Partition]
			if r.Offset >= s.end-1 {
				// The record before the stable offset is visible
				// to a read-committed consumer keeping control
				// records (a marker, or a record outside any
				// transaction): the span is read. (It would be an
				// aborted record only if an aborted transaction
				// had interleaved with one still open; a region
				// has one transactional producer, and the bridge
				// and MirrorMaker 2 copy without transactions, so
				// georep topics hold no such thing. If one did,
				// Sync would report the peer unreachable when its
				// probe times out, not return early.)
				delete(todo, r.Partition)
			}
			if r.Offset >= s.end || r.Attrs.IsControl() {
				return
			}
			ev, err := oplog.ParseRecord(r)
			if err != nil {
				return
			}
			out[r.Partition] = lastEvent{origin: ev.Dot.Origin, seq: ev.Dot.Seq, hlc: ev.HLC}
		})
		if ferr != nil && fs.NumRecords() == 0 {
			w.log.Debug().Err(ferr).Msg("read peer topic")
		}
	}
	return out, nil
}

// peerTargets reads the newest events of every watched peer in parallel,
// each within probe. It returns the targets of the peers that answered and
// the errors of those that did not, by peer.
func (n *Node) peerTargets(ctx context.Context, probe time.Duration, peers []string) (map[string]map[int32]lastEvent, map[string]error) {
	var mu sync.Mutex
	targets := make(map[string]map[int32]lastEvent)
	errs := make(map[string]error)
	var wg sync.WaitGroup
	for _, peer := range peers {
		w := n.watch[peer]
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, probe)
			defer cancel()
			t, err := w.last(cctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[peer] = err
			} else {
				targets[peer] = t
			}
		}()
	}
	wg.Wait()
	return targets, errs
}

// behind returns the partitions where the local watermarks have not reached
// the peer's newest events.
func (n *Node) behind(targets map[int32]lastEvent) []int32 {
	var out []int32
	for pi, t := range targets {
		if int(pi) >= len(n.parts) {
			continue
		}
		p := n.parts[pi]
		p.mu.Lock()
		if p.wm[t.origin].seq < t.seq {
			out = append(out, pi)
		}
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// waitTargets blocks until the local watermarks reach every target.
func (n *Node) waitTargets(ctx context.Context, targets map[int32]lastEvent) error {
	for pi, t := range targets {
		if int(pi) >= len(n.parts) {
			continue
		}
		if err := n.parts[pi].waitMark(ctx, t.origin, t.seq); err != nil {
			return err
		}
	}
	return nil
}

// waitMark blocks until origin's watermark in p reaches seq.
func (p *partition) waitMark(ctx context.Context, origin crdt.ReplicaID, seq uint64) error {
	return p.waitUntil(ctx, func() bool { return p.wm[origin].seq >= seq })
}

// unreachableError is Sync's error for peers that did not answer.
func unreachableError(errs map[string]error) error {
	names := make([]string, 0, len(errs))
	for p := range errs {
		names = append(names, p)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, p := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		err := errs[p]
		var u *PeerUnreachableError
		if errors.As(err, &u) {
			err = u.Err
		}
		fmt.Fprintf(&b, "peer %s unreachable (%s)", p, oneLine(err.Error()))
	}
	return &Error{Reply: "ERR georep sync: " + b.String() + "; everything from the other peers is applied", Err: ErrPeerUnreachable}
}

// ErrPeerUnreachable is wrapped by Sync's error when a peer's cluster did
// not answer.
var ErrPeerUnreachable = errors.New("materializer: peer unreachable")
