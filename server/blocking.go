package server

import (
	"bytes"
	"math"
	"sync"
	"time"

	"github.com/georep/georep/crdt"
)

// Blocking list commands: BLPOP, BRPOP, BLMPOP, BLMOVE and BRPOPLPUSH.
//
// A blocking command first runs like its non-blocking form, in one
// Store.Update over all its keys. If every list is empty it registers a
// waiter on each key, and the connection's reader goroutine waits (so the
// commands pipelined behind it wait too, as in Redis) until the waiter is
// served, its timeout passes, the client leaves, or the server stops.
//
// Store.WatchLists signals every key whose list grew, by a local write or
// a replicated event. A signalled key with waiters gets a dispatcher
// goroutine that serves them in arrival order (FIFO per key, across
// clients): each attempt runs the command on that key in an Update of its
// own, on the dispatcher goroutine, holding the waiter's lock. The first
// attempt that finds nothing ends the round; a signal during a round makes
// another one. A waiter that gives up (timeout, client gone, shutdown)
// takes the same lock first, so once it has, no attempt runs for it and
// nothing is popped for a client that is not there to receive it. A
// served waiter's reply goes out after its Ack, like any write's.
//
// While blocking commands wait, keys with waiters are skipped by the
// immediate attempt of a newly arrived blocking command, so it queues
// behind the clients that were there first.
//
// Lock order: waiter.mu, then blockers.mu (an attempt runs under
// waiter.mu and may take blockers.mu through WatchLists); blockers.mu is
// never held while taking a waiter's lock.

// blockers is the server's registry of waiting blocking commands.
type blockers struct {
	mu      sync.Mutex
	keys    map[string]*keyQueue
	blocked int  // registered waiters (INFO blocked_clients)
	closed  bool // Run returned: no more dispatchers
	wg      sync.WaitGroup
}

// keyQueue is the waiters on one key, in arrival order.
type keyQueue struct {
	waiters []*waiter
	pending bool // signalled since the dispatcher last looked
	running bool // a dispatcher serves the key
}

func newBlockers() *blockers { return &blockers{keys: make(map[string]*keyQueue)} }

// waiter is one blocked command.
type waiter struct {
	keys    [][]byte // the keys it waits on (owned)
	attempt func(key []byte) (Reply, bool, error)

	mu         sync.Mutex
	done       bool
	reply      Reply
	err        error
	served     chan struct{} // closed once reply or err is set
	registered bool          // in blockers (blockers.mu)
}

// serve runs one attempt on key unless w is done already. It reports
// whether w is done now (served by this attempt or an earlier one, or
// given up).
func (w *waiter) serve(key []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return true
	}
	r, ok, err := w.attempt(key)
	if !ok && err == nil {
		return false
	}
	w.reply, w.err, w.done = r, err, true
	close(w.served)
	return true
}

// giveUp marks w done unless it was served; false if it was.
func (w *waiter) giveUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	w.done = true
	return true
}

// add queues w on each of its keys.
func (b *blockers) add(w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range w.keys {
		q := b.keys[string(k)]
		if q == nil {
			q = &keyQueue{}
			b.keys[string(k)] = q
		}
		q.waiters = append(q.waiters, w)
	}
	w.registered = true
	b.blocked++
}

// remove takes w off its keys' queues (again: no-op).
func (b *blockers) remove(w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !w.registered {
		return
	}
	w.registered = false
	b.blocked--
	for _, k := range w.keys {
		q := b.keys[string(k)]
		if q == nil {
			continue
		}
		for i, x := range q.waiters {
			if x == w {
				q.waiters = append(q.waiters[:i:i], q.waiters[i+1:]...)
				break
			}
		}
		if len(q.waiters) == 0 && !q.running {
			delete(b.keys, string(k))
		}
	}
}

// waitedOn reports whether a client waits on key.
func (b *blockers) waitedOn(key []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.keys[string(key)]
	return q != nil && len(q.waiters) > 0
}

// count returns the number of waiting commands.
func (b *blockers) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked
}

// signal is the Store.WatchLists function: key's list grew. It never
// blocks.
func (b *blockers) signal(key []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.keys[string(key)]
	if q == nil || len(q.waiters) == 0 || b.closed {
		return
	}
	q.pending = true
	if q.running {
		return
	}
	q.running = true
	b.wg.Add(1)
	go b.dispatch(string(key), q)
}

// dispatch serves key's waiters in order, in rounds, while it is
// signalled.
func (b *blockers) dispatch(key string, q *keyQueue) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		if !q.pending || len(q.waiters) == 0 {
			q.running = false
			if len(q.waiters) == 0 && b.keys[key] == q {
				delete(b.keys, key)
			}
			b.mu.Unlock()
			return
		}
		q.pending = false
		b.mu.Unlock()
		for {
			b.mu.Lock()
			var w *waiter
			if len(q.waiters) > 0 {
				w = q.waiters[0]
			}
			b.mu.Unlock()
			if w == nil || !w.serve([]byte(key)) {
				break
			}
			b.remove(w)
		}
	}
}

// close stops new dispatchers and waits for the running ones.
func (b *blockers) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// blocking is what a blocking command does when it can.
type blocking struct {
	keys  [][]byte // the keys it waits on, in order
	extra [][]byte // keys it also writes (BLMOVE's destination)
	// pop runs the non-blocking command on keys (a subset of the keys, in
	// order); ok is false when every list was empty.
	pop     func(tx Tx, keys [][]byte) (r Reply, ok bool, err error)
	timeout time.Duration // 0: forever
}

// block runs a blocking command: at once if it can, else it waits.
func (cl *call) block(b blocking) (Reply, error) {
	reg := cl.s.blk
	var free [][]byte
	for _, k := range b.keys {
		if !reg.waitedOn(k) {
			free = append(free, k)
		}
	}
	var r Reply
	var ok bool
	err := cl.update(dedupKeys(append(append([][]byte(nil), b.keys...), b.extra...)), func(tx Tx) (err error) {
		r, ok, err = b.pop(tx, free)
		return err
	})
	if err != nil || ok {
		return r, err
	}

	ctx := cl.ctx // attempts replace cl.ctx once w is registered
	w := &waiter{served: make(chan struct{})}
	for _, k := range dedupKeys(b.keys) {
		w.keys = append(w.keys, bytes.Clone(k))
	}
	var extra [][]byte
	for _, k := range b.extra {
		extra = append(extra, bytes.Clone(k))
	}
	w.attempt = func(key []byte) (r Reply, ok bool, err error) {
		ctx := newCmdContext(cl.base, time.Now().Add(cl.s.cfg.WriteTimeout))
		defer ctx.end()
		cl.ctx = ctx
		err = cl.update(dedupKeys(append([][]byte{key}, extra...)), func(tx Tx) error {
			if l, err := listOf(tx, key); err != nil || l == nil {
				return nil // not a list with elements (any more): keep waiting
			}
			r, ok, err = b.pop(tx, [][]byte{key})
			return err
		})
		return r, ok, err
	}
	reg.add(w)
	defer reg.remove(w)
	cl.c.setBlocked(true)
	defer cl.c.setBlocked(false)

	// Elements that arrived before add signalled nobody.
	var ready [][]byte
	err = cl.s.store.View(ctx, func(v View) error {
		for _, k := range w.keys {
			n, err := collLen(v, k, crdt.TypeList)
			if err == nil && n > 0 {
				ready = append(ready, k)
			}
		}
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	for _, k := range ready {
		reg.signal(k)
	}

	gone, stop := cl.c.watchClose()
	defer stop()
	var expired <-chan time.Time
	if b.timeout > 0 {
		t := time.NewTimer(b.timeout)
		defer t.Stop()
		expired = t.C
	}
	var why error
	select {
	case <-w.served:
	case <-expired:
	case <-gone:
	case <-cl.base.Done():
		why = ErrShutdown
	}
	if w.giveUp() {
		cl.ack = nil
		return replyNullArray, why // Redis's timeout reply for every list command
	}
	<-w.served
	return w.reply, w.err
}

// parseTimeout parses a blocking timeout in seconds as Redis does: a
// float (strtold's syntax) rounded up to whole milliseconds; 0 means
// forever, a negative one is an error.
func parseTimeout(b []byte) (time.Duration, error) {
	if len(b) == 0 || isSpaceByte(b[0]) {
		return 0, ErrTimeoutNotFloat
	}
	f, ok := parseStrtod(b, false)
	if !ok {
		return 0, ErrTimeoutNotFloat
	}
	if f == 0 && hasNonZeroDigit(string(bytes.ToLower(b))) {
		f = math.SmallestNonzeroFloat64 // an underflow is a tiny timeout, not 0
	}
	ms := f * 1000
	// Redis converts to a signed 64-bit count of ms: beyond it (inf
	// included) the conversion wraps to a negative number.
	if ms < 0 || ms >= 1<<63 {
		return 0, ErrTimeoutNegative
	}
	ms = math.Ceil(ms)
	if ms >= float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, nil // beyond time.Duration: as good as forever
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func addBlockingCommands(r *registry) {
	r.add(&command{name: "blpop", arity: -3, flags: flagWrite, run: cmdBPop})
	r.add(&command{name: "brpop", arity: -3, flags: flagWrite, run: cmdBPop})
	r.add(&command{name: "blmpop", arity: -5, flags: flagWrite, run: cmdBLMPop})
	r.add(&command{name: "blmove", arity: 6, flags: flagWrite | flagDenyOOM, run: cmdBLMove})
	r.add(&command{name: "brpoplpush", arity: 4, flags: flagWrite | flagDenyOOM, run: cmdBLMove})
}

// cmdBPop is BLPOP and BRPOP: key [key ...] timeout.
func cmdBPop(cl *call) (Reply, error) {
	timeout, err := parseTimeout(cl.args[len(cl.args)-1])
	if err != nil {
		return Reply{}, err
	}
	left := cl.cmd.name == "blpop"
	return cl.block(blocking{
		keys:    cl.args[1 : len(cl.args)-1],
		timeout: timeout,
		pop: func(tx Tx, keys [][]byte) (Reply, bool, error) {
			from, popped, err := mpop(tx, mpopArgs{keys: keys, left: left, count: 1})
			if err != nil || from == nil {
				return Reply{}, false, err
			}
			return array(bulk(from), bulk(popped[0])), true, nil
		},
	})
}

// cmdBLMPop is BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT n].
func cmdBLMPop(cl *call) (Reply, error) {
	m, err := parseMPop(cl.args[2:])
	if err != nil {
		return Reply{}, err
	}
	timeout, err := parseTimeout(cl.args[1])
	if err != nil {
		return Reply{}, err
	}
	return cl.block(blocking{
		keys:    m.keys,
		timeout: timeout,
		pop: func(tx Tx, keys [][]byte) (Reply, bool, error) {
			on := m
			on.keys = keys
			from, popped, err := mpop(tx, on)
			if err != nil || from == nil {
				return Reply{}, false, err
			}
			return keyValues(from, popped), true, nil
		},
	})
}

// cmdBLMove is BLMOVE and BRPOPLPUSH.
func cmdBLMove(cl *call) (Reply, error) {
	src, dst := cl.args[1], cl.args[2]
	fromLeft, toLeft, err := moveEnds(cl.args, cl.cmd.name == "blmove")
	if err != nil {
		return Reply{}, err
	}
	timeout, err := parseTimeout(cl.args[len(cl.args)-1])
	if err != nil {
		return Reply{}, err
	}
	return cl.block(blocking{
		keys:    [][]byte{src},
		extra:   [][]byte{dst},
		timeout: timeout,
		pop: func(tx Tx, keys [][]byte) (Reply, bool, error) {
			if len(keys) == 0 {
				// Others wait on src: only its type matters now.
				_, _, err := collection(tx, src, crdt.TypeList)
				return Reply{}, false, err
			}
			v, ok, err := moveEnd(tx, src, dst, fromLeft, toLeft)
			if err != nil || !ok {
				return Reply{}, false, err
			}
			return bulk(v), true, nil
		},
	})
}
