package materializer

import (
	"context"
	"fmt"
	"time"

	"github.com/georep/georep/oplog"
)

// Catching up with the peers before the first write (a region added to a
// running deployment, docs/regions.md).
//
// A region whose own topic holds none of its events has never accepted a
// write: it is new (or has only ever served reads). Before it accepts its
// first write it applies everything each peer had written when it started,
// so a new region does not answer writes from an empty state (an INCR on a
// counter it has not seen yet would still add up, but an LSET or an LINSERT
// needs the list, a SET NX the key, and clients expect reads after their
// writes to show the dataset). Meanwhile it serves reads of what it has
// applied, and writes get "READONLY georep region ap is catching up with us
// (1234 events behind); ...".

// joinPoll is how often the catch-up checks its progress and refreshes the
// reason writes are refused with.
const joinPoll = 200 * time.Millisecond

// catchUpPeers blocks until everything every peer had written when it was
// called is applied (nil), or ctx ends (nil too: Run is stopping). A peer
// whose cluster the node knows is measured there (peerWatch); for others
// the local mirror's end is the target.
func (n *Node) catchUpPeers(ctx context.Context) error {
	n.joining.Store(true)
	defer n.joining.Store(false)
	targets := make(map[string]map[int32]lastEvent)
	var mirrors []string
	for _, peer := range n.cfg.Peers {
		if n.watch[peer] == nil {
			mirrors = append(mirrors, oplog.MirrorTopic(peer, n.cfg.Topic))
		}
	}
	for attempt := 0; ; attempt++ {
		var missing []string
		for _, peer := range n.cfg.Peers {
			if _, ok := targets[peer]; !ok && n.watch[peer] != nil {
				missing = append(missing, peer)
			}
		}
		got, errs := n.peerTargets(ctx, peerProbeTimeout, missing)
		for peer, t := range got {
			targets[peer] = t
		}
		if ctx.Err() != nil {
			return nil
		}
		if len(errs) == 0 {
			break
		}
		for _, peer := range missing {
			if err := errs[peer]; err != nil {
				n.reason.Store(fmt.Sprintf("catching up with %s (its cluster does not answer: %s)", peer, oneLine(err.Error())))
				if attempt%10 == 0 {
					n.log.Warn().Str("peer", peer).Err(err).Msg("new region: cannot read what the peer has written yet; writes are refused until it has caught up")
				}
				break
			}
		}
		if !sleepCtx(ctx, time.Second) {
			return nil
		}
	}
	var ends map[string]map[int32]int64
	for len(mirrors) > 0 {
		var err error
		cctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
		ends, err = n.endOffsets(cctx, mirrors...)
		cancel()
		if err == nil {
			break
		}
		if !sleepCtx(ctx, time.Second) {
			return nil
		}
	}
	n.log.Info().Strs("peers", n.cfg.Peers).Msg("new region: catching up with the peers before accepting writes")
	var shown time.Time
	for {
		peer := n.firstBehind(targets, ends)
		if peer == "" {
			return nil
		}
		if time.Since(shown) >= time.Second {
			shown = time.Now()
			lag := int64(1)
			if ps := n.peerLags(ctx, []string{peer}); len(ps) == 1 && ps[0].LagEvents > 1 {
				lag = ps[0].LagEvents
			}
			n.reason.Store(fmt.Sprintf("catching up with %s (%d events behind)", peer, lag))
		}
		if !sleepCtx(ctx, joinPoll) {
			return nil
		}
	}
}

// firstBehind returns the first peer (in configuration order) whose target
// is not applied yet, "" if none.
func (n *Node) firstBehind(targets map[string]map[int32]lastEvent, ends map[string]map[int32]int64) string {
	for _, peer := range n.cfg.Peers {
		if t, ok := targets[peer]; ok {
			if len(n.behind(t)) > 0 {
				return peer
			}
			continue
		}
		topic := oplog.MirrorTopic(peer, n.cfg.Topic)
		for pi, end := range ends[topic] {
			if int(pi) >= len(n.parts) {
				continue
			}
			p := n.parts[pi]
			p.mu.Lock()
			behind := p.pos[topic] < end
			p.mu.Unlock()
			if behind {
				return peer
			}
		}
	}
	return ""
}
