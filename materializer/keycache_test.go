package materializer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// TestKeyCache_StateEqualsUncached applies the same events, in the same
// batches and with the same maintenance steps in between, to a node whose
// apply loop caches decoded key states (large and tiny caches, so entries
// are evicted too) and to one that does not: every stored entry must be
// byte for byte the same.
func TestKeyCache_StateEqualsUncached(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			evs, _ := simulate(t, rng, 150)
			all := interleave(rng, evs)
			nodes := []*Node{newApplyNode(t), newApplyNode(t), newApplyNode(t)}
			for i, bytes := range []int64{0, 1 << 20, 2 << 10} {
				for _, p := range nodes[i].parts {
					p.cache = newKeyCache(bytes)
					p.cache.setComplete() // the state is empty
				}
			}
			feeders := []*feeder{newFeeder(nodes[0]), newFeeder(nodes[1]), newFeeder(nodes[2])}
			for len(all) > 0 {
				k := min(len(all), 1+rng.IntN(8))
				batch := 1 + rng.IntN(4)
				maintain := rng.IntN(3) == 0
				for i, n := range nodes {
					feeders[i].apply(t, batch, all[:k]...)
					if maintain {
						for _, p := range n.parts {
							if err := n.maintain(p); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				all = all[k:]
			}
			want, wantTombs := rawDump(t, nodes[0]), nodes[0].tombstones()
			for i, n := range nodes[1:] {
				if got := rawDump(t, n); got != want {
					t.Fatalf("cached node %d differs from the uncached one\n got:\n%s\nwant:\n%s", i+1, got, want)
				}
				if got := n.tombstones(); got != wantTombs {
					t.Fatalf("cached node %d counts %d tombstones, the uncached one %d", i+1, got, wantTombs)
				}
			}
			if nodes[1].parts[0].cache.len() == 0 && nodes[1].parts[1].cache.len() == 0 {
				t.Fatal("nothing was cached")
			}
		})
	}
}

// rawDump renders every stored entry.
func rawDump(t testing.TB, n *Node) string {
	t.Helper()
	var b bytes.Buffer
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%q = %x\n", it.Item().Key(), v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestKeyCache(t *testing.T) {
	k := func(seq uint64) *crdt.Key { return &crdt.Key{VV: crdt.Clock{{Origin: 1, Seq: seq}}} }
	get := func(c *keyCache, key string) *crdt.Key {
		if e := c.get([]byte(key)); e != nil {
			return e.k
		}
		return nil
	}
	t.Run("GetPutDrop", func(t *testing.T) {
		c := newKeyCache(1 << 20)
		if get(c, "a") != nil {
			t.Fatal("empty cache returned a state")
		}
		a := k(1)
		c.put("a", a, 10)
		if get(c, "a") != a {
			t.Fatal("put state not returned")
		}
		c.drop([]byte("a"))
		if get(c, "a") != nil || c.curBytes != 0 {
			t.Fatalf("dropped state returned, %d bytes counted", c.curBytes)
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		const budget = 64 << 10
		c := newKeyCache(budget)
		for i := range 10000 {
			c.put(fmt.Sprint("key", i), k(uint64(i)), 100)
			if c.curBytes > budget/2 {
				t.Fatalf("current generation holds %d bytes", c.curBytes)
			}
		}
		per := int64(100 + len("key9999") + keyCacheOverhead)
		if n := int64(c.len()); n*per > budget+per {
			t.Fatalf("%d entries of ~%d bytes kept with a budget of %d", n, per, budget)
		}
		if get(c, "key9999") == nil || get(c, "key0") != nil {
			t.Fatal("the newest entry must be kept and the oldest dropped")
		}
	})
	t.Run("PromotesOld", func(t *testing.T) {
		c := newKeyCache(4 * (keyCacheOverhead + 20))
		a := k(1)
		c.put("a", a, 10)
		c.put("b", k(2), 10)
		c.put("c", k(3), 10) // rotates: a and b are old
		if get(c, "a") != a {
			t.Fatal("old entry lost before the next rotation")
		}
		c.put("d", k(4), 10) // rotates again: c and a (promoted) are old, b is gone
		if get(c, "a") != a || get(c, "b") != nil {
			t.Fatal("promotion kept the wrong entries")
		}
	})
	t.Run("Complete", func(t *testing.T) {
		c := newKeyCache(4 * (keyCacheOverhead + 20))
		c.setComplete()
		c.put("a", k(1), 10)
		c.put("b", k(2), 10)
		c.put("c", k(3), 10) // rotates, forgets nothing yet
		if !c.complete {
			t.Fatal("complete lost without forgetting a key")
		}
		c.put("d", k(4), 10)
		c.put("e", k(5), 10) // rotates again: a and b are forgotten
		if c.complete {
			t.Fatal("still complete after forgetting keys")
		}
		c = newKeyCache(1 << 20)
		c.setComplete()
		c.drop([]byte("a"))
		if c.complete {
			t.Fatal("still complete after a drop")
		}
		c = newKeyCache(0)
		if c.setComplete(); c.complete {
			t.Fatal("a disabled cache is never complete")
		}
	})
	t.Run("Off", func(t *testing.T) {
		c := newKeyCache(0)
		c.put("a", k(1), 10)
		if get(c, "a") != nil || c.len() != 0 {
			t.Fatal("a disabled cache keeps states")
		}
		c.drop([]byte("a"))
		c.clear()
	})
}

// TestKeyCache_SweepDropsRewrittenKeys: the tombstone sweep deletes a key
// whose only state was a tombstone the stable clock has passed; a later
// event on the key must start from nothing (its VV forgotten), as an
// uncached apply loop does.
func TestKeyCache_SweepDropsRewrittenKeys(t *testing.T) {
	set := func(o crdt.ReplicaID, seq uint64, key, v string) *crdt.Event {
		return &crdt.Event{Dot: crdt.Dot{Origin: o, Seq: seq}, HLC: crdt.HLC(seq << 16), Key: []byte(key),
			Ops: []crdt.Op{{Kind: crdt.OpSet, Value: []byte(v)}}}
	}
	del := &crdt.Event{Dot: crdt.Dot{Origin: 2, Seq: 1}, HLC: 2 << 16, Key: []byte("{t}a"),
		Observed: crdt.Clock{{Origin: 1, Seq: 1}, {Origin: 3, Seq: 1}}, Ops: []crdt.Op{{Kind: crdt.OpDelete}}}
	var dumps []string
	for _, bytes := range []int64{0, 1 << 20} {
		n := newApplyNode(t)
		for _, p := range n.parts {
			p.cache = newKeyCache(bytes)
		}
		f := newFeeder(n)
		f.apply(t, 1, set(1, 1, "{t}a", "x"), del)
		f.apply(t, 1, set(3, 1, "{t}b", "y")) // the partition's stable clock passes the delete
		for _, p := range n.parts {
			if err := n.maintain(p); err != nil {
				t.Fatal(err)
			}
		}
		f.apply(t, 1, set(2, 2, "{t}a", "z"))
		dumps = append(dumps, rawDump(t, n))
	}
	if dumps[0] != dumps[1] {
		t.Fatalf("cached:\n%s\nuncached:\n%s", dumps[1], dumps[0])
	}
}
