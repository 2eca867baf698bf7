package crdt

import "sort"

// ReplicaID is a region's instance ID: small, unique, never reused.
type ReplicaID uint32

// HLC is a hybrid logical clock timestamp: wall-clock milliseconds in the
// upper 48 bits, a logical counter in the lower 16.
type HLC uint64

// MakeHLC builds a timestamp from milliseconds and a logical counter.
func MakeHLC(ms int64, logical uint16) HLC { return HLC(uint64(ms)<<16 | uint64(logical)) }

// Millis returns the wall-clock part of h in milliseconds since the epoch.
func (h HLC) Millis() int64 { return int64(h >> 16) }

// NextHLC returns the timestamp of a local event that follows last, given the
// local wall clock in ms: the wall clock when it is ahead, last+1 otherwise.
func NextHLC(last HLC, wallMs int64) HLC {
	if w := MakeHLC(wallMs, 0); w > last {
		return w
	}
	return last + 1
}

// Dot identifies one event: its origin and the origin's sequence number.
type Dot struct {
	Origin ReplicaID
	Seq    uint64
}

// Clock is a version vector: per origin, the greatest sequence number. It is
// kept sorted by origin with no zero entries so that equal clocks encode to
// equal bytes.
type Clock []Dot

// Get returns the sequence recorded for origin o, 0 if none.
func (c Clock) Get(o ReplicaID) uint64 {
	for _, d := range c {
		if d.Origin == o {
			return d.Seq
		}
		if d.Origin > o {
			break
		}
	}
	return 0
}

// Covers reports whether d is at or below c's entry for d's origin.
func (c Clock) Covers(d Dot) bool { return d.Seq != 0 && d.Seq <= c.Get(d.Origin) }

// With returns c with o's entry raised to seq (never lowered).
func (c Clock) With(o ReplicaID, seq uint64) Clock {
	if seq == 0 {
		return c
	}
	i := sort.Search(len(c), func(i int) bool { return c[i].Origin >= o })
	if i < len(c) && c[i].Origin == o {
		if c[i].Seq < seq {
			c[i].Seq = seq
		}
		return c
	}
	c = append(c, Dot{})
	copy(c[i+1:], c[i:])
	c[i] = Dot{Origin: o, Seq: seq}
	return c
}

// Merge returns the pointwise maximum of c and o (c may be modified).
func (c Clock) Merge(o Clock) Clock {
	for _, d := range o {
		c = c.With(d.Origin, d.Seq)
	}
	return c
}

// Clone returns a copy of c.
func (c Clock) Clone() Clock {
	if c == nil {
		return nil
	}
	return append(Clock(nil), c...)
}

// Prune drops the entries of c that stable covers: once every event of an
// origin up to a tombstone's sequence has been applied locally, no covered
// event can arrive any more and the entry is not needed.
func (c Clock) Prune(stable Clock) Clock {
	if stable == nil {
		return c
	}
	out := c[:0]
	for _, d := range c {
		if stable.Get(d.Origin) < d.Seq {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Equal reports whether c and o hold the same entries.
func (c Clock) Equal(o Clock) bool {
	if len(c) != len(o) {
		return false
	}
	for i := range c {
		if c[i] != o[i] {
			return false
		}
	}
	return true
}

// wins reports whether a write stamped (h1, o1) beats one stamped (h2, o2)
// under last-writer-wins: greater HLC, then the smaller instance ID.
func wins(h1 HLC, o1 ReplicaID, h2 HLC, o2 ReplicaID) bool {
	if h1 != h2 {
		return h1 > h2
	}
	return o1 < o2
}
