// Package servertest provides in-memory fakes of the interfaces package
// server consumes, for tests: Store applies effects immediately through
// crdt.Key.Apply and crdt.ApplyList (with the same prepending rules as the
// real store), and Operator answers GEOREP commands from fields.
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
	cells   map[string]keyCells // collection elements per key
	lists   map[string]memKV    // list records per key
	watch   func(key []byte)
	remote  map[crdt.ReplicaID]uint64 // last sequence of simulated peers
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
	return &Store{
		Clock: NewClock(StartMs), Origin: 1,
		keys: make(map[string]*crdt.Key), cells: make(map[string]keyCells), lists: make(map[string]memKV),
		remote: make(map[crdt.ReplicaID]uint64),
	}
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

// MakeType gives key live state of collection type t (one element: hash
// field "f" = "v", set member "m", sorted-set member "m" with score 1, list
// element "e"), as a write by this region would.
func (s *Store) MakeType(key string, t crdt.Type) {
	s.mu.Lock()
	var op crdt.Op
	switch t {
	case crdt.TypeHash:
		op = crdt.Op{Kind: crdt.OpHSet, Elem: []byte("f"), Value: []byte("v")}
	case crdt.TypeSet:
		op = crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("m")}
	case crdt.TypeZSet:
		op = crdt.Op{Kind: crdt.OpZAdd, Elem: []byte("m"), Value: crdt.ScoreBytes(1)}
	case crdt.TypeList:
		l, err := crdt.OpenList(s.lists[key])
		if err != nil {
			panic(err)
		}
		ops, err := l.AppendPush(nil, false, []byte("e"))
		if err != nil {
			panic(err)
		}
		op = ops[0]
	default:
		panic(fmt.Sprintf("servertest: MakeType of %v", t))
	}
	t0 := s.newTx(key)
	t0.Emit([]byte(key), op)
	t0.commit()
	s.mu.Unlock()
	s.notify(t0.grown)
}

// newTx returns a Tx allowed to read and write keys (s.mu held).
func (s *Store) newTx(keys ...string) *tx {
	t := &tx{
		s: s, allowed: make(map[string]bool), overlay: make(map[string]*crdt.Key),
		cellOverlay: make(map[string]keyCells), listOverlay: make(map[string]*cowKV),
	}
	for _, k := range keys {
		t.allowed[k] = true
	}
	return t
}

// notify calls the WatchLists function with each key in grown (s.mu not
// held).
func (s *Store) notify(grown []string) {
	if len(grown) == 0 {
		return
	}
	s.mu.Lock()
	fn := s.watch
	s.mu.Unlock()
	if fn == nil {
		return
	}
	for _, key := range grown {
		fn([]byte(key))
	}
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
	if s.refuse != nil {
		s.mu.Unlock()
		return nil, s.refuse
	}
	t := s.newTx()
	for _, k := range keys {
		t.allowed[string(k)] = true
	}
	err := fn(t)
	if err == nil {
		err = t.bad
	}
	if err != nil {
		s.seq -= uint64(len(t.events)) // dots of discarded events are reused
		s.mu.Unlock()
		return nil, err
	}
	t.commit()
	a := &ack{done: make(chan struct{}), err: s.failAck}
	if s.hold && len(t.events) > 0 {
		s.held = append(s.held, a)
	} else {
		close(a.done)
	}
	s.mu.Unlock()
	s.notify(t.grown)
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
	t := s.newTx()
	for _, key := range s.sortedKeys() {
		t.allowed[key] = true
		t.Emit([]byte(key), crdt.Op{Kind: crdt.OpDelete})
	}
	t.commit()
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
	s           *Store
	allowed     map[string]bool
	overlay     map[string]*crdt.Key
	cellOverlay map[string]keyCells
	listOverlay map[string]*cowKV
	events      []crdt.Event
	grown       []string // keys whose list gained elements
	bad         error
}

// commit makes the tx's writes the store's state (s.mu held).
func (t *tx) commit() {
	for key, k := range t.overlay {
		t.s.keys[key] = k
	}
	for key, kc := range t.cellOverlay {
		t.s.cells[key] = kc
	}
	for key, kv := range t.listOverlay {
		t.s.lists[key] = kv.merged()
	}
	t.s.events = append(t.s.events, t.events...)
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

// Emit implements server.Tx with the real store's rules: an observed
// delete first when the key has expired; removal of the live state of
// other types (a type change, or hidden losers of a type conflict); the
// observed context, observed shares (of the string and of elements),
// Op.Elems of collection removals and increment share identities.
func (t *tx) Emit(key []byte, ops ...crdt.Op) {
	if t.allowed == nil || !t.allowed[string(key)] {
		t.bad = errors.Join(t.bad, fmt.Errorf("servertest: Emit(%q) to a key the update did not list", key))
		return
	}
	if len(ops) == 0 {
		return
	}
	k := t.get(string(key)).Clone()
	if k == nil {
		k = &crdt.Key{}
	}
	kc := t.getCells(string(key)).clone()
	now := t.Now()
	var all []crdt.Op
	startsWithDelete := ops[0].Kind == crdt.OpDelete
	switch {
	case startsWithDelete:
	case k.Stale(now):
		all = append(all, crdt.Op{Kind: crdt.OpDelete})
	default:
		creates := crdt.TypeNone
		for _, op := range ops {
			if ct := op.Creates(); ct != crdt.TypeNone {
				creates = ct
			}
		}
		vt := k.Type(now)
		if creates != crdt.TypeNone && vt != crdt.TypeNone && vt != creates {
			all = append(all, crdt.Op{Kind: crdt.OpDeleteType, Type: vt})
		}
		for _, h := range k.Hidden() {
			if h != creates || creates == crdt.TypeNone {
				all = append(all, crdt.Op{Kind: crdt.OpDeleteType, Type: h})
			}
		}
	}
	all = append(all, ops...)
	strReset := false
	resetTypes := map[crdt.Type]bool{}
	resetElems := map[string]bool{}
	for i := range all {
		op := &all[i]
		switch op.Kind {
		case crdt.OpDelete, crdt.OpSet:
			op.Shares = k.ObservedShares()
			strReset = true
		case crdt.OpDeleteType:
			if op.Type == crdt.TypeString {
				op.Shares = k.ObservedShares()
				strReset = true
			}
		case crdt.OpIncr, crdt.OpIncrFloat:
			op.Start = k.OwnShareStart(t.s.Origin)
			if strReset {
				op.Start = 0
			}
		}
		if types := removedTypes(op); types != nil {
			var lists [][]crdt.ElemShares
			for _, ct := range types {
				lists = append(lists, kc.observed(ct))
			}
			op.Elems = crdt.MergeElemShares(lists...)
			for _, ct := range types {
				resetTypes[ct] = true
			}
			continue
		}
		et := op.ElemType()
		if et == crdt.TypeNone || et == crdt.TypeList {
			continue
		}
		c := kc[et][string(op.Elem)]
		id := fmt.Sprintf("%d:%s", et, op.Elem)
		switch op.Kind {
		case crdt.OpHIncr, crdt.OpHIncrFloat, crdt.OpZIncr:
			if c != nil && !resetTypes[et] && !resetElems[id] {
				op.Start = c.OwnShareStart(t.s.Origin)
			}
		default:
			if c != nil {
				op.Shares = c.ObservedShares()
			}
			resetElems[id] = true
		}
	}
	ev := t.s.stamp(key, k)
	ev.Ops = all
	before := k.Len(crdt.TypeList)
	if err := applyEvent(k, kc, t.listKV(string(key)), &ev); err != nil {
		t.bad = errors.Join(t.bad, err)
		return
	}
	if k.Len(crdt.TypeList) > before {
		t.grown = append(t.grown, string(key))
	}
	t.overlay[string(key)] = k
	t.cellOverlay[string(key)] = kc
	t.events = append(t.events, ev)
}

// applyEvent folds ev into k, its elements and its list the way the
// materializer does (without garbage collection).
func applyEvent(k *crdt.Key, kc keyCells, list crdt.KV, ev *crdt.Event) error {
	if !k.Apply(ev, nil) {
		return nil
	}
	hasList := false
	for i := range ev.Ops {
		op := &ev.Ops[i]
		hasList = hasList || crdt.IsListOp(op)
		if et := op.ElemType(); et == crdt.TypeList {
			continue
		} else if et != crdt.TypeNone {
			before, after := k.ApplyElem(kc.cell(et, op.Elem), ev, op, nil)
			k.AddLen(et, liveDelta(before, after))
			continue
		}
		types := removedTypes(op)
		if types == nil {
			continue
		}
		r := crdt.NewReset(ev, op, types...)
		for _, et := range types {
			for e, c := range kc[et] {
				before, after := r.ApplyTo(et, c, []byte(e))
				k.AddLen(et, liveDelta(before, after))
			}
			if et != crdt.TypeSet {
				for _, es := range r.Elems {
					if kc[et][string(es.Elem)] == nil {
						r.ApplyTo(et, kc.cell(et, es.Elem), es.Elem)
					}
				}
			}
		}
	}
	if hasList {
		return crdt.ApplyList(list, k, ev, crdt.ListOptions{})
	}
	return nil
}

func liveDelta(before, after bool) int64 {
	switch {
	case before && !after:
		return -1
	case !before && after:
		return 1
	}
	return 0
}

// removedTypes returns the collection types a key-level removal resets.
func removedTypes(op *crdt.Op) []crdt.Type {
	switch {
	case op.Kind == crdt.OpDelete:
		return []crdt.Type{crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet}
	case op.Kind == crdt.OpDeleteType && op.Type != crdt.TypeString && op.Type != crdt.TypeList:
		return []crdt.Type{op.Type}
	}
	return nil
}

// keyCells is one key's collection elements by type and element.
type keyCells map[crdt.Type]map[string]*crdt.Cell

func (kc keyCells) clone() keyCells {
	out := make(keyCells, len(kc))
	for t, m := range kc {
		cm := make(map[string]*crdt.Cell, len(m))
		for e, c := range m {
			cm[e] = c.Clone()
		}
		out[t] = cm
	}
	return out
}

func (kc keyCells) cell(t crdt.Type, elem []byte) *crdt.Cell {
	m := kc[t]
	if m == nil {
		m = make(map[string]*crdt.Cell)
		kc[t] = m
	}
	c := m[string(elem)]
	if c == nil {
		c = &crdt.Cell{}
		m[string(elem)] = c
	}
	return c
}

// observed returns Op.Elems of a removal of type t.
func (kc keyCells) observed(t crdt.Type) []crdt.ElemShares {
	return crdt.ObservedElems(kc[t])
}

// sorted returns the live elements of type t, sorted.
func (kc keyCells) sorted(t crdt.Type) []string {
	var out []string
	for e, c := range kc[t] {
		if c.Live() {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

func (t *tx) getCells(key string) keyCells {
	if kc, ok := t.cellOverlay[key]; ok {
		return kc
	}
	return t.s.cells[key]
}

func (t *tx) Elem(key []byte, typ crdt.Type, elem []byte) (*crdt.Cell, error) {
	if err := t.check(key); err != nil {
		return nil, err
	}
	c := t.getCells(string(key))[typ][string(elem)]
	if c == nil || !c.Live() {
		return nil, nil
	}
	return c, nil
}

func (t *tx) ScanElems(key []byte, typ crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	if err := t.check(key); err != nil {
		return err
	}
	kc := t.getCells(string(key))
	for _, e := range kc.sorted(typ) {
		if after != nil && e <= string(after) {
			continue
		}
		if !fn([]byte(e), kc[typ][e]) {
			return nil
		}
	}
	return nil
}

func (t *tx) ScanElemsReverse(key []byte, typ crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error {
	if err := t.check(key); err != nil {
		return err
	}
	kc := t.getCells(string(key))
	es := kc.sorted(typ)
	for i := len(es) - 1; i >= 0; i-- {
		if before != nil && es[i] >= string(before) {
			continue
		}
		if !fn([]byte(es[i]), kc[typ][es[i]]) {
			return nil
		}
	}
	return nil
}

func (t *tx) ScanScores(key []byte, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error {
	if err := t.check(key); err != nil {
		return err
	}
	type sm struct {
		m string
		s float64
	}
	var list []sm
	kc := t.getCells(string(key))
	for _, e := range kc.sorted(crdt.TypeZSet) {
		s, _ := kc[crdt.TypeZSet][e].Score()
		list = append(list, sm{e, s})
	}
	less := func(a sm, s float64, m string) bool {
		if a.s != s {
			return a.s < s
		}
		return a.m < m
	}
	sort.Slice(list, func(i, j int) bool { return less(list[i], list[j].s, list[j].m) != reverse })
	for _, x := range list {
		switch {
		case !reverse && x.s < score, reverse && x.s > score:
			continue
		case member != nil && x.s == score && (!reverse && x.m < string(member) || reverse && x.m > string(member)):
			continue
		}
		if !fn([]byte(x.m), x.s) {
			return nil
		}
	}
	return nil
}

// check fails reads of keys an update did not list.
func (t *tx) check(key []byte) error {
	if t.s.panicOn != "" && string(key) == t.s.panicOn {
		panic("servertest: read of " + t.s.panicOn)
	}
	if t.allowed != nil && !t.allowed[string(key)] {
		return fmt.Errorf("servertest: read of %q, a key the update did not list", key)
	}
	return nil
}

// Receive applies an event another region emitted (a replica of
// Events() of another Store), as the materializer would; a duplicate
// changes nothing. With it, several Stores simulate regions.
func (s *Store) Receive(ev crdt.Event) {
	s.mu.Lock()
	grown := s.receive(&ev)
	s.mu.Unlock()
	s.notify(grown)
}

// receive applies ev and returns its key if its list grew (s.mu held).
func (s *Store) receive(ev *crdt.Event) (grown []string) {
	key := string(ev.Key)
	k := s.keys[key]
	if k == nil {
		k = &crdt.Key{}
		s.keys[key] = k
	}
	kc := s.cells[key]
	if kc == nil {
		kc = make(keyCells)
		s.cells[key] = kc
	}
	list := s.lists[key]
	if list == nil {
		list = make(memKV)
		s.lists[key] = list
	}
	before := k.Len(crdt.TypeList)
	if err := applyEvent(k, kc, list, ev); err != nil {
		panic(fmt.Sprintf("servertest: receive %v: %v", ev.Dot, err))
	}
	if ev.HLC > s.hlc {
		s.hlc = ev.HLC
	}
	if k.Len(crdt.TypeList) > before {
		return []string{key}
	}
	return nil
}

// RemotePush simulates an RPUSH (or LPUSH with left) of values on key made
// by region origin after seeing everything applied here, arriving through
// replication: the event is applied as Receive does (waking blocked
// clients through WatchLists) and returned.
func (s *Store) RemotePush(origin crdt.ReplicaID, key string, left bool, values ...string) crdt.Event {
	s.mu.Lock()
	l, err := crdt.OpenList(s.lists[key])
	if err != nil {
		panic(err)
	}
	vs := make([][]byte, len(values))
	for i, v := range values {
		vs[i] = []byte(v)
	}
	ops, err := l.AppendPush(nil, left, vs...)
	if err != nil {
		panic(err)
	}
	s.remote[origin]++
	s.hlc = crdt.NextHLC(s.hlc, s.Clock.Now())
	ev := crdt.Event{Dot: crdt.Dot{Origin: origin, Seq: s.remote[origin]}, HLC: s.hlc, Key: []byte(key), Ops: ops}
	if k := s.keys[key]; k != nil {
		ev.Observed = k.VV.Clone()
	}
	grown := s.receive(&ev)
	s.mu.Unlock()
	s.notify(grown)
	return ev
}

// List implements server.View: key's list as applied, or through a Tx
// with the Tx's events applied.
func (t *tx) List(key []byte) (*crdt.List, error) {
	if err := t.check(key); err != nil {
		return nil, err
	}
	if t.allowed == nil {
		return crdt.OpenList(t.s.lists[string(key)])
	}
	return crdt.OpenList(t.listKV(string(key)))
}

// listKV returns the Tx's copy-on-write view of key's list records.
func (t *tx) listKV(key string) *cowKV {
	kv := t.listOverlay[key]
	if kv == nil {
		kv = &cowKV{base: t.s.lists[key], over: make(map[string][]byte), gone: make(map[string]bool)}
		t.listOverlay[key] = kv
	}
	return kv
}

// WatchLists implements server.Store: fn is called after every Update,
// FlushAll, Receive or RemotePush that grew a list, without the store's
// lock held.
func (s *Store) WatchLists(fn func(key []byte)) {
	s.mu.Lock()
	s.watch = fn
	s.mu.Unlock()
}

// memKV is a crdt.KV in a map.
type memKV map[string][]byte

func (m memKV) Get(key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return v, ok, nil
}

func (m memKV) Set(key, value []byte) error {
	m[string(key)] = value
	return nil
}

func (m memKV) Delete(key []byte) error {
	delete(m, string(key))
	return nil
}

// cowKV is a crdt.KV over a memKV that keeps its writes apart until
// merged.
type cowKV struct {
	base memKV
	over map[string][]byte
	gone map[string]bool
}

func (c *cowKV) Get(key []byte) ([]byte, bool, error) {
	if c.gone[string(key)] {
		return nil, false, nil
	}
	if v, ok := c.over[string(key)]; ok {
		return v, true, nil
	}
	return c.base.Get(key)
}

func (c *cowKV) Set(key, value []byte) error {
	c.over[string(key)] = value
	delete(c.gone, string(key))
	return nil
}

func (c *cowKV) Delete(key []byte) error {
	delete(c.over, string(key))
	c.gone[string(key)] = true
	return nil
}

// merged returns base with the writes applied (base is modified).
func (c *cowKV) merged() memKV {
	m := c.base
	if m == nil {
		m = make(memKV, len(c.over))
	}
	for k, v := range c.over {
		m[k] = v
	}
	for k := range c.gone {
		delete(m, k)
	}
	return m
}
