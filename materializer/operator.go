package materializer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// Pause stops applying inbound replication (peers' topics); the region's own
// writes go on.
func (n *Node) Pause() {
	if n.paused.CompareAndSwap(false, true) {
		n.cons.PauseFetchTopics(n.topics[1:]...)
		n.log.Info().Msg("inbound replication paused")
	}
}

// Resume restarts applying inbound replication.
func (n *Node) Resume() {
	if n.paused.CompareAndSwap(true, false) {
		n.cons.ResumeFetchTopics(n.topics[1:]...)
		n.log.Info().Msg("inbound replication resumed")
	}
}

// Paused reports whether inbound replication is paused.
func (n *Node) Paused() bool { return n.paused.Load() }

// ErrSyncTimeout is returned when Sync does not finish in time; it also
// wraps context.DeadlineExceeded.
var ErrSyncTimeout = errors.New("materializer: sync timed out")

// Sync blocks until everything every reachable peer had written when it was
// called is applied here, and everything the region's own topic holds.
//
// For a peer whose cluster the node knows (Config.PeerBrokers, with or
// without in-process bridges), Sync reads the newest committed event of each
// partition of the peer's own topic on the peer's cluster and waits until
// the local watermark of that event's origin in that partition reaches it,
// so it sees whatever mirrors the topic (bridge, MirrorMaker 2) and however
// far behind it is. A peer whose cluster does not answer within a few seconds
// is reported by name once the others are applied (an error wrapping
// ErrPeerUnreachable). For a peer whose cluster the node does not know,
// Sync can only wait for the local mirror as it is. While paused, Sync waits
// for inbound replication to resume.
func (n *Node) Sync(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	timedOut := func() error {
		return fmt.Errorf("%w after %s: %w", ErrSyncTimeout, timeout, context.DeadlineExceeded)
	}
	targets, unreachable := n.peerTargets(ctx, min(timeout, peerProbeTimeout), n.cfg.Peers)
	if ctx.Err() != nil {
		return timedOut()
	}
	local := []string{n.cfg.Topic}
	for _, peer := range n.cfg.Peers {
		if n.watch[peer] == nil {
			local = append(local, oplog.MirrorTopic(peer, n.cfg.Topic))
		}
	}
	ends, err := n.endOffsets(ctx, local...)
	if err != nil {
		if ctx.Err() != nil {
			return timedOut()
		}
		return fmt.Errorf("sync: %w", err)
	}
	if err := n.waitApplied(ctx, ends); err != nil {
		return timedOut()
	}
	for _, t := range targets {
		if err := n.waitTargets(ctx, t); err != nil {
			return timedOut()
		}
	}
	if len(unreachable) > 0 {
		return unreachableError(unreachable)
	}
	return nil
}

// PeerStatus is replication from one peer.
type PeerStatus struct {
	Region     string
	InstanceID crdt.ReplicaID
	LagEvents  int64
	LagMillis  int64
	Reachable  bool
}

// Status is a node's replication state.
type Status struct {
	Region      string
	InstanceID  crdt.ReplicaID
	Paused      bool
	Writable    bool
	Reason      string
	Peers       []PeerStatus
	Applied     crdt.Clock
	BadRecords  int64
	Tombstones  int64
	EventsTotal int64
}

// Status reports the node's replication state. A peer's lag counts the
// events in the local mirror not yet applied, plus, with an in-process
// bridge, those the bridge has not copied yet; without one, where the node
// knows the peer's cluster, at least one for every partition whose newest
// event on the peer has not reached the local mirror (the exact number is
// known once it has). Reachable is false when the peer's cluster did not
// answer; a peer whose cluster the node does not know counts as reachable.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{
		Region:      n.cfg.Region,
		InstanceID:  n.origin,
		Paused:      n.paused.Load(),
		Writable:    n.writable.Load(),
		BadRecords:  n.bad.Load(),
		EventsTotal: n.applied.Load(),
		Tombstones:  n.tombstones(),
	}
	if lt, err := listTombstones(n.db); err == nil {
		st.Tombstones += lt
	} else {
		n.log.Warn().Err(err).Msg("count list tombstones")
	}
	st.Reason, _ = n.reason.Load().(string)
	for _, p := range n.parts {
		p.mu.Lock()
		for o, m := range p.wm {
			st.Applied = st.Applied.With(o, m.seq)
		}
		p.mu.Unlock()
	}
	st.Peers = n.peerLags(ctx, n.cfg.Peers)
	return st
}

// peerLags measures replication from each of peers (see Status).
func (n *Node) peerLags(ctx context.Context, peers []string) []PeerStatus {
	cctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
	defer cancel()
	last := make(map[crdt.ReplicaID]crdt.HLC)
	for _, p := range n.parts {
		p.mu.Lock()
		for o, m := range p.wm {
			if m.hlc > last[o] {
				last[o] = m.hlc
			}
		}
		p.mu.Unlock()
	}
	var mirrors []string
	for _, peer := range peers {
		mirrors = append(mirrors, oplog.MirrorTopic(peer, n.cfg.Topic))
	}
	var wg sync.WaitGroup
	var targets map[string]map[int32]lastEvent
	var unreachable map[string]error
	wg.Add(1)
	go func() {
		defer wg.Done()
		targets, unreachable = n.peerTargets(cctx, statusProbeTimeout, peers)
	}()
	ends, endErr := n.endOffsets(cctx, mirrors...)
	wg.Wait()
	origins := n.peerOrigins()
	var out []PeerStatus
	for _, peer := range peers {
		ps := PeerStatus{Region: peer, InstanceID: origins[peer], Reachable: unreachable[peer] == nil}
		topic := oplog.MirrorTopic(peer, n.cfg.Topic)
		mirrorLag := make(map[int32]int64)
		if endErr == nil {
			for pi, end := range ends[topic] {
				if int(pi) >= len(n.parts) {
					continue
				}
				p := n.parts[pi]
				p.mu.Lock()
				if d := end - p.pos[topic]; d > 0 {
					ps.LagEvents += d
					mirrorLag[pi] = d
				}
				p.mu.Unlock()
			}
		}
		bridged := false
		for _, in := range n.inbound {
			if in.Peer() != peer {
				continue
			}
			bridged = true
			lag, err := in.Lag(cctx)
			if err != nil {
				ps.Reachable = false
			}
			ps.LagEvents += lag
		}
		if t, ok := targets[peer]; ok {
			if ps.InstanceID == 0 {
				for _, ev := range t {
					ps.InstanceID = ev.origin
					break
				}
			}
			if !bridged {
				for _, pi := range n.behind(t) {
					if mirrorLag[pi] == 0 {
						ps.LagEvents++
					}
				}
			}
		}
		if ps.LagEvents > 0 && ps.InstanceID != 0 && last[ps.InstanceID] != 0 {
			ps.LagMillis = max(0, n.now()-last[ps.InstanceID].Millis())
		}
		out = append(out, ps)
	}
	return out
}

// peerOrigins maps peer region names to the instance IDs seen in their
// records (learned by the apply loop).
func (n *Node) peerOrigins() map[string]crdt.ReplicaID {
	out := make(map[string]crdt.ReplicaID)
	n.originNames.Range(func(k, v any) bool {
		out[v.(string)] = k.(crdt.ReplicaID)
		return true
	})
	return out
}

// Digest hashes the visible state: every visible key with its type, value
// and expiry, in key order. Converged regions give equal digests whatever
// the history that led there.
func (n *Node) Digest(ctx context.Context) (string, error) {
	return Digest(n.db, n.now())
}

// Digest computes the state digest of a Badger state directory's contents.
func Digest(db *badger.DB, now int64) (string, error) {
	h := sha256.New()
	var keys [][]byte
	vals := make(map[string][]byte)
	err := db.View(func(txn *badger.Txn) error {
		rd := &elemReader{txn: txn}
		var elemErr error
		err := scan(txn, nil, func(key []byte, k *crdt.Key) bool {
			t := k.Type(now)
			if t == crdt.TypeNone {
				return true
			}
			b := append([]byte{byte(t)}, visibleBytes(k, t, now)...)
			if isCollection(t) {
				var eb []byte
				if eb, elemErr = collectionBytes(rd, key, t); elemErr != nil {
					return false
				}
				b = append(b, eb...)
			}
			if t == crdt.TypeList {
				var lb []byte
				if lb, elemErr = listBytes(txn, key); elemErr != nil {
					return false
				}
				b = append(b, lb...)
			}
			at, _ := k.Expiry()
			b = binary.BigEndian.AppendUint64(b, uint64(at))
			keys = append(keys, key)
			vals[string(key)] = b
			return true
		})
		if err == nil {
			err = elemErr
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Slice(keys, func(i, j int) bool { return string(keys[i]) < string(keys[j]) })
	for _, k := range keys {
		v := vals[string(k)]
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k))))
		h.Write(k)
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
		h.Write(v)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// visibleBytes is the canonical encoding of a key's visible value.
func visibleBytes(k *crdt.Key, t crdt.Type, now int64) []byte {
	switch t {
	case crdt.TypeString:
		v, _ := k.String(now)
		return v
	}
	return nil
}
