package crdt_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/georep/georep/crdt"
)

func TestHLC(t *testing.T) {
	t.Run("MakeHLC/Millis", func(t *testing.T) {
		h := crdt.MakeHLC(t0, 7)
		if h.Millis() != t0 || uint16(h) != 7 {
			t.Fatalf("MakeHLC(%d, 7) = %d: ms %d logical %d", t0, h, h.Millis(), uint16(h))
		}
		if crdt.MakeHLC(t0, 0xffff) >= crdt.MakeHLC(t0+1, 0) {
			t.Fatalf("logical counter overflows into the next ms")
		}
	})
	for _, tc := range []struct {
		name string
		last crdt.HLC
		wall int64
		want crdt.HLC
	}{
		{"first event", 0, t0, crdt.MakeHLC(t0, 0)},
		{"wall ahead", crdt.MakeHLC(t0, 5), t0 + 1, crdt.MakeHLC(t0+1, 0)},
		{"same ms", crdt.MakeHLC(t0, 5), t0, crdt.MakeHLC(t0, 6)},
		{"wall behind", crdt.MakeHLC(t0, 5), t0 - 10_000, crdt.MakeHLC(t0, 6)},
		{"logical carries into ms", crdt.MakeHLC(t0, 0xffff), t0, crdt.MakeHLC(t0+1, 0)},
	} {
		t.Run("NextHLC/"+tc.name, func(t *testing.T) {
			if got := crdt.NextHLC(tc.last, tc.wall); got != tc.want {
				t.Fatalf("NextHLC(%d, %d) = %d, want %d", tc.last, tc.wall, got, tc.want)
			}
		})
	}
	t.Run("NextHLC monotonic", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			last := crdt.HLC(rapid.Uint64Range(0, 1<<62).Draw(t, "last"))
			wall := rapid.Int64Range(0, 1<<46).Draw(t, "wall")
			next := crdt.NextHLC(last, wall)
			if next <= last {
				t.Fatalf("NextHLC(%d, %d) = %d, not after last", last, wall, next)
			}
			if next.Millis() < wall {
				t.Fatalf("NextHLC(%d, %d) = %d, behind the wall clock", last, wall, next)
			}
		})
	})
}

func clk(ds ...uint64) crdt.Clock {
	var c crdt.Clock
	for i := 0; i+1 < len(ds); i += 2 {
		c = c.With(crdt.ReplicaID(ds[i]), ds[i+1])
	}
	return c
}

func TestClock(t *testing.T) {
	t.Run("With keeps sorted, never lowers, skips 0", func(t *testing.T) {
		c := clk(3, 5, 1, 2, 2, 9)
		want := crdt.Clock{{Origin: 1, Seq: 2}, {Origin: 2, Seq: 9}, {Origin: 3, Seq: 5}}
		if !c.Equal(want) {
			t.Fatalf("got %v, want %v", c, want)
		}
		c = c.With(2, 4).With(4, 0)
		if !c.Equal(want) {
			t.Fatalf("With lowered or added a zero entry: %v", c)
		}
	})
	t.Run("Get", func(t *testing.T) {
		c := clk(1, 2, 3, 5)
		for o, want := range map[crdt.ReplicaID]uint64{0: 0, 1: 2, 2: 0, 3: 5, 4: 0} {
			if got := c.Get(o); got != want {
				t.Fatalf("Get(%d) = %d, want %d", o, got, want)
			}
		}
		if crdt.Clock(nil).Get(1) != 0 {
			t.Fatalf("nil clock")
		}
	})
	t.Run("Covers", func(t *testing.T) {
		c := clk(1, 2)
		for _, tc := range []struct {
			d    crdt.Dot
			want bool
		}{
			{crdt.Dot{Origin: 1, Seq: 1}, true},
			{crdt.Dot{Origin: 1, Seq: 2}, true},
			{crdt.Dot{Origin: 1, Seq: 3}, false},
			{crdt.Dot{Origin: 2, Seq: 1}, false},
			{crdt.Dot{Origin: 1, Seq: 0}, false},
		} {
			if got := c.Covers(tc.d); got != tc.want {
				t.Fatalf("Covers(%+v) = %v", tc.d, got)
			}
		}
	})
	t.Run("Prune", func(t *testing.T) {
		c := clk(1, 2, 2, 5, 3, 1)
		if got := c.Clone().Prune(nil); !got.Equal(c) {
			t.Fatalf("Prune(nil) = %v", got)
		}
		if got := c.Clone().Prune(clk(1, 2, 2, 4, 3, 7)); !got.Equal(clk(2, 5)) {
			t.Fatalf("Prune = %v, want [2:5]", got)
		}
		if got := c.Clone().Prune(clk(1, 9, 2, 9, 3, 9)); got != nil {
			t.Fatalf("fully stable Prune = %v, want nil", got)
		}
	})
	t.Run("Clone does not alias", func(t *testing.T) {
		c := clk(1, 2)
		d := c.Clone()
		d = d.With(1, 9)
		if c.Get(1) != 2 || d.Get(1) != 9 {
			t.Fatalf("Clone aliases: %v %v", c, d)
		}
		if crdt.Clock(nil).Clone() != nil {
			t.Fatalf("Clone(nil) not nil")
		}
	})
}

func genClock(t *rapid.T, label string) crdt.Clock {
	var c crdt.Clock
	n := rapid.IntRange(0, 5).Draw(t, label+"n")
	for i := 0; i < n; i++ {
		c = c.With(crdt.ReplicaID(rapid.IntRange(1, 6).Draw(t, label+"o")), rapid.Uint64Range(0, 20).Draw(t, label+"s"))
	}
	return c
}

// TestClock_Merge: Merge is commutative, associative and idempotent, is the
// pointwise maximum, and keeps the encoding invariant (sorted, no zeros).
func TestClock_Merge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genClock(t, "a"), genClock(t, "b"), genClock(t, "c")
		ab := a.Clone().Merge(b)
		if !ab.Equal(b.Clone().Merge(a)) {
			t.Fatalf("not commutative: %v %v", a, b)
		}
		if !ab.Clone().Merge(c).Equal(a.Clone().Merge(b.Clone().Merge(c))) {
			t.Fatalf("not associative")
		}
		if !ab.Clone().Merge(ab).Equal(ab) || !a.Clone().Merge(a).Equal(a) {
			t.Fatalf("not idempotent")
		}
		for o := crdt.ReplicaID(0); o <= 7; o++ {
			if want := max(a.Get(o), b.Get(o)); ab.Get(o) != want {
				t.Fatalf("Merge[%d] = %d, want %d", o, ab.Get(o), want)
			}
		}
		for i, d := range ab {
			if d.Seq == 0 || (i > 0 && ab[i-1].Origin >= d.Origin) {
				t.Fatalf("Merge result not canonical: %v", ab)
			}
		}
	})
}
