package materializer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// poll fetches from every consumed topic partition and hands records to the
// partition workers.
func (n *Node) poll(ctx context.Context) error {
	for {
		fs := n.cons.PollRecords(ctx, 8192)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			n.log.Warn().Str("topic", t).Int32("partition", p).Err(err).Msg("fetch")
		})
		var batch [][]*kgo.Record
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 || int(fp.Partition) >= len(n.parts) {
				return
			}
			if batch == nil {
				batch = make([][]*kgo.Record, len(n.parts))
			}
			batch[fp.Partition] = append(batch[fp.Partition], fp.Records...)
		})
		for pi, recs := range batch {
			if len(recs) == 0 {
				continue
			}
			select {
			case n.parts[pi].in <- recs:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// work applies partition p's records, batching what has queued up.
func (n *Node) work(ctx context.Context, p *partition) error {
	if err := n.finishListJournal(p); err != nil {
		return err
	}
	tick := time.NewTicker(maintainInterval)
	defer tick.Stop()
	for {
		var recs []*kgo.Record
		select {
		case <-ctx.Done():
			return nil
		case recs = <-p.in:
		case <-tick.C:
			if err := n.maintain(p); err != nil {
				return err
			}
			continue
		}
	more:
		for len(recs) < n.cfg.ApplyBatch {
			select {
			case r := <-p.in:
				recs = append(recs, r...)
			default:
				break more
			}
		}
		for len(recs) > 0 {
			chunk := recs
			if len(chunk) > n.cfg.ApplyBatch {
				chunk = chunk[:n.cfg.ApplyBatch]
			}
			recs = recs[len(chunk):]
			if err := n.applyBatch(p, chunk); err != nil {
				return fmt.Errorf("apply partition %d: %w", p.id, err)
			}
		}
	}
}

// loaded is a key's state during a batch.
type loaded struct {
	key      []byte
	k        *crdt.Key
	oldAt    int64 // expiry before the batch (index entry to replace)
	oldOwner crdt.ReplicaID
	oldTomb  bool // held tombstones before the batch (tombstone index entry)
	dirty    bool
	// enc is the size of the key's stored state: read from Badger, or
	// written by store; -1 when it came from the key cache unchanged.
	enc int
	ce  *keyCacheEntry // the key cache's entry, if it had one
}

// applyBatch folds recs into state in one Badger transaction together with
// the offsets and watermarks they advance, then releases waiters.
func (n *Node) applyBatch(p *partition, recs []*kgo.Record) (err error) {
	defer func() {
		if err != nil {
			// Cached states may hold effects of the batch that failed.
			p.cache.clear()
		}
	}()
	p.mu.Lock()
	wm := make(map[crdt.ReplicaID]mark, len(p.wm))
	for o, m := range p.wm {
		wm[o] = m
	}
	p.mu.Unlock()

	txn := n.db.NewTransaction(true)
	defer txn.Discard()
	keys := make(map[string]*loaded)
	offsets := make(map[string]int64)
	changedWM := make(map[crdt.ReplicaID]bool)
	var own []uint64
	var ownKeys [][]byte // key of each own event, as own
	var others [][]byte  // keys changed by events that are not own
	var nApplied int64
	eb := n.newElemBatch(txn)
	lb := n.newListBatch(txn)
	var rest []*kgo.Record // left for the next transaction
	var size int
	clb := n.changelogBatch(p) // nil unless the changelog is on
	for i, r := range recs {
		if i > 0 && (len(keys)+eb.entries()+lb.entries()+clb.entries() > maxBatchEntries || size > maxBatchBytes) {
			rest = recs[i:]
			break
		}
		size += len(r.Value)
		offsets[r.Topic] = r.Offset + 1
		if r.Attrs.IsControl() {
			continue
		}
		ev, err := oplog.ParseRecord(r)
		if err != nil {
			n.badRecord(r, err)
			continue
		}
		o := ev.Dot.Origin
		if n.ownRegion != "" && r.Topic == n.cfg.Topic && !p.ownOrigins[o] {
			if err := n.checkOwnRecord(p, o, r); err != nil {
				return err
			}
		}
		if _, ok := n.originNames.Load(o); !ok {
			if name := oplog.RegionOf(r); name != "" {
				n.originNames.Store(o, name)
			}
		}
		if ev.Dot.Seq <= wm[o].seq {
			continue // duplicate (mirror retry, replay)
		}
		wm[o] = mark{seq: ev.Dot.Seq, hlc: ev.HLC}
		changedWM[o] = true
		l, err := n.load(p, txn, keys, ev.Key)
		if err != nil {
			return err
		}
		stable := stableOf(wm)
		clb.before(l)
		changed := l.k.Apply(ev, stable)
		if changed {
			l.dirty = true
			clb.note(ev.Key, r, ev)
			if err := eb.apply(l, ev, stable); err != nil {
				return err
			}
			if err := lb.apply(l, ev, stable); err != nil {
				return err
			}
		}
		nApplied++
		if o == n.origin {
			own = append(own, ev.Dot.Seq)
			ownKeys = append(ownKeys, ev.Key)
		} else if changed {
			others = append(others, ev.Key)
		}
		n.observeHLC(ev.HLC)
	}
	if err := eb.flush(keys); err != nil {
		return err
	}
	// Besides the list records the transaction takes, per key, its state
	// and up to two expiry index entries, the elements and the changelog
	// marks.
	if err := lb.flush(p.id, 3*len(keys)+eb.entries()+clb.entries()); err != nil {
		return err
	}
	var arena []byte // encoded states, one allocation for many
	for _, l := range keys {
		if !l.dirty {
			continue
		}
		if l.enc, err = n.store(txn, l, lb, &arena); err != nil {
			return err
		}
	}
	for t, off := range offsets {
		if err := txn.Set(offsetKey(p.id, t), binary.BigEndian.AppendUint64(nil, uint64(off))); err != nil {
			return err
		}
	}
	for o := range changedWM {
		m := wm[o]
		v := binary.BigEndian.AppendUint64(nil, m.seq)
		v = binary.BigEndian.AppendUint64(v, uint64(m.hlc))
		if err := txn.Set(watermarkKey(p.id, uint32(o)), v); err != nil {
			return err
		}
	}
	if err := clb.write(txn); err != nil {
		return err
	}
	// Cached views of keys this batch changes by other events than their
	// own writes in flight go stale: drop them before the commit, so no
	// write takes one while the commit becomes visible, and again after it,
	// so none cached from a read before the commit survives it.
	p.mu.Lock()
	for i, seq := range own {
		if _, ok := p.waiters[seq]; !ok {
			others = append(others, ownKeys[i])
		}
	}
	for _, k := range others {
		p.dropView(string(k))
	}
	p.mu.Unlock()
	if err := clb.commit(txn); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := lb.afterCommit(p); err != nil {
		return err
	}
	clb.done()
	for k, l := range keys {
		if l.enc < 0 {
			continue // cached and unchanged
		}
		st := l.k
		if l.enc == 0 {
			st = &crdt.Key{} // absent; l.k may hold a VV that is forgotten
		}
		if l.ce != nil {
			p.cache.update(l.ce, k, st, l.enc)
		} else {
			p.cache.put(k, st, l.enc)
		}
	}
	n.applied.Add(nApplied)
	n.notifyLists(lb.grew)
	ep := n.elemPart(p.id)
	ep.tombs.Add(eb.tombs)
	for _, k := range eb.pending {
		ep.pending[string(k)] = true
	}

	p.mu.Lock()
	for _, k := range others {
		p.dropView(string(k))
	}
	for o := range changedWM {
		p.wm[o] = wm[o]
	}
	for t, off := range offsets {
		p.pos[t] = off
	}
	for _, seq := range own {
		if w, ok := p.waiters[seq]; ok {
			delete(p.waiters, seq)
			p.removeOverlay(w)
			w.finish(nil)
		}
	}
	p.changed.Broadcast()
	p.mu.Unlock()
	if len(rest) > 0 {
		return n.applyBatch(p, rest)
	}
	return nil
}

// load returns key's state in the batch: from the partition's key cache,
// or read from txn once.
func (n *Node) load(p *partition, txn *badger.Txn, keys map[string]*loaded, key []byte) (*loaded, error) {
	if l, ok := keys[string(key)]; ok {
		return l, nil
	}
	enc := -1
	var k *crdt.Key
	ce := p.cache.get(key)
	switch {
	case ce != nil:
		k = ce.k
	case p.cache.complete:
		k, enc = &crdt.Key{}, 0 // known to be absent
	default:
		var err error
		if k, enc, err = getKeySized(txn, key); err != nil {
			return nil, err
		}
		if k == nil {
			k = &crdt.Key{}
		}
	}
	l := &loaded{key: key, k: k, oldTomb: k.HasTombstones(), enc: enc, ce: ce}
	l.oldAt, l.oldOwner = k.Expiry()
	keys[string(key)] = l
	return l, nil
}

// store writes l's state (or deletes it when empty) and keeps the expiry
// index in step. It returns the size of the state written (0: deleted).
// States are encoded into *arena while it has room (the transaction holds
// on to them until it commits).
func (n *Node) store(txn *badger.Txn, l *loaded, lb *listBatch, arena *[]byte) (int, error) {
	if cap(*arena)-len(*arena) < 512+len(l.key) {
		*arena = make([]byte, 0, max(64<<10, 1024+len(l.key)))
	}
	mk := appendMetaKey(*arena, l.key)
	*arena = mk
	mk = mk[len(mk)-(3+len(l.key)) : len(mk) : len(mk)]
	enc := 0
	empty := l.k.Empty()
	if empty {
		// The key's list may still hold tombstones: keep its state.
		kept, err := lb.listStored(txn, l.key)
		if err != nil {
			return 0, err
		}
		empty = !kept
	}
	if empty {
		if err := txn.Delete(mk); err != nil {
			return 0, err
		}
	} else {
		free := (*arena)[len(*arena):]
		v := l.k.Marshal(free)
		if cap(v) == cap(free) { // encoded in place
			*arena = (*arena)[:len(*arena)+len(v)]
		}
		v = v[:len(v):len(v)]
		if err := txn.Set(mk, v); err != nil {
			return 0, err
		}
		enc = len(v)
	}
	at, owner := l.k.Expiry()
	if l.k.Empty() {
		at = 0
	}
	if at == l.oldAt && owner == l.oldOwner {
		return enc, nil
	}
	if l.oldAt != 0 {
		if err := txn.Delete(expiryKey(l.oldAt, l.key)); err != nil {
			return 0, err
		}
	}
	if at != 0 {
		if err := txn.Set(expiryKey(at, l.key), binary.BigEndian.AppendUint32(nil, uint32(owner))); err != nil {
			return 0, err
		}
	}
	return enc, nil
}

// getKey reads key's state, nil if there is none.
func getKey(txn *badger.Txn, key []byte) (*crdt.Key, error) {
	k, _, err := getKeySized(txn, key)
	return k, err
}

// getKeySized is getKey that also returns the size of the stored state (0
// when there is none).
func getKeySized(txn *badger.Txn, key []byte) (*crdt.Key, int, error) {
	item, err := txn.Get(metaKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %q: %w", key, err)
	}
	var k *crdt.Key
	var size int
	err = item.Value(func(v []byte) error {
		var derr error
		size = len(v)
		k, derr = crdt.UnmarshalKey(v)
		return derr
	})
	if err != nil {
		return nil, 0, fmt.Errorf("decode %q: %w", key, err)
	}
	return k, size, nil
}
