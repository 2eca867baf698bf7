package crdt

import (
	"fmt"
	"strings"
	"testing"
)

// Every list example of aa-semantics.md (L-1..L-4) and the rules behind
// them, as scenarios on simulated regions I1, I2, I3 (instance IDs 1, 2, 3).
// "sync" delivers everything everywhere.

func TestList_Scenarios(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *lsim)
	}{
		{"L-1 simple", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			wantInt(t, i1.lpush(t, "hello"), 1)
			s.sync(t)
			wantInt(t, i2.lpush(t, "world"), 2)
			s.sync(t)
			wantList(t, "world hello", i1, i2)
		}},
		{"L-2 concurrent insertions", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.lpush(t, "x")
			s.sync(t)
			wantInt(t, i1.linsert(t, false, "x", "y1"), 2)
			wantInt(t, i2.linsert(t, false, "x", "y2"), 2)
			wantList(t, "x y1", i1)
			wantList(t, "x y2", i2)
			s.sync(t)
			wantList(t, "x y1 y2", i1, i2)
		}},
		{"L-2 the larger ID first in time", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.lpush(t, "x")
			s.sync(t)
			i2.linsert(t, false, "x", "y2")
			i1.linsert(t, false, "x", "y1")
			s.sync(t)
			wantList(t, "x y1 y2", i1, i2)
		}},
		{"L-3 DEL while pushing", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.lpush(t, "x")
			s.sync(t)
			wantList(t, "x", i1, i2)
			wantInt(t, i1.lpush(t, "y"), 2)
			wantInt(t, int64(i2.del(t)), 1)
			s.sync(t)
			wantList(t, "y", i1, i2)
		}},
		{"L-4 popping", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			wantInt(t, i1.lpush(t, "x", "y", "z"), 3)
			s.sync(t)
			wantPop(t, i2.pop(t, false, 1), "x")
			s.sync(t)
			wantPop(t, i1.pop(t, false, 1), "y")
			s.sync(t)
			wantPop(t, i1.pop(t, false, 1), "z")
			wantPop(t, i2.pop(t, false, 1), "z")
			s.sync(t)
			for _, r := range []*lrep{i1, i2} {
				if n := r.open(t).Len(); n != 0 || r.k.Type(0) != TypeNone {
					t.Errorf("region %d: LLEN %d, TYPE %v; want 0, none", r.id, n, r.k.Type(0))
				}
			}
		}},
		{"insert after seeing goes nearest the anchor", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "x")
			s.sync(t)
			i1.linsert(t, false, "x", "y1")
			s.sync(t)
			i2.linsert(t, false, "x", "y2")
			s.sync(t)
			wantList(t, "x y2 y1", i1, i2)
		}},
		{"concurrent RPUSH runs stay contiguous", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "t")
			s.sync(t)
			for _, v := range []string{"1", "2", "3"} {
				i2.rpush(t, "b"+v)
				i1.rpush(t, "a"+v)
			}
			s.sync(t)
			wantList(t, "t a1 a2 a3 b1 b2 b3", i1, i2)
		}},
		{"concurrent LPUSH runs stay contiguous", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "R")
			s.sync(t)
			for _, v := range []string{"1", "2", "3"} {
				i2.lpush(t, "b"+v)
				i1.lpush(t, "a"+v)
			}
			s.sync(t)
			wantList(t, "a3 a2 a1 b3 b2 b1 R", i1, i2)
		}},
		{"concurrent multi-value pushes", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "m")
			s.sync(t)
			i2.lpush(t, "x", "y", "z")
			i1.lpush(t, "a", "b", "c")
			i2.rpush(t, "p", "q")
			i1.rpush(t, "r", "s")
			s.sync(t)
			wantList(t, "c b a z y x m r s p q", i1, i2)
		}},
		{"concurrent LINSERT runs stay contiguous", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "x", "end")
			s.sync(t)
			i2.linsert(t, false, "x", "b1")
			i2.linsert(t, false, "b1", "b2")
			i1.linsert(t, false, "x", "a1")
			i1.linsert(t, false, "a1", "a2")
			i1.linsert(t, true, "end", "a3")
			s.sync(t)
			wantList(t, "x a1 a2 a3 b1 b2 end", i1, i2)
		}},
		{"partial sync then more inserts", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "t")
			s.sync(t)
			i1.rpush(t, "a1")
			i2.rpush(t, "b1")
			s.syncTo(t, 2) // I2 sees a1 and pushes after b1: the last it sees
			i2.rpush(t, "b2")
			i1.rpush(t, "a2")
			s.sync(t)
			wantList(t, "t a1 a2 b1 b2", i1, i2)
		}},
		{"three regions at one place", func(t *testing.T, s *lsim) {
			i1, i2, i3 := s.r(1), s.r(2), s.r(3)
			i1.rpush(t, "x", "y")
			s.sync(t)
			i3.linsert(t, true, "y", "c")
			i2.linsert(t, true, "y", "b")
			i1.linsert(t, false, "x", "a")
			s.sync(t)
			wantList(t, "x a b c y", i1, i2, i3)
		}},
		{"LSET concurrent: later HLC wins", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "v")
			s.sync(t)
			i1.lset(t, 0, "a")
			i2.lset(t, 0, "b")
			s.sync(t)
			wantList(t, "b", i1, i2)
		}},
		{"LSET after seeing wins over a skewed clock", func(t *testing.T, s *lsim) {
			s.noMerge = true
			i1, i2 := s.r(1), s.r(2)
			i1.skew = 10_000
			i1.rpush(t, "v")
			s.sync(t)
			i1.lset(t, 0, "a")
			s.sync(t)
			i2.lset(t, 0, "b") // stamped 10 s before "a"
			s.sync(t)
			wantList(t, "b", i1, i2)
		}},
		{"LSET vs concurrent removal: removal wins", func(t *testing.T, s *lsim) {
			i1, i2, i3 := s.r(1), s.r(2), s.r(3)
			i1.rpush(t, "a", "b")
			s.sync(t)
			i1.lset(t, 0, "A")
			i2.pop(t, true, 1)
			// I3 gets the pop first, I1 the LSET first.
			s.deliver(t, 2, 3)
			s.sync(t)
			wantList(t, "b", i1, i2, i3)
		}},
		{"LSET vs concurrent DEL: DEL wins for what it saw", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "a")
			s.sync(t)
			i1.lset(t, 0, "A")
			i1.rpush(t, "b")
			i2.del(t)
			s.sync(t)
			wantList(t, "b", i1, i2)
		}},
		{"DEL keeps a concurrent RPUSH anchored to what it removed", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "x")
			s.sync(t)
			i1.rpush(t, "y")
			i2.del(t)
			i2.rpush(t, "z") // into an empty list: first after the head
			s.sync(t)
			wantList(t, "z y", i1, i2)
		}},
		{"pops are at least once", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "a", "b", "c")
			s.sync(t)
			wantPop(t, i1.pop(t, true, 1), "a")
			wantPop(t, i2.pop(t, true, 1), "a")
			s.sync(t)
			wantList(t, "b c", i1, i2)
		}},
		{"insert waits for its anchor", func(t *testing.T, s *lsim) {
			i1, i2, i3 := s.r(1), s.r(2), s.r(3)
			i1.rpush(t, "x")
			s.deliver(t, 1, 2)
			i2.rpush(t, "y") // anchored to x
			i2.lset(t, 0, "X")
			s.deliver(t, 2, 3) // y before x at I3
			s.deliver(t, 2, 3)
			wantList(t, "", i3)
			s.sync(t)
			wantList(t, "X y", i1, i2, i3)
		}},
		{"removal before the insert", func(t *testing.T, s *lsim) {
			i1, i2, i3 := s.r(1), s.r(2), s.r(3)
			i1.rpush(t, "x", "y")
			s.deliver(t, 1, 2)
			i2.pop(t, true, 1)
			s.deliver(t, 2, 3) // the pop before the push at I3
			s.sync(t)
			wantList(t, "y", i1, i2, i3)
		}},
		{"DEL before the insert it saw", func(t *testing.T, s *lsim) {
			i1, i2, i3 := s.r(1), s.r(2), s.r(3)
			i1.rpush(t, "x")
			s.deliver(t, 1, 2)
			i2.del(t)
			s.deliver(t, 2, 3)
			s.sync(t)
			wantList(t, "", i1, i2, i3)
		}},
		{"counter keeps an insert next to its left neighbour", func(t *testing.T, s *lsim) {
			// x is a left child of R made by I2; x's right child y is
			// removed. I1 inserting between x and R makes a left child of
			// R that must sort after x although its ID is smaller.
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "R")
			s.sync(t)
			i2.linsert(t, true, "R", "x")
			i2.linsert(t, false, "x", "y")
			i2.lrem(t, 1, "y")
			s.sync(t)
			wantInt(t, i1.linsert(t, false, "x", "n"), 3)
			wantList(t, "x n R", i1)
			s.sync(t)
			wantList(t, "x n R", i1, i2)
		}},
		{"LMOVE rotates", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "a", "b", "c")
			s.sync(t)
			i1.lmove(t, true, false)
			i2.lmove(t, false, true)
			wantList(t, "b c a", i1)
			wantList(t, "c a b", i2)
			s.sync(t)
			wantList(t, "c b a", i1, i2)
		}},
		{"LMOVE of one element in two regions moves it twice", func(t *testing.T, s *lsim) {
			i1, i2 := s.r(1), s.r(2)
			i1.rpush(t, "a", "b", "c")
			s.sync(t)
			i1.lmove(t, true, false)
			i2.lmove(t, true, false)
			s.sync(t)
			wantList(t, "b c a a", i1, i2) // popped at least once: lands twice
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, regions := range []int{0, 3} {
				s := newLSim(3, regions)
				tc.run(t, s)
				if t.Failed() {
					return
				}
				for _, r := range s.reps {
					r.checkInvariants(t)
				}
			}
		})
	}
}

func wantInt(t *testing.T, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("reply %d, want %d", got, want)
	}
}

func wantPop(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("popped %q, want %q", got, want)
	}
}

// TestList_Collection checks when removed elements are collected: once
// every region is known, from its own events on the key, to have seen the
// removal.
func TestList_Collection(t *testing.T) {
	s := newLSim(3, 3)
	i1, i2, i3 := s.r(1), s.r(2), s.r(3)
	i1.rpush(t, "a", "b", "c", "d")
	s.sync(t)
	i2.pop(t, true, 2)
	i1.pop(t, false, 1)
	s.sync(t)
	i1.rpush(t, "e")
	i2.rpush(t, "f")
	s.sync(t)
	for _, r := range s.reps {
		if n := r.open(t).Tombstones(); n != 3 {
			t.Errorf("region %d: %d tombstones before I3 wrote, want 3", r.id, n)
		}
	}
	i3.lpush(t, "g")
	s.sync(t)
	for _, r := range s.reps {
		r.checkCollected(t)
		if n := r.open(t).Tombstones(); n != 0 {
			t.Errorf("region %d: %d tombstones, want 0", r.id, n)
		}
	}
	wantList(t, "g c e f", i1, i2, i3)
	// A drained list leaves no record once collected.
	for _, r := range s.reps {
		r.pop(t, true, 10)
		s.sync(t)
	}
	for _, r := range s.reps {
		r.rpush(t, "x")
		s.sync(t)
	}
	i1.pop(t, true, 10)
	s.sync(t)
	for _, r := range s.reps {
		r.rpush(t, "y")
		s.sync(t)
	}
	i1.pop(t, true, 10)
	for round := 0; round < 2; round++ {
		for _, r := range s.reps {
			r.emit(t, []Op{ListRemOp(ElemID{Origin: 9, Seq: 1, Idx: 1})}) // a removal of nothing: a write
			s.sync(t)
		}
	}
	for _, r := range s.reps {
		wantList(t, "", r)
		// What is left: removals of elements that never arrived.
		for k := range r.kv.m {
			if !strings.HasPrefix(k, string(tabElem)) && !strings.HasPrefix(k, string(tabMeta)) {
				t.Errorf("region %d: record %q left", r.id, k)
			}
		}
	}
}
