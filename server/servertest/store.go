// Package servertest provides in-memory fakes of the interfaces package
// server consumes, for tests: Store applies effects immediately through
// crdt.Key.Apply (with the same prepending rules as the real store), and
// Operator answers GEOREP commands from fields.
package servertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/server"
)

// Clock is a settable wall clock in ms.
type Clock struct {
	mu sync.Mutex
	ms int64
}

// NewClock returns a clock at ms.
func NewClock(ms int64) *Clock { return &Clock{ms: ms} }

// Now returns the time in ms.
func (c *Clock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ms
}

// Advance moves the clock forward by ms.
func (c *Clock) Advance(ms int64) {
	c.mu.Lock()
	c.ms += ms
	c.mu.Unlock()
}

// StartMs is the clock time of a new Store: 2023-11-14T22:13:20Z.
const StartMs = 1_700_000_000_000

// Store is an in-memory server.Store. Updates apply their events at once
// (View sees them before they are acknowledged, which the real store does
// not do); acknowledgements can be held back and failed for tests.
// All methods are safe for concurrent use.
type Store struct {
	Clock  *Clock
	Origin crdt.ReplicaID

	mu      sync.Mutex
	keys    map[string]*crdt.Key
	seq     uint64
	hlc     crdt.HLC
	events  []crdt.Event
	hold    bool
	held    []*ack
	failAck error
	refuse  error
	panicOn string
	flushes int
}

// PanicOnGet makes Get of key panic, to test the server's recovery.
func (s *Store) PanicOnGet(key string) {
	s.mu.Lock()
	s.panicOn = key
	s.mu.Unlock()
}

var _ server.Store = (*Store)(nil)

// NewStore returns an empty store of region instance 1.
func NewStore() *Store {
	return &Store{Clock: NewClock(StartMs), Origin: 1, keys: make(map[string]*crdt.Key)}
}

// HoldAcks makes the acks of later updates wait until ReleaseAcks.
func (s *Store) HoldAcks() {
	s.mu.Lock()
	s.hold = true
	s.mu.Unlock()
}

// ReleaseAcks resolves every held ack (with the FailAcks error, if any)
// and stops holding.
func (s *Store) ReleaseAcks() {
	s.mu.Lock()
	held := s.held
	s.held, s.hold = nil, false
	s.mu.Unlock()
	for _, a := range held {
		close(a.done)
	}
}

// Held returns the number of acks being held.
func (s *Store) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// FailAcks makes acks of later updates fail with err (nil: succeed).
func (s *Store) FailAcks(err error) {
	s.mu.Lock()
	s.failAck = err
	s.mu.Unlock()
}

// Refuse makes later updates fail before emitting with err (nil: accept),
// like a region that is not in sync.
func (s *Store) Refuse(err error) {
	s.mu.Lock()
	s.refuse = err
	s.mu.Unlock()
}

// Events returns a copy of the events emitted so far.
func (s *Store) Events() []crdt.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]crdt.Event(nil), s.events...)
}

// Flushes returns how many times FlushAll ran.
func (s *Store) Flushes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushes
}

// Key returns a copy of key's state (nil if none).
func (s *Store) Key(key string) *crdt.Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key].Clone()
}

// MakeType gives key live state of collection type t (one element), as a
// collection write by this region would, so that tests can reach WRONGTYPE
// paths before collection commands exist.
func (s *Store) MakeType(key string, t crdt.Type) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	if k == nil {
		k = &crdt.Key{}
		s.keys[key] = k
	}
	ev := s.stamp([]byte(key), k)
	k.VV = k.VV.With(ev.Dot.Origin, ev.Dot.Seq)
	k.NoteWrite(t, &ev)
	k.AddLen(t, 1)
}

// stamp returns an event on key with the next dot and HLC and k's VV as
// observed context. s.mu is held.
func (s *Store) stamp(key []byte, k *crdt.Key) crdt.Event {
	s.seq++
	s.hlc = crdt.NextHLC(s.hlc, s.Clock.Now())
	return crdt.Event{
		Dot:      crdt.Dot{Origin: s.Origin, Seq: s.seq},
		HLC:      s.hlc,
		Key:      bytes.Clone(key),
		Observed: k.VV.Clone(),
	}
}

// View implements server.Store.
func (s *Store) View(ctx context.Context, fn func(v server.View) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(&tx{s: s})
}

// Update implements server.Store. fn runs under the store lock against an
// overlay; its events are applied to the store when it returns nil.
func (s *Store) Update(ctx context.Context, keys [][]byte, fn func(t server.Tx) error) (server.Ack, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		return nil, s.refuse
	}
	t := &tx{s: s, allowed: make(map[string]bool), overlay: make(map[string]*crdt.Key)}
	for _, k := range keys {
		t.allowed[string(k)] = true
	}
	if err := fn(t); err != nil {
		s.seq -= uint64(len(t.events)) // dots of discarded events are reused
		return nil, err
	}
	if t.bad != nil {
		return nil, t.bad
	}
	for key, k := range t.overlay {
		s.keys[key] = k
	}
	s.events = append(s.events, t.events...)
	a := &ack{done: make(chan struct{}), err: s.failAck}
	if s.hold && len(t.events) > 0 {
		s.held = append(s.held, a)
	} else {
		close(a.done)
	}
	return a, nil
}

// FlushAll implements server.Store: an observed delete of every key.
func (s *Store) FlushAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	for _, key := range s.sortedKeys() {
		k := s.keys[key]
		ev := s.stamp([]byte(key), k)
		ev.Ops = []crdt.Op{{Kind: crdt.OpDelete, Shares: k.ObservedShares()}}
		k.Apply(&ev, nil)
		s.events = append(s.events, ev)
	}
	return nil
}

func (s *Store) sortedKeys() []string {
	out := make([]string, 0, len(s.keys))
	for k := range s.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type ack struct {
	done chan struct{}
	err  error
}

func (a *ack) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tx is a View (allowed == nil) or a Tx over an overlay of cloned keys.
type tx struct {
	s       *Store
	allowed map[string]bool
	overlay map[string]*crdt.Key
	events  []crdt.Event
	bad     error
}

func (t *tx) Now() int64 { return t.s.Clock.Now() }

func (t *tx) Origin() crdt.ReplicaID { return t.s.Origin }

func (t *tx) get(key string) *crdt.Key {
	if k, ok := t.overlay[key]; ok {
		return k
	}
	return t.s.keys[key]
}

func (t *tx) Get(key []byte) (*crdt.Key, error) {
	if t.s.panicOn != "" && string(key) == t.s.panicOn {
		panic("servertest: Get(" + t.s.panicOn + ")")
	}
	if t.allowed != nil && !t.allowed[string(key)] {
		return nil, fmt.Errorf("servertest: Get(%q) of a key the update did not list", key)
	}
	return t.get(string(key)), nil
}

func (t *tx) Scan(after []byte, fn func(key []byte, k *crdt.Key) bool) error {
	names := t.s.sortedKeys()
	for key := range t.overlay {
		if _, ok := t.s.keys[key]; !ok {
			names = append(names, key)
		}
	}
	sort.Strings(names)
	for _, key := range names {
		if after != nil && key <= string(after) {
			continue
		}
		if !fn([]byte(key), t.get(key)) {
			return nil
		}
	}
	return nil
}

func (t *tx) RandomKey() ([]byte, error) {
	now := t.Now()
	for _, key := range t.s.sortedKeys() {
		if t.get(key).Type(now) != crdt.TypeNone {
			return []byte(key), nil
		}
	}
	return nil, nil
}

// writtenType returns the type ops write (TypeNone for TTL-only ops).
func writtenType(ops []crdt.Op) crdt.Type {
	for _, op := range ops {
		switch op.Kind {
		case crdt.OpSet, crdt.OpIncr, crdt.OpIncrFloat:
			return crdt.TypeString
		}
	}
	return crdt.TypeNone
}

// Emit implements server.Tx with the real store's rules: an observed
// delete first when the key has expired; removal of the live state of
// other types (a type change, or hidden losers of a type conflict); the
// observed context, observed shares and increment share identity.
func (t *tx) Emit(key []byte, ops ...crdt.Op) {
	if t.allowed == nil || !t.allowed[string(key)] {
		t.bad = errors.Join(t.bad, fmt.Errorf("servertest: Emit(%q) to a key the update did not list", key))
		return
	}
	k := t.get(string(key)).Clone()
	if k == nil {
		k = &crdt.Key{}
	}
	now := t.Now()
	var all []crdt.Op
	startsWithDelete := len(ops) > 0 && ops[0].Kind == crdt.OpDelete
	switch {
	case startsWithDelete:
	case k.Expired(now):
		all = append(all, crdt.Op{Kind: crdt.OpDelete})
	default:
		w := writtenType(ops)
		live := k.Hidden()
		if vt := k.Type(now); vt != crdt.TypeNone && w != crdt.TypeNone {
			live = append(live, vt)
		}
		for _, typ := range live {
			if typ != w {
				all = append(all, crdt.Op{Kind: crdt.OpDeleteType, Type: typ})
			}
		}
	}
	all = append(all, ops...)
	for i := range all {
		op := &all[i]
		switch {
		case op.Kind == crdt.OpDelete, op.Kind == crdt.OpSet,
			op.Kind == crdt.OpDeleteType && op.Type == crdt.TypeString:
			op.Shares = k.ObservedShares()
		case op.Kind == crdt.OpIncr, op.Kind == crdt.OpIncrFloat:
			op.Start = k.OwnShareStart(t.s.Origin)
		}
	}
	ev := t.s.stamp(key, k)
	ev.Ops = all
	k.Apply(&ev, nil)
	t.overlay[string(key)] = k
	t.events = append(t.events, ev)
}
