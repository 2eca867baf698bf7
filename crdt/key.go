package crdt

import (
	"bytes"
	"math/big"
	"slices"
	"sort"
)

// Reg is one version of a multi-value register.
type Reg struct {
	Dot   Dot
	HLC   HLC
	Value []byte
}

// Share is one origin's counter contribution to a cell. Its identity is
// (Origin, Start): Start is the sequence of the increment that opened it, so
// every region sums the same increments into it. As a baseline (Cell.Bases)
// it records the totals a reset observed at sequence Seq.
type Share struct {
	Origin ReplicaID
	Start  uint64
	Seq    uint64 // sequence of the last increment summed in (or observed)
	HLC    HLC    // HLC of that increment
	Int    int64  // sum of integer increments (wrapping)
	Float  Float  // sum of float increments
	// By is, in a baseline, the origin of the reset that observed it.
	By ReplicaID
}

func (s Share) id() [2]uint64 { return [2]uint64{uint64(s.Origin), s.Start} }

func shareLess(a, b Share) bool {
	if a.Origin != b.Origin {
		return a.Origin < b.Origin
	}
	return a.Start < b.Start
}

// TTL is one version of a key's expiry register; At is ms since the epoch,
// 0 means persist.
type TTL struct {
	Dot Dot
	HLC HLC
	At  int64
}

// Cell is a string value: register versions plus counter shares.
type Cell struct {
	Regs   []Reg   // live versions, sorted by dot
	Shares []Share // increment totals, sorted by (origin, start)
	Bases  []Share // observed-reset baselines, sorted by (origin, start)
	Tomb   Clock   // retained register-reset context
}

// TypeTomb is a retained OpDeleteType context.
type TypeTomb struct {
	Type Type
	Ctx  Clock
}

// TypeWrite records the latest write of a collection type by one origin,
// for the type-conflict rule.
type TypeWrite struct {
	Type   Type
	Origin ReplicaID
	Seq    uint64
	HLC    HLC
}

// Key is the merged state of one Redis key (without collection elements,
// which the materializer stores one entry each).
type Key struct {
	VV      Clock // per origin, the greatest sequence applied to this key
	Del     Clock // retained OpDelete context
	TypeDel []TypeTomb
	TTLs    []TTL // live expiry versions, sorted by dot
	TTLTomb Clock // retained OpExpire context
	Str     Cell
	Writes  []TypeWrite     // sorted by (type, origin)
	Lens    [numTypes]int64 // live elements per collection type, kept by the materializer
}

// Apply folds ev's key-level ops into k and reports whether ev is new
// (false for a duplicate). stable is the local stable clock of the key's
// partition (nil: keep every tombstone); it bounds how long tombstones are
// kept. When ev has element ops, Apply does not collect garbage: the caller
// applies them with ApplyElem (and ResetElem) first, while the tombstones
// that may cover them are still there, then calls GC(stable).
func (k *Key) Apply(ev *Event, stable Clock) bool {
	if ev.Dot.Seq <= k.VV.Get(ev.Dot.Origin) {
		return false
	}
	k.VV = k.VV.With(ev.Dot.Origin, ev.Dot.Seq)
	elems := false
	for i := range ev.Ops {
		k.applyOp(ev, &ev.Ops[i])
		elems = elems || ev.Ops[i].ElemType() != TypeNone
	}
	if !elems {
		k.GC(stable)
	}
	return true
}

func (k *Key) applyOp(ev *Event, op *Op) {
	ctx := ev.Observed
	switch op.Kind {
	case OpDelete:
		k.Str.reset(ev.Dot.Origin, ctx, op.Shares)
		k.TTLs = dropTTLs(k.TTLs, ctx)
		k.Writes = dropWrites(k.Writes, 0, ctx)
		k.Del = k.Del.Merge(ctx)
	case OpDeleteType:
		if op.Type == TypeString {
			k.Str.reset(ev.Dot.Origin, ctx, op.Shares)
			k.Str.Tomb = k.Str.Tomb.Merge(ctx)
			return
		}
		k.Writes = dropWrites(k.Writes, op.Type, ctx)
		k.TypeDel = mergeTypeTomb(k.TypeDel, op.Type, ctx)
	case OpSet:
		k.Str.reset(ev.Dot.Origin, ctx, op.Shares)
		k.Str.Tomb = k.Str.Tomb.Merge(ctx)
		if !k.Del.Covers(ev.Dot) && !k.Str.Tomb.Covers(ev.Dot) && !k.typeDeleted(TypeString, ev.Dot) {
			k.Str.Regs = addReg(k.Str.Regs, Reg{Dot: ev.Dot, HLC: ev.HLC, Value: op.Value})
		}
	case OpIncr, OpIncrFloat:
		k.Str.incr(ev, op)
	case OpExpire:
		k.TTLs = dropTTLs(k.TTLs, ctx)
		k.TTLTomb = k.TTLTomb.Merge(ctx)
		if !k.Del.Covers(ev.Dot) && !k.TTLTomb.Covers(ev.Dot) {
			k.TTLs = addTTL(k.TTLs, TTL{Dot: ev.Dot, HLC: ev.HLC, At: op.At})
		}
	}
}

// NoteWrite records a write of collection type t by ev for the type rule,
// unless a retained delete covers it. Collection ops call it.
func (k *Key) NoteWrite(t Type, ev *Event) {
	if k.Del.Covers(ev.Dot) || k.typeDeleted(t, ev.Dot) {
		return
	}
	for i := range k.Writes {
		w := &k.Writes[i]
		if w.Type == t && w.Origin == ev.Dot.Origin {
			if ev.Dot.Seq > w.Seq {
				w.Seq, w.HLC = ev.Dot.Seq, ev.HLC
			}
			return
		}
	}
	k.Writes = append(k.Writes, TypeWrite{Type: t, Origin: ev.Dot.Origin, Seq: ev.Dot.Seq, HLC: ev.HLC})
	sort.Slice(k.Writes, func(i, j int) bool {
		a, b := k.Writes[i], k.Writes[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Origin < b.Origin
	})
}

// Len returns the number of live elements of collection type t.
func (k *Key) Len(t Type) int64 { return k.Lens[t] }

// AddLen adjusts the live element count of type t by d (the materializer
// calls it with ApplyElem's liveness change).
func (k *Key) AddLen(t Type, d int64) { k.Lens[t] += d }

// Dead reports whether an element of type t written at d is covered by a
// retained removal of the whole key or of its type.
func (k *Key) Dead(t Type, d Dot) bool { return k.Del.Covers(d) || k.typeDeleted(t, d) }

func (k *Key) typeDeleted(t Type, d Dot) bool {
	for _, tt := range k.TypeDel {
		if tt.Type == t {
			return tt.Ctx.Covers(d)
		}
	}
	return false
}

// GC drops tombstones and fully reset counter shares that stable makes
// unnecessary. A nil stable keeps everything.
func (k *Key) GC(stable Clock) {
	if stable == nil {
		return
	}
	k.Del = k.Del.Prune(stable)
	k.TTLTomb = k.TTLTomb.Prune(stable)
	k.Str.Tomb = k.Str.Tomb.Prune(stable)
	out := k.TypeDel[:0]
	for _, tt := range k.TypeDel {
		if tt.Ctx = tt.Ctx.Prune(stable); tt.Ctx != nil {
			out = append(out, tt)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	k.TypeDel = out
	k.Str.gcShares(stable)
}

// Empty reports whether k holds nothing worth storing: no state and no
// tombstone. Its VV may then be forgotten too, because every event it
// counted has been applied or removed.
func (k *Key) Empty() bool {
	return len(k.Str.Regs) == 0 && len(k.Str.Shares) == 0 && len(k.Str.Bases) == 0 &&
		k.Str.Tomb == nil && k.Del == nil && k.TypeDel == nil && len(k.TTLs) == 0 &&
		k.TTLTomb == nil && len(k.Writes) == 0 && k.Lens == [numTypes]int64{}
}

func (c *Cell) reset(by ReplicaID, ctx Clock, observed []Share) {
	out := c.Regs[:0]
	for _, r := range c.Regs {
		if !ctx.Covers(r.Dot) {
			out = append(out, r)
		}
	}
	c.Regs = out
	for _, s := range observed {
		s.By = by
		c.Bases = mergeBase(c.Bases, s)
	}
}

func (c *Cell) incr(ev *Event, op *Op) {
	start := op.startOr(ev.Dot.Seq)
	id := Share{Origin: ev.Dot.Origin, Start: start}
	i := sort.Search(len(c.Shares), func(i int) bool { return !shareLess(c.Shares[i], id) })
	if i == len(c.Shares) || c.Shares[i].id() != id.id() {
		c.Shares = append(c.Shares, Share{})
		copy(c.Shares[i+1:], c.Shares[i:])
		c.Shares[i] = id
	}
	s := &c.Shares[i]
	if op.Kind == OpIncr {
		s.Int += op.Int
	} else {
		s.Float = AddFloat(s.Float, op.Float)
	}
	s.Seq, s.HLC = ev.Dot.Seq, ev.HLC
}

// startOr returns the share identity an increment op names, 0 meaning the
// increment's own event.
func (op *Op) startOr(seq uint64) uint64 {
	if op.Start > 0 {
		return op.Start
	}
	return seq
}

func (c *Cell) gcShares(stable Clock) {
	bases := c.Bases[:0]
	for _, b := range c.Bases {
		if stable.Get(b.Origin) < b.Seq {
			bases = append(bases, b)
			continue
		}
		i := sort.Search(len(c.Shares), func(i int) bool { return !shareLess(c.Shares[i], b) })
		if i < len(c.Shares) && c.Shares[i].id() == b.id() {
			if c.Shares[i].Seq > b.Seq || (b.By != b.Origin && !c.superseded(b)) {
				// Increments after the reset, or the share's origin may
				// not have seen the reset and can still add to this share:
				// every region must keep summing it on the same scale. (A
				// reset made by the share's own origin, or the origin
				// opening a newer share, shows it will not add to it.)
				bases = append(bases, b)
				continue
			}
			c.Shares = append(c.Shares[:i], c.Shares[i+1:]...)
		}
		// Fully reset, no covered increment can still arrive, and the
		// origin has moved to a newer share: drop.
	}
	if len(bases) == 0 {
		bases = nil
	}
	c.Bases = bases
	if len(c.Shares) == 0 {
		c.Shares = nil
	}
}

// superseded reports whether b's origin has opened a newer share than b's:
// it does so only after seeing its old share fully reset (OwnShareStart), so
// it never adds to the old one again.
func (c *Cell) superseded(b Share) bool {
	for _, s := range c.Shares {
		if s.Origin == b.Origin && s.Start > b.Start {
			return true
		}
	}
	return false
}

func mergeBase(bases []Share, s Share) []Share {
	i := sort.Search(len(bases), func(i int) bool { return !shareLess(bases[i], s) })
	if i < len(bases) && bases[i].id() == s.id() {
		b := &bases[i]
		switch {
		case s.Seq > b.Seq:
			*b = s
		case s.Seq == b.Seq && b.By != b.Origin && (s.By == s.Origin || s.By < b.By):
			// Same totals observed: keep, in every arrival order, the
			// reset by the share's own origin, else the smaller ID.
			b.By = s.By
		}
		return bases
	}
	bases = append(bases, Share{})
	copy(bases[i+1:], bases[i:])
	bases[i] = s
	return bases
}

// addReg inserts r into regs, sorted by dot, after any equal dot.
func addReg(regs []Reg, r Reg) []Reg {
	i := len(regs)
	for i > 0 && dotLess(r.Dot, regs[i-1].Dot) {
		i--
	}
	return slices.Insert(regs, i, r)
}

// addTTL inserts t into ts, sorted by dot, after any equal dot.
func addTTL(ts []TTL, t TTL) []TTL {
	i := len(ts)
	for i > 0 && dotLess(t.Dot, ts[i-1].Dot) {
		i--
	}
	return slices.Insert(ts, i, t)
}

func dotLess(a, b Dot) bool {
	if a.Origin != b.Origin {
		return a.Origin < b.Origin
	}
	return a.Seq < b.Seq
}

func dropTTLs(ts []TTL, ctx Clock) []TTL {
	out := ts[:0]
	for _, t := range ts {
		if !ctx.Covers(t.Dot) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func dropWrites(ws []TypeWrite, t Type, ctx Clock) []TypeWrite {
	out := ws[:0]
	for _, w := range ws {
		if (t != 0 && w.Type != t) || !ctx.Covers(Dot{w.Origin, w.Seq}) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func mergeTypeTomb(tts []TypeTomb, t Type, ctx Clock) []TypeTomb {
	for i := range tts {
		if tts[i].Type == t {
			tts[i].Ctx = tts[i].Ctx.Merge(ctx)
			return tts
		}
	}
	tts = append(tts, TypeTomb{Type: t, Ctx: ctx.Clone()})
	sort.Slice(tts, func(i, j int) bool { return tts[i].Type < tts[j].Type })
	return tts
}

// liveShares returns the shares with increments no reset has observed,
// each paired with its baseline (zero if none).
func (c *Cell) liveShares() (live []Share, bases []Share) {
	for _, s := range c.Shares {
		var b Share
		i := sort.Search(len(c.Bases), func(i int) bool { return !shareLess(c.Bases[i], s) })
		if i < len(c.Bases) && c.Bases[i].id() == s.id() {
			b = c.Bases[i]
		}
		if b.Seq >= s.Seq {
			continue
		}
		live = append(live, s)
		bases = append(bases, b)
	}
	return live, bases
}

// latest returns the stamp of the cell's latest live write.
func (c *Cell) latest() (h HLC, o ReplicaID, ok bool) {
	for _, r := range c.Regs {
		if !ok || wins(r.HLC, r.Dot.Origin, h, o) {
			h, o, ok = r.HLC, r.Dot.Origin, true
		}
	}
	live, _ := c.liveShares()
	for _, s := range live {
		if !ok || wins(s.HLC, s.Origin, h, o) {
			h, o, ok = s.HLC, s.Origin, true
		}
	}
	return h, o, ok
}

// Value returns the cell's visible value: the winning register version plus
// the increments no reset observed.
func (c *Cell) Value() ([]byte, bool) {
	var reg *Reg
	for i := range c.Regs {
		r := &c.Regs[i]
		if reg == nil || wins(r.HLC, r.Dot.Origin, reg.HLC, reg.Dot.Origin) {
			reg = r
		}
	}
	live, bases := c.liveShares()
	if len(live) == 0 {
		if reg == nil {
			return nil, false
		}
		return reg.Value, true
	}
	var sumInt int64
	sumFloat := new(big.Float).SetPrec(floatPrec)
	for i, s := range live {
		sumInt += s.Int - bases[i].Int
		d := new(big.Float).SetPrec(floatPrec).Sub(s.Float.Big(), bases[i].Float.Big())
		sumFloat.Add(sumFloat, d)
	}
	var baseInt int64
	baseIsInt := true
	var base []byte
	if reg != nil {
		base = reg.Value
		baseInt, baseIsInt = ParseInt(base)
	}
	if baseIsInt && sumFloat.Sign() == 0 {
		return []byte(FormatInt(baseInt + sumInt)), true
	}
	bf := new(big.Float).SetPrec(floatPrec)
	if reg != nil {
		f, ok := ParseFloat(base)
		if !ok {
			return reg.Value, true // a non-numeric base wins over increments
		}
		bf = f.Big()
	}
	bf.Add(bf, new(big.Float).SetPrec(floatPrec).SetInt64(sumInt))
	bf.Add(bf, sumFloat)
	return []byte(FormatFloat(FloatFromBig(bf))), true
}

// Type returns the key's visible type (ignoring expiry) and the stamp of
// its latest live write.
func (k *Key) visibleType() (Type, HLC, ReplicaID) {
	t := TypeNone
	var h HLC
	var o ReplicaID
	if sh, so, ok := k.Str.latest(); ok {
		t, h, o = TypeString, sh, so
	}
	for _, w := range k.Writes {
		if k.Lens[w.Type] > 0 {
			if t == TypeNone || wins(w.HLC, w.Origin, h, o) {
				t, h, o = w.Type, w.HLC, w.Origin
			}
		}
	}
	return t, h, o
}

// Expiry returns the winning expiry (0: none) and the region that owns it:
// among concurrent versions PERSIST wins, then the latest time, then the
// smaller instance ID.
func (k *Key) Expiry() (at int64, owner ReplicaID) {
	for i, t := range k.TTLs {
		if t.At == 0 {
			return 0, 0
		}
		if i == 0 || t.At > at || (t.At == at && t.Dot.Origin < owner) {
			at, owner = t.At, t.Dot.Origin
		}
	}
	return at, owner
}

// Expired reports whether k's winning expiry has passed at now (ms): like
// Redis, a key is still visible in the millisecond it expires at.
func (k *Key) Expired(now int64) bool {
	at, _ := k.Expiry()
	return at != 0 && at < now
}

// Stale reports whether a write to k at time now must first remove what is
// left of it with an observed delete: k has expired, or it is not visible
// but still holds TTL versions (a DEL and a concurrent EXPIRE leave the
// EXPIRE's TTL behind; a new key must not inherit it).
func (k *Key) Stale(now int64) bool {
	if k == nil {
		return false
	}
	return k.Expired(now) || (len(k.TTLs) > 0 && k.Type(now) == TypeNone)
}

// Type returns the visible type at time now (ms): TypeNone when the key does
// not exist or has expired.
func (k *Key) Type(now int64) Type {
	if k == nil || k.Expired(now) {
		return TypeNone
	}
	t, _, _ := k.visibleType()
	return t
}

// Hidden returns the types that hold live state but are not visible: the
// losers of a type conflict, which the next local write removes.
func (k *Key) Hidden() []Type {
	vt, _, _ := k.visibleType()
	var out []Type
	if vt != TypeString {
		if _, _, ok := k.Str.latest(); ok {
			out = append(out, TypeString)
		}
	}
	{
		seen := map[Type]bool{vt: true}
		for _, w := range k.Writes {
			if k.Lens[w.Type] > 0 && !seen[w.Type] {
				seen[w.Type] = true
				out = append(out, w.Type)
			}
		}
	}
	return out
}

// String returns the visible string value at time now.
func (k *Key) String(now int64) ([]byte, bool) {
	if k.Type(now) != TypeString {
		return nil, false
	}
	return k.Str.Value()
}

// ObservedShares returns the counter totals a reset of the string cell made
// now must carry.
func (k *Key) ObservedShares() []Share { return k.Str.ObservedShares() }

// ObservedShares returns the counter totals a reset of c made now must carry.
func (c *Cell) ObservedShares() []Share {
	if len(c.Shares) == 0 {
		return nil
	}
	return append([]Share(nil), c.Shares...)
}

// OwnShareStart returns the identity (Start) an increment of the string by
// origin o must name; see Cell.OwnShareStart.
func (k *Key) OwnShareStart(o ReplicaID) uint64 { return k.Str.OwnShareStart(o) }

// OwnShareStart returns the identity (Start) an increment by origin o must
// name: its existing share if it has one that no reset has fully observed,
// else 0 (open a new share). A fully reset share is not continued: its
// total still holds the reset increments, and subtracting them again at
// 64-bit precision would lose the low digits of float increments added
// after the reset.
func (c *Cell) OwnShareStart(o ReplicaID) uint64 {
	var own Share
	for _, s := range c.Shares {
		if s.Origin == o && s.Start > own.Start {
			own = s
		}
	}
	for _, b := range c.Bases {
		if b.id() == own.id() && b.Seq >= own.Seq {
			return 0
		}
	}
	return own.Start
}

// Clone returns a deep copy of k.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	c.VV = k.VV.Clone()
	c.Del = k.Del.Clone()
	c.TTLTomb = k.TTLTomb.Clone()
	c.TypeDel = nil
	for _, tt := range k.TypeDel {
		c.TypeDel = append(c.TypeDel, TypeTomb{Type: tt.Type, Ctx: tt.Ctx.Clone()})
	}
	c.TTLs = append([]TTL(nil), k.TTLs...)
	c.Str.Regs = append([]Reg(nil), k.Str.Regs...)
	c.Str.Shares = append([]Share(nil), k.Str.Shares...)
	c.Str.Bases = append([]Share(nil), k.Str.Bases...)
	c.Str.Tomb = k.Str.Tomb.Clone()
	c.Writes = append([]TypeWrite(nil), k.Writes...)
	return &c
}

// Equal reports whether two states encode identically.
func (k *Key) Equal(o *Key) bool { return bytes.Equal(k.Marshal(nil), o.Marshal(nil)) }
