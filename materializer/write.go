package materializer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// Error is a write-path error with its own RESP error reply.
type Error struct {
	Reply string // without the leading '-'
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reply + ": " + e.Err.Error()
	}
	return e.Reply
}

// RedisError returns the RESP error reply.
func (e *Error) RedisError() string { return e.Reply }

func (e *Error) Unwrap() error { return e.Err }

// Sentinels of the write path.
var (
	// ErrNotInSync is returned while the region is not caught up.
	ErrNotInSync = errors.New("materializer: region not in sync")
	// ErrNotDurable is returned when Kafka did not take a write in time.
	ErrNotDurable = errors.New("materializer: write not durable")
	// ErrTooLarge is returned for a write whose event would not fit in
	// one Kafka record.
	ErrTooLarge = errors.New("materializer: write too large for one Kafka record")
)

// tooLarge is the reply to a write whose event is size bytes.
func tooLarge(size int) error {
	return &Error{
		Reply: fmt.Sprintf("ERR write too large: its event is about %d bytes and one Kafka record holds at most %d", size, oplog.MaxRecordBytes),
		Err:   ErrTooLarge,
	}
}

func (n *Node) readOnly() error {
	reason, _ := n.reason.Load().(string)
	if reason == "" {
		reason = "starting"
	}
	if n.joining.Load() {
		return &Error{Reply: fmt.Sprintf("READONLY georep region %s is %s; writes are not accepted", n.cfg.Region, reason), Err: ErrNotInSync}
	}
	return &Error{Reply: fmt.Sprintf("READONLY georep region %s is not in sync (%s); writes are not accepted", n.cfg.Region, reason), Err: ErrNotInSync}
}

// pending is one local event between stamping and acknowledgement.
type pending struct {
	ev   *crdt.Event
	part *partition
	done chan struct{}
	err  error
}

func (w *pending) finish(err error) {
	select {
	case <-w.done:
	default:
		w.err = err
		close(w.done)
	}
}

// removeOverlay drops w from its key's overlay (caller holds part.mu).
func (p *partition) removeOverlay(w *pending) {
	k := string(w.ev.Key)
	list := p.overlay[k]
	for i, x := range list {
		if x == w {
			if i == 0 {
				// The usual case (events are applied in order): no copy.
				list[0] = nil
				list = list[1:]
			} else {
				list = append(list[:i], list[i+1:]...)
			}
			break
		}
	}
	if len(list) == 0 {
		delete(p.overlay, k)
		p.forgetView(k) // the applied state is the view now
	} else {
		p.overlay[k] = list
	}
}

// Ack waits for an Update's events.
type Ack struct {
	ws      []*pending
	timeout time.Duration
}

// Wait blocks until every event is durable and applied, one failed, the
// write timeout passes or ctx ends.
func (a *Ack) Wait(ctx context.Context) error {
	if len(a.ws) == 0 {
		return nil
	}
	// Often every event is applied already (a pipeline's writes are
	// applied in batches): then no timer.
	for i, w := range a.ws {
		select {
		case <-w.done:
			if w.err != nil {
				return w.err
			}
			if i == len(a.ws)-1 {
				return nil
			}
			continue
		default:
		}
		break
	}
	// The write timeout, unless ctx ends first anyway.
	var timeout <-chan time.Time
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > a.timeout {
		t := time.NewTimer(a.timeout)
		defer t.Stop()
		timeout = t.C
	}
	for _, w := range a.ws {
		select {
		case <-w.done:
			if w.err != nil {
				return w.err
			}
		case <-timeout:
			return &Error{Reply: fmt.Sprintf("TRYAGAIN write not acknowledged by Kafka within %s; it may still be applied", a.timeout), Err: ErrNotDurable}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Tx is the view a write runs against and the way it emits effects.
type Tx struct {
	n     *Node
	rtxn  *badger.Txn // started on first use (snapshot)
	rd    *elemReader // elements of rtxn
	now   int64
	views map[string]*txView
	out   []*pending
	err   error
}

// txView is a key's view in a Tx and its partition's vgen when it was taken.
type txView struct {
	kv   *keyView
	part *partition
	gen  uint64
}

// Get returns key's state including in-flight and emitted effects (nil if
// none). The result must not be modified.
func (t *Tx) Get(key []byte) (*crdt.Key, error) {
	kv, err := t.view(key)
	if err != nil || kv.k.Empty() {
		return nil, err
	}
	return kv.k, nil
}

func (t *Tx) view(key []byte) (*keyView, error) {
	if v, ok := t.views[string(key)]; ok {
		return v.kv, nil
	}
	p := t.n.partOf(key)
	p.mu.Lock()
	gen := p.vgen
	if kv, ok := p.views[string(key)]; ok {
		// The last write's view: take it (this Tx holds the partition's
		// write lock, so no other write wants it) and put it back in enqueue.
		delete(p.views, string(key))
		if kv.hasElems() {
			// The view reads elements it did not change from the Tx's
			// snapshot: open it while the view is known valid (an applied
			// event of another origin drops the view under p.mu before its
			// commit), so the snapshot shows nothing the view lacks.
			t.rd.snap()
		}
		p.mu.Unlock()
		kv.rd = t.rd
		t.views[string(key)] = &txView{kv: kv, part: p, gen: gen}
		return kv, nil
	}
	return t.readView(p, key, gen) // unlocks p.mu
}

// readView builds key's view from the applied state and the effects in
// flight, and makes it the Tx's view of key. The caller holds p.mu, which
// readView releases, and read gen under it.
func (t *Tx) readView(p *partition, key []byte, gen uint64) (*keyView, error) {
	inflight := append([]*pending(nil), p.overlay[string(key)]...)
	p.mu.Unlock()
	// Read state after copying the overlay, in a read transaction that
	// starts now: an event missing from the copy was committed before it
	// left the overlay, so the read sees it; one in both is skipped by
	// Apply's per-key dedup. The view reads its elements from the same
	// transaction while this Tx runs.
	snap := t.n.db.NewTransaction(false)
	k, err := getKey(snap, key)
	if err != nil {
		snap.Discard()
		return nil, err
	}
	kv := newKeyView(append([]byte(nil), key...), k, snap)
	t.views[string(key)] = &txView{kv: kv, part: p, gen: gen}
	for _, w := range inflight {
		if err := kv.apply(w.ev); err != nil {
			return nil, err
		}
	}
	return kv, nil
}

// Now is the region's wall clock in ms, fixed for the transaction.
func (t *Tx) Now() int64 { return t.now }

// Origin is the region's instance ID.
func (t *Tx) Origin() crdt.ReplicaID { return t.n.origin }

// snapshot returns the Tx's read transaction, starting it on first use:
// most writes (strings, counters) never read through it.
func (t *Tx) snapshot() *badger.Txn {
	if t.rtxn == nil {
		t.rtxn = t.n.db.NewTransaction(false)
	}
	return t.rtxn
}

// Scan iterates applied keys (in-flight effects are not included).
func (t *Tx) Scan(after []byte, fn func(key []byte, k *crdt.Key) bool) error {
	return scan(t.snapshot(), after, fn)
}

// RandomKey returns a random visible applied key.
func (t *Tx) RandomKey() ([]byte, error) { return randomKey(t.snapshot(), t.now) }

// Emit stamps an event with ops on key and applies it to the view.
func (t *Tx) Emit(key []byte, ops ...crdt.Op) {
	if t.err != nil || len(ops) == 0 {
		return
	}
	kv, err := t.view(key)
	if err != nil {
		t.err = err
		return
	}
	key = append([]byte(nil), key...)
	ops, err = t.n.complete(kv, t.now, ops)
	if err != nil {
		t.err = err
		return
	}
	ev := &crdt.Event{Key: key, Observed: kv.k.VV.Clone(), Ops: ops}
	if size := oplog.RecordSize(ev); size > oplog.MaxRecordBytes {
		t.err = tooLarge(size) // refused before it takes a sequence number
		return
	}
	t.n.seqMu.Lock()
	t.n.seq++
	ev.Dot = crdt.Dot{Origin: t.n.origin, Seq: t.n.seq}
	t.n.seqMu.Unlock()
	ev.HLC = t.n.nextHLC()
	err = kv.apply(ev)
	if errors.Is(err, errViewRebuild) {
		// A cached view without its list: derive it afresh.
		if kv, err = t.rebuildView(key); err == nil {
			err = kv.apply(ev)
		}
	}
	if err != nil {
		t.err = err
	}
	t.out = append(t.out, &pending{ev: ev, part: t.n.partOf(key), done: make(chan struct{})})
}

// complete fills what ops need from the view kv and prepends the removals
// the rules require.
func (n *Node) complete(kv *keyView, now int64, ops []crdt.Op) ([]crdt.Op, error) {
	k := kv.k
	var pre []crdt.Op
	if k.Stale(now) {
		if ops[0].Kind != crdt.OpDelete {
			pre = append(pre, crdt.Op{Kind: crdt.OpDelete})
		}
	} else if ops[0].Kind != crdt.OpDelete {
		creates := crdt.TypeNone
		for _, op := range ops {
			if t := op.Creates(); t != crdt.TypeNone {
				creates = t
			}
		}
		vis := k.Type(now)
		if creates != crdt.TypeNone && vis != crdt.TypeNone && vis != creates {
			pre = append(pre, crdt.Op{Kind: crdt.OpDeleteType, Type: vis})
		}
		for _, h := range k.Hidden() {
			if h != creates || creates == crdt.TypeNone {
				pre = append(pre, crdt.Op{Kind: crdt.OpDeleteType, Type: h})
			}
		}
	}
	all := append(pre, ops...)
	// reset records what earlier ops of the event removed: an increment
	// after a removal of its cell opens a new share (Start 0), since
	// continuing a fully reset share loses the low digits of floats.
	type elemKey struct {
		t crdt.Type
		e string
	}
	var strReset bool
	resetTypes := map[crdt.Type]bool{}
	resetElems := map[elemKey]bool{}
	for i := range all {
		op := &all[i]
		switch op.Kind {
		case crdt.OpDelete, crdt.OpSet:
			op.Shares = k.ObservedShares()
			strReset = true
		case crdt.OpIncr, crdt.OpIncrFloat:
			op.Start = k.OwnShareStart(n.origin)
			if strReset {
				op.Start = 0
			}
		case crdt.OpDeleteType:
			if op.Type == crdt.TypeString {
				op.Shares = k.ObservedShares()
				strReset = true
			}
		}
		if types := removedTypes(op); types != nil {
			elems, err := kv.observedElems(types)
			if err != nil {
				return nil, err
			}
			op.Elems = elems
			for _, t := range types {
				resetTypes[t] = true
			}
			continue
		}
		t := op.ElemType()
		if t == crdt.TypeNone || t == crdt.TypeList {
			continue // lists need nothing more (crdt.List plans whole ops)
		}
		c, err := kv.peek(t, op.Elem)
		if err != nil {
			return nil, err
		}
		id := elemKey{t, string(op.Elem)}
		switch op.Kind {
		case crdt.OpHIncr, crdt.OpHIncrFloat, crdt.OpZIncr:
			if c != nil && !resetTypes[t] && !resetElems[id] {
				op.Start = c.OwnShareStart(n.origin)
			}
		default:
			if c != nil {
				op.Shares = c.ObservedShares()
			}
			resetElems[id] = true
		}
	}
	return all, nil
}

func (n *Node) partOf(key []byte) *partition {
	return n.parts[oplog.Partition(key, n.cfg.Partitions)]
}

// Update runs fn with the write locks of keys held and hands the events it
// emits to the log. See server.Store.
func (n *Node) Update(ctx context.Context, keys [][]byte, fn func(tx *Tx) error) (*Ack, error) {
	if !n.writable.Load() {
		return nil, n.readOnly()
	}
	parts := n.lockParts(keys)
	defer func() {
		for i := len(parts) - 1; i >= 0; i-- {
			parts[i].writeMu.Unlock()
		}
	}()
	tx := &Tx{n: n, now: n.now(), views: make(map[string]*txView)}
	tx.rd = &elemReader{open: tx.snapshot}
	defer func() {
		if tx.rtxn != nil {
			tx.rtxn.Discard()
		}
	}()
	kept := false
	defer func() {
		if !kept { // the views are not kept: release them and their lists
			tx.release()
			tx.dropLists()
		}
	}()
	if err := fn(tx); err != nil {
		return nil, err
	}
	if tx.err != nil {
		return nil, tx.err
	}
	n.enqueue(ctx, tx.out)
	tx.release()
	// From here on the views kept belong to the partition (the apply loop
	// may drop them): the Tx does not touch them again.
	kept = true
	tx.keepViews()
	return &Ack{ws: tx.out, timeout: n.cfg.WriteTimeout}, nil
}

// keepViews caches the Tx's views of keys that still have effects in
// flight, unless an applied event or a failed write made them stale since
// they were taken (caller holds the partitions' write locks).
func (t *Tx) keepViews() {
	for key, v := range t.views {
		p := v.part
		p.mu.Lock()
		if p.vgen == v.gen && len(p.overlay[key]) > 0 && v.kv.cacheable() {
			p.views[key] = v.kv
		} else {
			v.kv.dropList()
		}
		p.mu.Unlock()
	}
}

// dropLists discards the lists of the Tx's views, which are not kept.
func (t *Tx) dropLists() {
	for _, v := range t.views {
		v.kv.dropList()
	}
}

// release ends the Tx's use of its views' snapshots (idempotent).
func (t *Tx) release() {
	for _, v := range t.views {
		v.kv.release()
	}
}

// lockParts locks the partitions of keys in ascending order.
func (n *Node) lockParts(keys [][]byte) []*partition {
	ids := make([]int32, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, oplog.Partition(k, n.cfg.Partitions))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var parts []*partition
	for i, id := range ids {
		if i > 0 && id == ids[i-1] {
			continue
		}
		p := n.parts[id]
		p.writeMu.Lock()
		parts = append(parts, p)
	}
	return parts
}

// enqueue registers ws in the overlay and produces them in order. Events on
// several keys are produced in one Kafka transaction (all or nothing in the
// log); caller holds the write locks of their partitions.
func (n *Node) enqueue(ctx context.Context, ws []*pending) {
	for _, w := range ws {
		p := w.part
		p.mu.Lock()
		p.overlay[string(w.ev.Key)] = append(p.overlay[string(w.ev.Key)], w)
		p.waiters[w.ev.Dot.Seq] = w
		p.mu.Unlock()
	}
	if len(ws) > 1 {
		n.produceTxn(ctx, ws)
		return
	}
	for _, w := range ws {
		rec := oplog.NewRecord(n.cfg.Region, n.cfg.Topic, w.ev, n.cfg.Partitions)
		p := w.part
		p.mu.Lock()
		p.inflight++
		p.mu.Unlock()
		n.prod.TryProduce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
			p.mu.Lock()
			p.inflight--
			if p.inflight == 0 {
				p.changed.Broadcast()
			}
			p.mu.Unlock()
			if err != nil {
				n.failWrite(w, err)
			}
		})
	}
}

// failWrite fails a local event that did not become durable.
func (n *Node) failWrite(w *pending, err error) {
	p := w.part
	p.mu.Lock()
	delete(p.waiters, w.ev.Dot.Seq)
	p.removeOverlay(w)
	p.dropView(string(w.ev.Key))
	p.mu.Unlock()
	reply := "TRYAGAIN write not durable in Kafka: " + oneLine(err.Error())
	switch {
	case errors.Is(err, kgo.ErrMaxBuffered):
		reply = "TRYAGAIN too many writes waiting for Kafka; try again later"
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		// Not worth retrying: RecordSize underestimated it, or the
		// brokers accept less than oplog.MaxRecordBytes.
		reply = "ERR write too large for Kafka: " + oneLine(err.Error())
	}
	w.finish(&Error{Reply: reply, Err: fmt.Errorf("%w: %w", ErrNotDurable, err)})
}

// produceTxn produces ws in one Kafka transaction. Records of earlier
// writes to the same partitions are drained first, so every partition
// receives this origin's events in sequence order.
func (n *Node) produceTxn(ctx context.Context, ws []*pending) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.WriteTimeout)
	defer cancel()
	fail := func(err error) {
		for _, w := range ws {
			n.failWrite(w, err)
		}
	}
	seen := map[*partition]bool{}
	for _, w := range ws {
		if seen[w.part] {
			continue
		}
		seen[w.part] = true
		if err := w.part.drain(ctx); err != nil {
			fail(err)
			return
		}
	}
	n.txnMu.Lock()
	defer n.txnMu.Unlock()
	cl, err := n.txnClient()
	if err != nil {
		fail(err)
		return
	}
	if err := cl.BeginTransaction(); err != nil {
		n.resetTxnClient()
		fail(err)
		return
	}
	for _, w := range ws {
		cl.Produce(ctx, oplog.NewRecord(n.cfg.Region, n.cfg.Topic, w.ev, n.cfg.Partitions), nil)
	}
	err = cl.Flush(ctx)
	commit := kgo.TryCommit
	if err != nil {
		commit = kgo.TryAbort
		cl.AbortBufferedRecords(context.WithoutCancel(ctx))
	}
	if endErr := cl.EndTransaction(ctx, commit); endErr != nil && err == nil {
		err = endErr
	}
	if err != nil {
		n.resetTxnClient()
		fail(err)
	}
}

// txnClient returns the transactional producer, creating it on first use
// (caller holds txnMu).
func (n *Node) txnClient() (*kgo.Client, error) {
	if n.txn != nil {
		return n.txn, nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(n.cfg.Brokers...),
		kgo.TransactionalID("georep-"+n.cfg.Region+"-"+strconv.FormatUint(uint64(n.origin), 10)),
		kgo.DefaultProduceTopic(n.cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.ProduceRequestTimeout(n.cfg.WriteTimeout),
		kgo.TransactionTimeout(max(n.cfg.WriteTimeout*2, 10*time.Second)),
		kgo.WithLogger(oplog.Logger(n.log)),
	)
	if err != nil {
		return nil, err
	}
	n.txn = cl
	return cl, nil
}

// resetTxnClient drops the transactional producer after an error, so the
// next transaction starts from a fresh producer ID (caller holds txnMu).
func (n *Node) resetTxnClient() {
	if n.txn != nil {
		n.txn.Close()
		n.txn = nil
	}
}

func oneLine(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}

// View runs fn against a snapshot of the applied state.
func (n *Node) View(ctx context.Context, fn func(v *Snapshot) error) error {
	return n.db.View(func(txn *badger.Txn) error {
		return fn(&Snapshot{txn: txn, now: n.now(), rd: elemReader{txn: txn}})
	})
}

// Snapshot is a read-only view of applied state.
type Snapshot struct {
	txn *badger.Txn
	now int64
	rd  elemReader // elements of txn (elemread.go)
}

// Get returns key's applied state, nil if none.
func (s *Snapshot) Get(key []byte) (*crdt.Key, error) { return getKey(s.txn, key) }

// Now is the region's wall clock in ms.
func (s *Snapshot) Now() int64 { return s.now }

// Scan iterates applied keys in storage order after the key after.
func (s *Snapshot) Scan(after []byte, fn func(key []byte, k *crdt.Key) bool) error {
	return scan(s.txn, after, fn)
}

// RandomKey returns a random visible key.
func (s *Snapshot) RandomKey() ([]byte, error) { return randomKey(s.txn, s.now) }

func scan(txn *badger.Txn, after []byte, fn func(key []byte, k *crdt.Key) bool) error {
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte{prefixMeta}})
	defer it.Close()
	start := []byte{prefixMeta}
	if after != nil {
		start = append(metaKey(after), 0)
	}
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		key := append([]byte(nil), redisKeyOfMeta(item.Key())...)
		var k *crdt.Key
		if err := item.Value(func(v []byte) error {
			var err error
			k, err = crdt.UnmarshalKey(v)
			return err
		}); err != nil {
			return fmt.Errorf("decode %q: %w", key, err)
		}
		if !fn(key, k) {
			return nil
		}
	}
	return nil
}

func randomKey(txn *badger.Txn, now int64) ([]byte, error) {
	// Seek to a random slot and take the first visible key from there,
	// wrapping around once.
	slot := uint16(rand.IntN(oplog.SlotCount))
	start := []byte{prefixMeta, byte(slot >> 8), byte(slot)}
	var found []byte
	visit := func(it *badger.Iterator) error {
		for ; it.Valid(); it.Next() {
			item := it.Item()
			var k *crdt.Key
			if err := item.Value(func(v []byte) error {
				var err error
				k, err = crdt.UnmarshalKey(v)
				return err
			}); err != nil {
				return err
			}
			if k.Type(now) != crdt.TypeNone {
				found = append([]byte(nil), redisKeyOfMeta(item.Key())...)
				return nil
			}
		}
		return nil
	}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixMeta}})
	defer it.Close()
	it.Seek(start)
	if err := visit(it); err != nil || found != nil {
		return found, err
	}
	it.Rewind()
	return found, visit(it)
}

// FlushAll emits an observed delete of every visible key, partition by
// partition, and waits until they are durable and applied.
func (n *Node) FlushAll(ctx context.Context) error {
	if !n.writable.Load() {
		return n.readOnly()
	}
	var acks []*Ack
	for _, p := range n.parts {
		lo, hi := partitionRange(p.id, n.cfg.Partitions)
		var keys [][]byte
		err := n.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixMeta}})
			defer it.Close()
			for it.Seek(lo); it.Valid() && string(it.Item().Key()) < string(hi); it.Next() {
				keys = append(keys, append([]byte(nil), redisKeyOfMeta(it.Item().Key())...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		p.mu.Lock()
		for k := range p.overlay {
			keys = append(keys, []byte(k))
		}
		p.mu.Unlock()
		for len(keys) > 0 {
			chunk := keys
			if len(chunk) > 1024 {
				chunk = chunk[:1024]
			}
			keys = keys[len(chunk):]
			ack, err := n.Update(ctx, chunk, func(tx *Tx) error {
				for _, key := range chunk {
					k, err := tx.Get(key)
					if err != nil {
						return err
					}
					if k != nil {
						tx.Emit(key, crdt.Op{Kind: crdt.OpDelete})
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			acks = append(acks, ack)
		}
	}
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}
