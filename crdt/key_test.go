package crdt_test

import (
	"testing"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/crdt/crdttest"
)

// Scenario tests: the examples of aa-semantics.md (S-*, C-*, D-1, T-1, E-1)
// and the rules they stand for, played on simulated regions. Each scenario
// runs with and without the HLC receive rule and with and without GC,
// because neither may change the outcome.

type variant struct {
	name     string
	gc       bool
	mergeHLC bool
}

var variants = []variant{
	{"plain", false, false},
	{"gc", true, false},
	{"mergehlc", false, true},
	{"gc+mergehlc", true, true},
}

// scenario runs fn on a fresh 3-region simulation for every variant.
func scenario(t *testing.T, fn func(t *testing.T, s *crdttest.Sim)) {
	t.Helper()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := crdttest.New(3, t0)
			s.GC, s.MergeHLC = v.gc, v.mergeHLC
			fn(t, s)
		})
	}
}

// wantGet checks GET key on each listed replica.
func wantGet(t *testing.T, key, want string, rs ...*crdttest.Replica) {
	t.Helper()
	for _, r := range rs {
		got, ok := r.Get(key)
		if want == "(nil)" {
			if ok {
				t.Fatalf("I%d GET %s = %q, want (nil)", r.ID, key, got)
			}
			continue
		}
		if !ok || got != want {
			t.Fatalf("I%d GET %s = %q (exists %v), want %q\nstate %s", r.ID, key, got, ok, want, dump(r.Key(key)))
		}
	}
}

func wantInt(t *testing.T, what string, got int64, err error, want int64) {
	t.Helper()
	if err != nil || got != want {
		t.Fatalf("%s = %d, %v; want %d", what, got, err, want)
	}
}

// TestKey_S1 is DOC-EX S-1 "last write wins".
func TestKey_S1(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.Set("key1", "a", 0, false) // t1
		s.Now += 1000
		i2.Set("key1", "b", 0, false) // t2
		wantGet(t, "key1", "a", i1)
		wantGet(t, "key1", "b", i2)
		s.Sync(nil) // t3
		wantGet(t, "key1", "b", i1, i2, i3)
		s.Now += 1000
		i1.Set("key1", "c", 0, false) // t4
		s.Sync(nil)                   // t5
		wantGet(t, "key1", "c", i1, i2, i3)
		s.Now += 1000
		i2.Set("key1", "d", 0, false) // t6
		wantGet(t, "key1", "c", i1)
		wantGet(t, "key1", "d", i2)
		s.Sync(nil) // t7
		wantGet(t, "key1", "d", i1, i2, i3)
	})
}

// TestKey_S2: causality beats a skewed clock. I2's clock is 10 s behind; it
// writes after seeing I1's write, with an earlier wall-clock stamp, and
// wins. Without the HLC receive rule its HLC really is earlier, so only the
// observed-remove decides.
func TestKey_S2(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i2.Skew = -10_000
		a := i1.Set("k", "a", 0, false) // t1, ts = T
		s.Sync(nil)                     // t2
		s.Now += 1000
		b := i2.Set("k", "b", 0, false) // t3, I2 stamps T-9s
		if !s.MergeHLC && b.Ev.HLC.Millis() != a.Ev.HLC.Millis()-9000 {
			t.Fatalf("I2 stamped %d, want %d (T-9s)", b.Ev.HLC.Millis(), a.Ev.HLC.Millis()-9000)
		}
		if s.MergeHLC && b.Ev.HLC <= a.Ev.HLC {
			t.Fatalf("HLC receive rule: I2's %d not after I1's %d", b.Ev.HLC, a.Ev.HLC)
		}
		s.Sync(nil) // t4
		wantGet(t, "k", "b", s.Replicas...)
	})
}

// TestKey_S3: concurrent writes with a skewed clock: the wall clock, not
// real time, decides.
func TestKey_S3(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i2.Skew = -10_000
		i1.Set("k", "a", 0, false) // t1, ts = T
		s.Now += 1000
		i2.Set("k", "b", 0, false) // t2, I2 stamps T-9s
		s.Sync(nil)
		wantGet(t, "k", "a", s.Replicas...)
	})
}

// TestKey_TieBreak: concurrent writes with equal HLCs: the smaller instance
// ID wins, whatever the arrival order.
func TestKey_TieBreak(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		c := i3.Set("k", "c", 0, false)
		b := i2.Set("k", "b", 0, false)
		if b.Ev.HLC != c.Ev.HLC {
			t.Fatalf("HLCs differ: %d %d", b.Ev.HLC, c.Ev.HLC)
		}
		s.Sync(nil)
		wantGet(t, "k", "b", i1, i2, i3)
		s.Now += 1000 // past both regions' last HLC
		a := i1.Set("k2", "a", 0, false)
		b = i2.Set("k2", "b", 0, false)
		if a.Ev.HLC != b.Ev.HLC {
			t.Fatalf("HLCs differ: %d %d", a.Ev.HLC, b.Ev.HLC)
		}
		s.SyncTo(2)
		wantGet(t, "k2", "a", i2)
		s.Sync(nil)
		wantGet(t, "k2", "a", i1, i2, i3)
	})
}

// TestKey_C1 is DOC-EX C-1: counters accumulate.
func TestKey_C1(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		v, err := i1.IncrBy("counter", 7)
		wantInt(t, "I1 INCRBY 7", v, err, 7)
		v, err = i2.IncrBy("counter", 3)
		wantInt(t, "I2 INCRBY 3", v, err, 3)
		wantGet(t, "counter", "7", i1)
		wantGet(t, "counter", "3", i2)
		s.Sync(nil)
		wantGet(t, "counter", "10", s.Replicas...)
		v, err = i1.IncrBy("counter", -3)
		wantInt(t, "I1 DECRBY 3", v, err, 7)
		v, err = i2.IncrBy("counter", 6)
		wantInt(t, "I2 INCRBY 6", v, err, 16)
		s.Sync(nil)
		wantGet(t, "counter", "13", s.Replicas...)
		if ty := i1.Type("counter"); ty != crdt.TypeString {
			t.Fatalf("TYPE counter = %s", ty)
		}
	})
}

// TestKey_C2: DEL vs a concurrent INCRBY: observed reset, the unseen
// increment survives on a base of 0.
func TestKey_C2(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.IncrBy("k", 10)
		s.Sync(nil)
		if n := i1.Del("k"); n != 1 {
			t.Fatalf("DEL = %d", n)
		}
		v, err := i2.IncrBy("k", 5)
		wantInt(t, "I2 INCRBY 5", v, err, 15)
		wantGet(t, "k", "(nil)", i1)
		wantGet(t, "k", "15", i2)
		s.Sync(nil)
		wantGet(t, "k", "5", s.Replicas...)
	})
}

// TestKey_SetVsIncr: SET vs a concurrent INCRBY: the increments the SET's
// region had seen are reset, the unseen ones land on the new base; this
// holds for a region's existing share as well as for a new one.
func TestKey_SetVsIncr(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.IncrBy("k", 10)
		i2.IncrBy("k", 3)
		s.Sync(nil)
		wantGet(t, "k", "13", s.Replicas...)
		i1.Set("k", "100", 0, false)
		i2.IncrBy("k", 5)  // continues I2's share
		i3.IncrBy("k", 20) // opens I3's share
		s.Sync(nil)
		wantGet(t, "k", "125", s.Replicas...)
		// later writes see everything: a new SET resets it all
		i3.Set("k", "1", 0, false)
		s.Sync(nil)
		wantGet(t, "k", "1", s.Replicas...)
		v, err := i2.IncrBy("k", 1)
		wantInt(t, "I2 INCRBY 1", v, err, 2)
		s.Sync(nil)
		wantGet(t, "k", "2", s.Replicas...)
	})
}

// TestKey_NonNumericBaseWins: a non-numeric register beats concurrent
// increments; they stay ignored, and a later numeric SET, having observed
// them, does not bring them back.
func TestKey_NonNumericBaseWins(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "10", 0, false)
		s.Sync(nil)
		i1.Set("k", "abc", 0, false)
		i2.IncrBy("k", 5)
		i2.IncrByFloat("k", "0.5")
		s.Sync(nil)
		wantGet(t, "k", "abc", s.Replicas...)
		if _, err := i2.IncrBy("k", 1); err != crdttest.ErrNotInteger {
			t.Fatalf("INCRBY on abc: %v", err)
		}
		if _, err := i2.IncrByFloat("k", "1"); err != crdttest.ErrNotFloat {
			t.Fatalf("INCRBYFLOAT on abc: %v", err)
		}
		i1.Set("k", "7", 0, false)
		s.Sync(nil)
		wantGet(t, "k", "7", s.Replicas...)
	})
}

// TestKey_IncrAndIncrFloat: INCRBY 1 and INCRBYFLOAT 0.5 concurrently from
// "10" converge to "11.5"; then INCRBY fails locally, as on "11.5" in Redis.
func TestKey_IncrAndIncrFloat(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "10", 0, false)
		s.Sync(nil)
		v, err := i1.IncrBy("k", 1)
		wantInt(t, "INCRBY 1", v, err, 11)
		if got, err := i2.IncrByFloat("k", "0.5"); err != nil || got != "10.5" {
			t.Fatalf("INCRBYFLOAT 0.5 = %q, %v", got, err)
		}
		s.Sync(nil)
		wantGet(t, "k", "11.5", s.Replicas...)
		if _, err := i1.IncrBy("k", 1); err != crdttest.ErrNotInteger {
			t.Fatalf("INCRBY on 11.5: %v", err)
		}
		// A float sum that is integral again reads as an integer.
		i2.IncrByFloat("k", "0.5")
		s.Sync(nil)
		wantGet(t, "k", "12", s.Replicas...)
		v, err = i1.IncrBy("k", 1)
		wantInt(t, "INCRBY 1 on 12", v, err, 13)
		s.Sync(nil)
		wantGet(t, "k", "13", s.Replicas...)
	})
}

// TestKey_FloatAfterReset: float increments made after a reset are not
// blurred by the reset increments (sequential, so Redis's answer holds).
func TestKey_FloatAfterReset(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.IncrByFloat("k", "123456789.123456789")
		i1.Del("k")
		if got, _ := i1.IncrByFloat("k", "0.1"); got != "0.1" {
			t.Fatalf("INCRBYFLOAT after DEL = %q", got)
		}
		wantGet(t, "k", "0.1", i1)
		s.Sync(nil)
		wantGet(t, "k", "0.1", s.Replicas...)
		// reset by another region, then incremented here
		i1.IncrByFloat("k", "1000")
		s.Sync(nil)
		i2.Set("k", "1", 0, false)
		s.Sync(nil)
		i1.IncrByFloat("k", "0.1")
		s.Sync(nil)
		wantGet(t, "k", "1.1", s.Replicas...)
		// the write path's expiry deletes the key before incrementing
		i1.Set("k", "5", 1000, false)
		i1.IncrByFloat("k", "123456789.123456789")
		s.Now += 2000
		if got, _ := i1.IncrByFloat("k", "0.1"); got != "0.1" {
			t.Fatalf("INCRBYFLOAT on expired key = %q", got)
		}
		s.Sync(nil)
		wantGet(t, "k", "0.1", s.Replicas...)
	})
}

// TestKey_D1: DEL vs a concurrent SET: the SET survives (observed remove),
// in either wall-clock order.
func TestKey_D1(t *testing.T) {
	for _, delFirst := range []bool{true, false} {
		name := "set first"
		if delFirst {
			name = "del first"
		}
		t.Run(name, func(t *testing.T) {
			scenario(t, func(t *testing.T, s *crdttest.Sim) {
				i1, i2 := s.R(1), s.R(2)
				i1.Set("k", "a", 0, false)
				s.Sync(nil)
				if delFirst {
					i1.Del("k")
					s.Now += 1000
					i2.Set("k", "b", 0, false)
				} else {
					i2.Set("k", "b", 0, false)
					s.Now += 1000
					i1.Del("k")
				}
				wantGet(t, "k", "(nil)", i1)
				s.Sync(nil)
				wantGet(t, "k", "b", s.Replicas...)
			})
		})
	}
}

// TestKey_DelAfterSync: a DEL that saw every write removes the key
// everywhere, and a duplicate of an old SET does not bring it back.
func TestKey_DelAfterSync(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "a", 0, false)
		i2.IncrBy("k2", 3)
		s.Sync(nil)
		i2.Del("k")
		i1.Del("k2")
		s.Sync(nil)
		wantGet(t, "k", "(nil)", s.Replicas...)
		wantGet(t, "k2", "(nil)", s.Replicas...)
		for _, l := range s.Links() {
			for i := 0; i < s.Delivered(l); i++ {
				if s.Redeliver(l, i) {
					t.Fatalf("duplicate %d on %+v applied", i, l)
				}
			}
		}
		wantGet(t, "k", "(nil)", s.Replicas...)
		if s.GC {
			for _, r := range s.Replicas {
				if k := r.Key("k"); !k.Empty() {
					t.Fatalf("I%d: deleted key not empty after GC: %s", r.ID, dump(k))
				}
				// I1 deleted I2's counter share: until I2 shows it saw the
				// reset (by writing the key again), every region keeps the
				// fully reset share and its baseline, so that an increment
				// I2 made concurrently is summed on the same scale everywhere.
				if k := r.Key("k2"); len(k.Str.Shares) != 1 || len(k.Str.Bases) != 1 || len(k.Str.Regs) != 0 {
					t.Fatalf("I%d: deleted counter keeps more than its reset share: %s", r.ID, dump(k))
				}
			}
		}
	})
}

// TestKey_T1: type conflict. The latest live write's type is visible, the
// other type's state is hidden, and the next write by a region that sees it
// removes it for good.
func TestKey_T1(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.Set("k", "s", 0, false) // t1
		s.Now += 1000
		if n, err := i2.SAdd("k", "m"); n != 1 || err != nil { // t2
			t.Fatalf("SADD = %d, %v", n, err)
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			if ty := r.Type("k"); ty != crdt.TypeSet {
				t.Fatalf("I%d TYPE k = %s, want set", r.ID, ty)
			}
			if m := r.Members("k", crdt.TypeSet); len(m) != 1 || m[0] != "m" {
				t.Fatalf("I%d SMEMBERS k = %q", r.ID, m)
			}
			if _, ok := r.Get("k"); ok {
				t.Fatalf("I%d GET k on a set answered", r.ID)
			}
			if _, err := r.Append("k", "x"); err != crdttest.ErrWrongType {
				t.Fatalf("I%d APPEND on a set: %v", r.ID, err)
			}
			if h := r.Key("k").Hidden(); len(h) != 1 || h[0] != crdt.TypeString {
				t.Fatalf("I%d hidden = %v, want [string]", r.ID, h)
			}
		}
		// I3 adds to the set: its write removes the hidden string.
		i3.SAdd("k", "n")
		if op := s.Sent()[len(s.Sent())-1].Ev.Ops[0]; op.Kind != crdt.OpDeleteType || op.Type != crdt.TypeString {
			t.Fatalf("write on a key with hidden string did not remove it: %+v", op)
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			k := r.Key("k")
			if len(k.Hidden()) != 0 || len(k.Str.Regs) != 0 {
				t.Fatalf("I%d keeps the string after the cleanup: %s", r.ID, dump(k))
			}
			if ty := k.Type(s.Now); ty != crdt.TypeSet || k.Len(crdt.TypeSet) != 2 {
				t.Fatalf("I%d TYPE %s Len %d", r.ID, ty, k.Len(crdt.TypeSet))
			}
		}
		// SET over the set: a type change removes the observed set.
		i1.Set("k", "v", 0, false)
		s.Sync(nil)
		for _, r := range s.Replicas {
			if ty := r.Type("k"); ty != crdt.TypeString || r.Key("k").Len(crdt.TypeSet) != 0 || len(r.Members("k", crdt.TypeSet)) != 0 {
				t.Fatalf("I%d TYPE %s Len %d after SET", r.ID, ty, r.Key("k").Len(crdt.TypeSet))
			}
		}
		wantGet(t, "k", "v", s.Replicas...)
	})
}

// TestKey_T1Reversed: the string written later wins over the set, and on an
// exact HLC tie the smaller instance ID's write decides the type.
func TestKey_T1Reversed(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i2.SAdd("k", "m")
		s.Now += 1000
		i1.Set("k", "s", 0, false)
		s.Sync(nil)
		wantGet(t, "k", "s", s.Replicas...)
		if h := i2.Key("k").Hidden(); len(h) != 1 || h[0] != crdt.TypeSet {
			t.Fatalf("hidden = %v", h)
		}

		s.Now += 1000 // past both regions' last HLC
		i2.SAdd("tie", "m")
		a := s.Sent()[len(s.Sent())-1]
		b := i1.Set("tie", "s", 0, false)
		if a.Ev.HLC != b.Ev.HLC {
			t.Fatalf("HLCs differ")
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			if ty := r.Type("tie"); ty != crdt.TypeString {
				t.Fatalf("I%d tie: TYPE %s, want string (I1 wins)", r.ID, ty)
			}
		}
	})
}

// TestKey_TypeConflictThreeWays: string, set and hash written concurrently:
// the latest wins, and DEL after sync removes all three.
func TestKey_TypeConflictThreeWays(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i3.HSet("k", "f", "v")
		s.Now += 1
		i1.Set("k", "s", 0, false)
		s.Now += 1
		i2.SAdd("k", "m")
		s.Sync(nil)
		for _, r := range s.Replicas {
			if ty := r.Type("k"); ty != crdt.TypeSet {
				t.Fatalf("I%d TYPE %s", r.ID, ty)
			}
			if h := r.Key("k").Hidden(); len(h) != 2 {
				t.Fatalf("I%d hidden %v", r.ID, h)
			}
		}
		if n := i3.Del("k"); n != 1 {
			t.Fatalf("DEL = %d", n)
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			if v := r.View("k", s.Now); v.Type != crdt.TypeNone || v.Lens != [crdt.TypeList + 1]int64{} {
				t.Fatalf("I%d after DEL: %+v", r.ID, v)
			}
		}
	})
}

// TestKey_E1: concurrent EXPIREs: the longest wins and its origin owns it.
func TestKey_E1(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.Set("key1", "v", 1_000_000, false)
		s.Sync(nil)
		i1.PExpire("key1", 10_000)
		i2.PExpire("key1", 50_000)
		s.Sync(nil)
		for _, r := range []*crdttest.Replica{i1, i2, i3} {
			if ttl := r.PTTL("key1"); ttl != 50_000 {
				t.Fatalf("I%d PTTL = %d, want 50000", r.ID, ttl)
			}
			if _, owner := r.Key("key1").Expiry(); owner != 2 {
				t.Fatalf("I%d expiry owner = %d, want 2", r.ID, owner)
			}
		}
	})
}

// TestKey_TTLRules: PERSIST and TTL-clearing writes beat concurrent TTLs; a
// change made after seeing another replaces it, even when shorter; equal
// concurrent expiries go to the smaller instance ID.
func TestKey_TTLRules(t *testing.T) {
	t.Run("PERSIST beats EXPIRE", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 100_000, false)
			s.Sync(nil)
			s.R(1).Persist("k")
			s.R(2).PExpire("k", 500_000)
			s.Sync(nil)
			for _, r := range s.Replicas {
				if ttl := r.PTTL("k"); ttl != -1 {
					t.Fatalf("I%d PTTL = %d, want -1", r.ID, ttl)
				}
			}
		})
	})
	t.Run("SET without KEEPTTL beats EXPIRE", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.Sync(nil)
			s.R(1).PExpire("k", 500_000)
			s.Now += 1000
			s.R(2).Set("k", "w", 0, false)
			s.Sync(nil)
			wantGet(t, "k", "w", s.Replicas...)
			for _, r := range s.Replicas {
				if ttl := r.PTTL("k"); ttl != -1 {
					t.Fatalf("I%d PTTL = %d, want -1", r.ID, ttl)
				}
			}
		})
	})
	t.Run("SET KEEPTTL keeps a concurrent EXPIRE", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.Sync(nil)
			s.R(1).PExpire("k", 500_000)
			s.R(2).Set("k", "w", 0, true)
			s.Sync(nil)
			for _, r := range s.Replicas {
				if ttl := r.PTTL("k"); ttl != 500_000 {
					t.Fatalf("I%d PTTL = %d, want 500000", r.ID, ttl)
				}
			}
		})
	})
	t.Run("shorter after seeing replaces", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.R(1).PExpire("k", 50_000)
			s.Sync(nil)
			s.R(2).PExpire("k", 10_000)
			s.Sync(nil)
			for _, r := range s.Replicas {
				at, owner := r.Key("k").Expiry()
				if at != s.Now+10_000 || owner != 2 {
					t.Fatalf("I%d expiry %d owner %d, want %d owner 2", r.ID, at, owner, s.Now+10_000)
				}
			}
		})
	})
	t.Run("EXPIRE after seeing PERSIST", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 50_000, false)
			s.Sync(nil)
			s.R(2).Persist("k")
			s.Sync(nil)
			s.R(3).PExpire("k", 10_000)
			s.Sync(nil)
			for _, r := range s.Replicas {
				if ttl := r.PTTL("k"); ttl != 10_000 {
					t.Fatalf("I%d PTTL = %d", r.ID, ttl)
				}
			}
		})
	})
	t.Run("equal expiries: smaller ID owns", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.Sync(nil)
			s.R(3).PExpire("k", 20_000)
			s.R(2).PExpire("k", 20_000)
			s.Sync(nil)
			for _, r := range s.Replicas {
				if at, owner := r.Key("k").Expiry(); at != s.Now+20_000 || owner != 2 {
					t.Fatalf("I%d expiry %d owner %d", r.ID, at, owner)
				}
			}
		})
	})
	t.Run("SET EX competes as a TTL", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.Sync(nil)
			s.R(1).Set("k", "a", 30_000, false)
			s.Now += 1
			s.R(2).PExpire("k", 60_000)
			s.Sync(nil)
			wantGet(t, "k", "a", s.Replicas...)
			for _, r := range s.Replicas {
				if at, owner := r.Key("k").Expiry(); at != s.Now+60_000 || owner != 2 {
					t.Fatalf("I%d expiry %d owner %d", r.ID, at, owner)
				}
			}
		})
	})
	t.Run("PEXPIRE 0 deletes", func(t *testing.T) {
		scenario(t, func(t *testing.T, s *crdttest.Sim) {
			s.R(1).Set("k", "v", 0, false)
			s.Sync(nil)
			if n := s.R(2).PExpire("k", 0); n != 1 {
				t.Fatalf("PEXPIRE 0 = %d", n)
			}
			s.Sync(nil)
			wantGet(t, "k", "(nil)", s.Replicas...)
		})
	})
}

// TestKey_ExpiryOwner: only the owner of the winning expiry deletes the key
// (an observed DEL); other regions hide it on read, and expire it on a
// write before applying the write.
func TestKey_ExpiryOwner(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.Set("k", "v", 10_000, false)
		s.Sync(nil)
		i2.PExpire("k", 20_000)
		i1.PExpire("k", 15_000)
		s.Sync(nil)
		s.Now += 20_000 // the expiry ms: still visible, like Redis
		if i2.ActiveExpire("k") {
			t.Fatalf("expired before its time")
		}
		wantGet(t, "k", "v", i1, i2, i3)
		if ttl := i1.PTTL("k"); ttl != 0 {
			t.Fatalf("PTTL at the expiry ms = %d", ttl)
		}
		s.Now++
		wantGet(t, "k", "(nil)", i1, i2, i3) // hidden on read everywhere
		if i1.ActiveExpire("k") || i3.ActiveExpire("k") {
			t.Fatalf("a region that does not own the expiry deleted the key")
		}
		if !i2.ActiveExpire("k") {
			t.Fatalf("the owner did not delete the expired key")
		}
		// a concurrent write elsewhere that had not seen the expiry: the
		// writer expires the key first (it has expired there too), then writes
		v, err := i3.IncrBy("k", 1)
		wantInt(t, "I3 INCRBY on expired key", v, err, 1)
		s.Sync(nil)
		wantGet(t, "k", "1", i1, i2, i3)
		for _, r := range s.Replicas {
			if ttl := r.PTTL("k"); ttl != -1 {
				t.Fatalf("I%d PTTL = %d, want -1", r.ID, ttl)
			}
		}
	})
}

// TestKey_ExpiryDelIsObserved: the owner's expiry DEL removes only what it
// had seen. A SET KEEPTTL made concurrently elsewhere survives it, and
// since the DEL also removed the TTL version it had seen, the survivor has
// no TTL (aa-semantics: "the expiry DEL is an ordinary DEL").
func TestKey_ExpiryDelIsObserved(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "v", 10_000, false)
		s.Sync(nil)
		i2.Set("k", "w", 0, true) // KEEPTTL: expires at +10s, owned by I1
		s.Now += 10_001
		wantGet(t, "k", "(nil)", i1, i2)
		if i2.ActiveExpire("k") {
			t.Fatalf("I2 does not own the expiry")
		}
		if !i1.ActiveExpire("k") {
			t.Fatalf("I1 owns the expiry")
		}
		s.Sync(nil)
		wantGet(t, "k", "w", s.Replicas...)
		for _, r := range s.Replicas {
			if ttl := r.PTTL("k"); ttl != -1 {
				t.Fatalf("I%d PTTL = %d, want -1", r.ID, ttl)
			}
		}
	})
}

// TestKey_OrphanTTL: DEL and a concurrent EXPIRE leave the EXPIRE's TTL
// version on a key with no value. A later INCR (or SET KEEPTTL, APPEND)
// creates a key that inherits that TTL, which no serial order of these
// commands gives in Redis (INCR on a missing key has no TTL).
func TestKey_OrphanTTL(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "v", 0, false)
		s.Sync(nil)
		i1.Del("k")
		i2.PExpire("k", 100_000)
		s.Sync(nil)
		wantGet(t, "k", "(nil)", s.Replicas...)
		i1.IncrBy("k", 1)
		if ttl := i1.PTTL("k"); ttl != -1 {
			t.Fatalf("INCR on a deleted key: PTTL %d, want -1", ttl)
		}
	})
}

// TestKey_ShareGCDivergence: collecting a fully reset counter share is
// unsound while the share's origin may still increment it without having
// seen the reset. I2 collects I1's share once its stable clock passes the
// DEL, I1 then adds to it concurrently, and I2 re-creates the share holding
// only the new increment while I1 and I3 hold the whole total. The next
// reset carries I2's total as a baseline, and subtracting it from I1's
// total gives a wrong value: replicas diverge for good.
func TestKey_ShareGCDivergence(t *testing.T) {
	s := crdttest.New(3, t0)
	s.GC = true
	i1, i2 := s.R(1), s.R(2)
	i1.IncrBy("k", 5)
	s.Sync(nil)
	i2.Del("k")       // observes I1's share (5); I2 collects it at once
	i1.IncrBy("k", 3) // concurrent: continues the share (total 8)
	s.Sync(nil)
	wantGet(t, "k", "3", s.Replicas...)
	i2.Set("k", "100", 0, false) // observes the share: I2 holds 3, I1 and I3 hold 8
	i1.IncrBy("k", 4)            // concurrent
	s.Sync(nil)
	wantGet(t, "k", "104", s.Replicas...) // I2 says 104, I1 and I3 say 109
}

// TestKey_Idempotence: a duplicate of any event returns false and changes
// nothing, also long after (with GC, once tombstones are gone).
func TestKey_Idempotence(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		i1.Set("k", "a", 5000, false)
		i2.IncrBy("k", 2)
		i2.IncrByFloat("k", "1.5")
		s.Sync(nil)
		i1.Del("k")
		i2.HSet("k", "f", "v")
		s.Sync(nil)
		for _, m := range s.Sent() {
			for _, r := range s.Replicas {
				k := r.Key(m.Key)
				before := k.Marshal(nil)
				if k.Apply(m.Ev, r.StableFor(m.Key)) {
					t.Fatalf("I%d applied a duplicate of %+v", r.ID, m.Ev.Dot)
				}
				if k.Apply(m.Ev, nil) {
					t.Fatalf("I%d applied a duplicate of %+v (nil stable)", r.ID, m.Ev.Dot)
				}
				if after := k.Marshal(nil); string(after) != string(before) {
					t.Fatalf("I%d duplicate of %+v changed the state", r.ID, m.Ev.Dot)
				}
			}
		}
	})
}

// TestKey_CounterRange: locally produced values keep the 59-bit range, but
// merged sums beyond it are returned as they are.
func TestKey_CounterRange(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2 := s.R(1), s.R(2)
		if _, err := i1.IncrBy("k", crdt.CounterMax+1); err != crdttest.ErrOverflow {
			t.Fatalf("increment beyond 59 bits: %v", err)
		}
		v, err := i1.IncrBy("k", crdt.CounterMax)
		wantInt(t, "INCRBY max", v, err, crdt.CounterMax)
		if _, err := i1.IncrBy("k", 1); err != crdttest.ErrOverflow {
			t.Fatalf("result beyond 59 bits: %v", err)
		}
		i2.IncrBy("k", crdt.CounterMax)
		s.Sync(nil)
		wantGet(t, "k", crdt.FormatInt(2*crdt.CounterMax), s.Replicas...)
		i1.Set("n", "-10", 0, false)
		s.Sync(nil)
		i1.IncrBy("n", crdt.CounterMin+10)
		i2.IncrBy("n", crdt.CounterMin+10)
		s.Sync(nil)
		wantGet(t, "n", crdt.FormatInt(2*crdt.CounterMin+10), s.Replicas...)
	})
}

// TestKey_ElemWriteOrderIndependent: an element write whose element was
// removed (HDEL) before it arrived must count for the type rule exactly as
// when it arrives first; otherwise TYPE depends on arrival order. I1 writes
// hash fields f (T) and m (T+10); I2 sees both and HDELs m; I3 concurrently
// SETs a string (T+5). I3 receives the HDEL before I1's writes.
func TestKey_ElemWriteOrderIndependent(t *testing.T) {
	scenario(t, func(t *testing.T, s *crdttest.Sim) {
		i1, i2, i3 := s.R(1), s.R(2), s.R(3)
		i1.HSet("k", "f", "v")
		s.Now += 5
		i3.Set("k", "s", 0, false)
		s.Now += 5
		i1.HSet("k", "m", "v")
		for l := (crdttest.Link{From: 1, To: 2}); s.Delivered(l) < 2; {
			s.Deliver(l)
		}
		if n, err := i2.HDel("k", "m"); n != 1 || err != nil {
			t.Fatalf("HDEL = %d, %v", n, err)
		}
		for s.Delivered(crdttest.Link{From: 2, To: 3}) == 0 {
			s.Deliver(crdttest.Link{From: 2, To: 3})
		}
		s.Sync(nil)
		want := i1.View("k", s.Now)
		for _, r := range s.Replicas {
			if got := r.View("k", s.Now); got != want {
				t.Fatalf("I%d %+v, I1 %+v\nI%d: %s\nI1: %s", r.ID, got, want, r.ID, dump(r.Key("k")), dump(i1.Key("k")))
			}
		}
	})
}
