package crdt

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// Reset is a key-level removal (OpDelete, or OpDeleteType of a collection)
// as it applies to the elements of a collection: the versions its context
// covers go, and each element's increments up to the totals it observed.
// The materializer keeps one for a removal of a large collection and
// applies it to each element when the element is next read or written
// (ApplyTo is idempotent), instead of rewriting every element in the
// transaction that applies the event.
type Reset struct {
	Types []Type       // the collection types it removes, ascending
	By    ReplicaID    // the removal's origin (Event.Dot.Origin)
	Ctx   Clock        // the removal's observed context (Event.Observed)
	Elems []ElemShares // observed counter totals per element, sorted by Elem
}

// NewReset returns the Reset of removal op of ev for collection types ts.
func NewReset(ev *Event, op *Op, ts ...Type) Reset {
	r := Reset{Types: append([]Type(nil), ts...), By: ev.Dot.Origin, Ctx: ev.Observed.Clone()}
	sort.Slice(r.Types, func(i, j int) bool { return r.Types[i] < r.Types[j] })
	r.Elems = append([]ElemShares(nil), op.Elems...)
	sortElemShares(r.Elems)
	return r
}

// Covers reports whether r removes elements of type t.
func (r *Reset) Covers(t Type) bool {
	for _, x := range r.Types {
		if x == t {
			return true
		}
	}
	return false
}

// SharesOf returns the observed counter totals r carries for elem.
func (r *Reset) SharesOf(elem []byte) []Share {
	i := sort.Search(len(r.Elems), func(i int) bool { return bytes.Compare(r.Elems[i].Elem, elem) >= 0 })
	if i < len(r.Elems) && bytes.Equal(r.Elems[i].Elem, elem) {
		return r.Elems[i].Shares
	}
	return nil
}

// ApplyTo applies r to the cell of element elem of type t (a type r
// covers) and reports whether the element was live before and after.
// Applying it twice changes nothing more. Set members have no counters:
// the observed totals (which name no type) only go to hash fields and
// sorted-set members.
func (r *Reset) ApplyTo(t Type, c *Cell, elem []byte) (before, after bool) {
	before = c.Live()
	var shares []Share
	if HasCounters(t) {
		shares = r.SharesOf(elem)
	}
	c.reset(r.By, r.Ctx, shares)
	return before, c.Live()
}

// HasCounters reports whether elements of collection type t can hold
// counter shares (hash fields, sorted-set scores).
func HasCounters(t Type) bool { return t == TypeHash || t == TypeZSet }

// MergeElemShares merges per-element observed totals (of several types of
// one key) into one list sorted by element: Op.Elems names no type, so an
// element name used by two types carries the shares of both (share
// identities never collide, as each names the event that opened it).
func MergeElemShares(lists ...[]ElemShares) []ElemShares {
	byElem := make(map[string][]Share)
	for _, l := range lists {
		for _, es := range l {
			byElem[string(es.Elem)] = append(byElem[string(es.Elem)], es.Shares...)
		}
	}
	out := make([]ElemShares, 0, len(byElem))
	for e, ss := range byElem {
		sort.Slice(ss, func(i, j int) bool { return shareLess(ss[i], ss[j]) })
		out = append(out, ElemShares{Elem: []byte(e), Shares: ss})
	}
	sortElemShares(out)
	return out
}

// Clone returns a deep copy of c.
func (c *Cell) Clone() *Cell {
	if c == nil {
		return nil
	}
	d := &Cell{Tomb: c.Tomb.Clone()}
	if c.Regs != nil {
		d.Regs = make([]Reg, len(c.Regs))
		for i, r := range c.Regs {
			d.Regs[i] = Reg{Dot: r.Dot, HLC: r.HLC, Value: r.Value} // values are never modified in place
		}
	}
	if c.Shares != nil {
		d.Shares = append([]Share(nil), c.Shares...)
	}
	if c.Bases != nil {
		d.Bases = append([]Share(nil), c.Bases...)
	}
	return d
}

// HasTombstones reports whether c retains removal state: a reset context
// or counter baselines, kept until the local stable clock passes them.
func (c *Cell) HasTombstones() bool { return c.Tomb != nil || len(c.Bases) > 0 }

// HasTombstones reports whether k retains removal state of its own (not
// counting its elements'): delete contexts, TTL or register reset contexts,
// counter baselines.
func (k *Key) HasTombstones() bool {
	return k.Del != nil || k.TypeDel != nil || k.TTLTomb != nil || k.Str.HasTombstones()
}

const resetVersion = 2

// MarshalResets appends the deterministic encoding of rs to b.
func MarshalResets(b []byte, rs []Reset) []byte {
	b = append(b, resetVersion)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = binary.AppendUvarint(b, uint64(len(r.Types)))
		for _, t := range r.Types {
			b = append(b, byte(t))
		}
		b = binary.AppendUvarint(b, uint64(r.By))
		b = putClock(b, r.Ctx)
		b = binary.AppendUvarint(b, uint64(len(r.Elems)))
		for _, es := range r.Elems {
			b = putBytes(b, es.Elem)
			b = putShares(b, es.Shares)
		}
	}
	return b
}

// UnmarshalResets decodes what MarshalResets encoded. The result does not
// alias b.
func UnmarshalResets(b []byte) ([]Reset, error) {
	d := decoder{b: b}
	if d.byte() != resetVersion {
		return nil, ErrCorrupt
	}
	var rs []Reset
	for n := d.count(); n > 0 && d.err == nil; n-- {
		var r Reset
		for m := d.count(); m > 0 && d.err == nil; m-- {
			t := Type(d.byte())
			if t >= numTypes {
				d.fail()
			}
			r.Types = append(r.Types, t)
		}
		r.By = ReplicaID(d.uvarint())
		r.Ctx = d.clock()
		for m := d.count(); m > 0 && d.err == nil; m-- {
			r.Elems = append(r.Elems, ElemShares{Elem: d.bytes(), Shares: d.shares()})
		}
		rs = append(rs, r)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	return rs, nil
}
