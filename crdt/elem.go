package crdt

import (
	"encoding/binary"
	"math"
	"math/big"
)

// Collections (hashes, sets, sorted sets) keep one Cell per element, stored
// by the materializer beside the key's state. An element is live when its
// cell has a register version or increments no reset observed:
//
//	hash field:      Cell.Value() (LWW string register or counter)
//	set member:      a live register version (values are empty)
//	sorted set:      score = LWW base (ZADD) + increments no reset observed
//
// Key.Apply handles an event's key-level ops and decides whether the event is
// new; the caller then applies each element op with ApplyElem, and for an
// OpDelete or OpDeleteType of a collection resets every stored element with
// ResetElem (plus the elements Op.Elems names that are not stored, so a
// late increment meets its baseline).

// Live reports whether the element holds a value.
func (c *Cell) Live() bool {
	if len(c.Regs) > 0 {
		return true
	}
	live, _ := c.liveShares()
	return len(live) > 0
}

// Empty reports whether c holds nothing worth storing.
func (c *Cell) Empty() bool {
	return len(c.Regs) == 0 && len(c.Shares) == 0 && len(c.Bases) == 0 && c.Tomb == nil
}

// GC drops what stable makes unnecessary (see Key.GC).
func (c *Cell) GC(stable Clock) {
	if stable == nil {
		return
	}
	c.Tomb = c.Tomb.Prune(stable)
	c.gcShares(stable)
}

// ApplyElem folds element op (of ev, which Key.Apply admitted) into the
// element's cell c. It reports whether the element was live before and
// after, so the caller can keep Key.Len (Key.AddLen). Call Key.GC after the
// event's last element op, not before (see Key.Apply).
func (k *Key) ApplyElem(c *Cell, ev *Event, op *Op, stable Clock) (before, after bool) {
	before = c.Live()
	t := op.ElemType()
	switch op.Kind {
	case OpHSet, OpSAdd, OpZAdd:
		c.reset(ev.Dot.Origin, ev.Observed, op.Shares)
		c.Tomb = c.Tomb.Merge(ev.Observed)
		if !k.Dead(t, ev.Dot) && !c.Tomb.Covers(ev.Dot) {
			c.Regs = addReg(c.Regs, Reg{Dot: ev.Dot, HLC: ev.HLC, Value: op.Value})
		}
		// Counted for the type rule even when a removal of the element that
		// observed it came first, as when it comes first (element removals
		// keep Writes): otherwise TYPE depends on arrival order.
		k.NoteWrite(t, ev)
	case OpHDel, OpSRem, OpZRem:
		c.reset(ev.Dot.Origin, ev.Observed, op.Shares)
		c.Tomb = c.Tomb.Merge(ev.Observed)
	case OpHIncr, OpHIncrFloat:
		inc := *op
		inc.Kind = OpIncr
		if op.Kind == OpHIncrFloat {
			inc.Kind = OpIncrFloat
		}
		c.incr(ev, &inc)
		k.NoteWrite(t, ev)
	case OpZIncr:
		inc := *op
		inc.Kind = OpIncrFloat
		c.incr(ev, &inc)
		k.NoteWrite(t, ev)
	}
	c.GC(stable)
	return before, c.Live()
}

// ResetElem applies a key-level removal (OpDelete, or OpDeleteType of the
// element's type) of ev to one element: the versions ev observed go, and the
// increments up to the observed totals shares. It reports liveness before
// and after.
func (k *Key) ResetElem(c *Cell, ev *Event, shares []Share, stable Clock) (before, after bool) {
	before = c.Live()
	c.reset(ev.Dot.Origin, ev.Observed, shares)
	c.GC(stable)
	return before, c.Live()
}

// ObservedElems returns the Op.Elems a key-level removal must carry, given
// every element's cell.
func ObservedElems(elems map[string]*Cell) []ElemShares {
	var out []ElemShares
	for e, c := range elems {
		if len(c.Shares) > 0 {
			out = append(out, ElemShares{Elem: []byte(e), Shares: c.ObservedShares()})
		}
	}
	sortElemShares(out)
	return out
}

func sortElemShares(es []ElemShares) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && string(es[j].Elem) < string(es[j-1].Elem); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// ScoreBytes encodes a sorted-set score for OpZAdd.
func ScoreBytes(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }

// scorePrec is the precision Score sums at.
const scorePrec = 512

// Score returns a sorted-set member's score: the winning ZADD base plus the
// increments no reset observed, rounded once to a double.
func (c *Cell) Score() (float64, bool) {
	var reg *Reg
	for i := range c.Regs {
		r := &c.Regs[i]
		if reg == nil || wins(r.HLC, r.Dot.Origin, reg.HLC, reg.Dot.Origin) {
			reg = r
		}
	}
	live, bases := c.liveShares()
	if reg == nil && len(live) == 0 {
		return 0, false
	}
	var base float64
	if reg != nil && len(reg.Value) == 8 {
		base = math.Float64frombits(binary.BigEndian.Uint64(reg.Value))
	}
	if len(live) == 0 {
		return base, true
	}
	if math.IsInf(base, 0) {
		return base, true // increments are finite: an infinite base absorbs them
	}
	// Sum at a precision where adding a few 64-bit values is exact, so the
	// score is rounded once: a member incremented in sequence at one region
	// shows exactly what Redis's double arithmetic gives (the server sends
	// the exact difference of the new and old score as the increment).
	sum := new(big.Float).SetPrec(scorePrec).SetFloat64(base)
	for i, s := range live {
		d := new(big.Float).SetPrec(scorePrec).Sub(s.Float.Big(), bases[i].Float.Big())
		sum.Add(sum, d)
	}
	f, _ := sum.Float64()
	return f, true
}
