package materializer

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
)

// mark is an origin's watermark in one partition.
type mark struct {
	seq uint64
	hlc crdt.HLC
}

// partition is the state shared by partition index id's apply worker and the
// write path.
type partition struct {
	id int32

	// ownOrigins are the origins whose own-topic records were checked
	// against Node.ownRegion (replay; the apply worker only).
	ownOrigins map[crdt.ReplicaID]bool

	// writeMu serializes writers of this partition's keys: a write computes
	// its effect, takes its sequence number and enqueues its record under it,
	// so records reach the partition in sequence order.
	writeMu sync.Mutex

	in chan []*kgo.Record // from the poll goroutine to the worker

	mu       sync.Mutex
	changed  *sync.Cond              // signalled after each applied batch
	wm       map[crdt.ReplicaID]mark // per origin; written by the worker
	pos      map[string]int64        // per topic, next offset; written by the worker
	overlay  map[string][]*pending
	waiters  map[uint64]*pending
	inflight int // records handed to the idempotent producer, not yet answered

	// views caches, for keys with effects in flight, the view the last write
	// left: applied state plus every overlay effect. It saves the next write
	// on a hot key from re-applying the whole overlay. An entry is only valid
	// while the applied state changes by nothing but its overlay effects
	// being applied: applying any other event to the key, or failing one of
	// its writes, drops it. A write takes an entry out while it runs and puts
	// its view back after enqueueing, unless vgen moved meanwhile.
	views map[string]*keyView
	vgen  uint64 // bumped whenever an entry is dropped for being stale

	cache *keyCache // the worker's decoded key states (keycache.go); worker only
}

// newPartition returns partition id with a key cache of cacheBytes (<= 0:
// none).
func newPartition(id int32, cacheBytes int64) *partition {
	p := &partition{
		id:      id,
		in:      make(chan []*kgo.Record, 64),
		wm:      make(map[crdt.ReplicaID]mark),
		pos:     make(map[string]int64),
		overlay: make(map[string][]*pending),
		waiters: make(map[uint64]*pending),
		views:   make(map[string]*keyView),
		cache:   newKeyCache(cacheBytes),
	}
	p.changed = sync.NewCond(&p.mu)
	return p
}

// dropView drops key's cached view because the applied state changed under
// it (caller holds mu).
func (p *partition) dropView(key string) {
	p.forgetView(key)
	p.vgen++
}

// forgetView removes key's cached view, discarding what it holds (caller
// holds mu).
func (p *partition) forgetView(key string) {
	if kv, ok := p.views[key]; ok {
		kv.dropList()
		delete(p.views, key)
	}
}

// stable returns the partition's watermarks as a clock (caller holds mu or
// owns wm).
func stableOf(wm map[crdt.ReplicaID]mark) crdt.Clock {
	var c crdt.Clock
	for o, m := range wm {
		c = c.With(o, m.seq)
	}
	return c
}

// waitPos blocks until topic's applied position in p reaches end.
func (p *partition) waitPos(ctx context.Context, topic string, end int64) error {
	return p.waitUntil(ctx, func() bool { return p.pos[topic] >= end })
}

// drain waits until no record of this partition is in the idempotent
// producer (caller holds writeMu, so no new one starts).
func (p *partition) drain(ctx context.Context) error {
	return p.waitUntil(ctx, func() bool { return p.inflight == 0 })
}

// waitUntil blocks until done (called with p.mu held) is true, re-checking
// whenever p.changed is broadcast, or until ctx ends.
func (p *partition) waitUntil(ctx context.Context, done func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.changed.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.changed.Wait()
	}
	return nil
}

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
