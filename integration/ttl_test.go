package integration

import (
	"fmt"
	"testing"
	"time"
)

// TestTTL_E1_LongestWins: concurrent EXPIREs, the longest TTL wins
// everywhere, in either time order.
func TestTTL_E1_LongestWins(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.expect("us", "OK", "SET", "key1", "v", "EX", "1000")
	c.expect("us", "OK", "SET", "key2", "v", "EX", "1000")
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "EXPIRE", "key1", "10")
	c.expect("eu", "1", "EXPIRE", "key1", "50")
	c.expect("eu", "1", "EXPIRE", "key2", "50")
	c.expect("ap", "1", "EXPIRE", "key2", "10")
	c.converge()
	c.ttlIn("key1", 40, 50)
	c.ttlIn("key2", 40, 50)
	c.expectAll("v", "GET", "key1")
}

// TestTTL_PersistBeatsExpire: PERSIST, or a write that clears the TTL (SET
// without KEEPTTL), beats any concurrent TTL.
func TestTTL_PersistBeatsExpire(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	for _, k := range []string{"p1", "p2", "s1", "s2"} {
		c.expect("us", "OK", "SET", k, "v", "EX", "100")
	}
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "PERSIST", "p1")
	c.expect("eu", "1", "EXPIRE", "p1", "500")
	c.expect("eu", "1", "EXPIRE", "p2", "500")
	c.expect("us", "1", "PERSIST", "p2")
	c.expect("us", "OK", "SET", "s1", "w")
	c.expect("eu", "1", "EXPIRE", "s1", "500")
	c.expect("eu", "1", "EXPIRE", "s2", "500")
	c.expect("us", "OK", "SET", "s2", "w")
	c.expect("eu", "1", "PEXPIREAT", "p1", fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()))
	c.converge()
	for _, k := range []string{"p1", "p2", "s1", "s2"} {
		c.expectAll("-1", "TTL", k)
	}
	c.expectAll("w", "GET", "s1")
	c.expectAll("w", "GET", "s2")
	c.expectAll("v", "GET", "p1")
}

// TestTTL_SetOptionsVsExpire: SET KEEPTTL leaves the TTL to the concurrent
// EXPIRE; SET EX competes with it like any EXPIRE (longest wins).
func TestTTL_SetOptionsVsExpire(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	for _, k := range []string{"keep", "exlong", "exshort"} {
		c.expect("us", "OK", "SET", k, "v", "EX", "100")
	}
	c.converge()
	c.pauseAll()
	c.expect("us", "OK", "SET", "keep", "w", "KEEPTTL")
	c.expect("eu", "1", "EXPIRE", "keep", "500")
	c.expect("us", "OK", "SET", "exlong", "w", "EX", "800")
	c.expect("eu", "1", "EXPIRE", "exlong", "500")
	c.expect("us", "OK", "SET", "exshort", "w", "EX", "200")
	c.expect("eu", "1", "EXPIRE", "exshort", "500")
	c.converge()
	c.ttlIn("keep", 450, 500)
	c.ttlIn("exlong", 750, 800)
	c.ttlIn("exshort", 450, 500)
	for _, k := range []string{"keep", "exlong", "exshort"} {
		c.expectAll("w", "GET", k)
	}
}

// TestTTL_ChangeAfterSeeingReplaces: a TTL change made after seeing
// another one replaces it, even a shorter one, and even when the earlier one
// was a PERSIST.
func TestTTL_ChangeAfterSeeingReplaces(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "OK", "SET", "k", "v", "EX", "1000")
	c.converge()
	c.expect("us", "1", "EXPIRE", "k", "500")
	c.sync()
	c.expect("eu", "1", "EXPIRE", "k", "20")
	c.converge()
	c.ttlIn("k", 10, 20)
	c.expect("us", "1", "PERSIST", "k")
	c.sync()
	c.expect("eu", "1", "EXPIRE", "k", "30")
	c.converge()
	c.ttlIn("k", 21, 30)
}

// TestTTL_ExpiryDeletedByOwner: a key with a short TTL disappears in every
// region; the region that set the winning TTL issues the DEL (its sequence
// grows by one everywhere, the other's does not), and the regions converge.
func TestTTL_ExpiryDeletedByOwner(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	us, eu := c.instanceID("us"), c.instanceID("eu")
	c.expect("us", "OK", "SET", "long", "v")
	c.expect("us", "OK", "SET", "byeu", "v")
	c.converge()

	for _, tc := range []struct{ key, owner, other, setter string }{
		{"byus", us, eu, "us"},
		{"byeu", eu, us, "eu"},
	} {
		before := map[string]regionStatus{}
		for _, r := range c.names {
			before[r] = c.status(r)
		}
		// One write of the owner sets the TTL, one more is the expiry's DEL.
		if tc.setter == "us" {
			c.expect("us", "OK", "SET", tc.key, "v", "PX", "300")
		} else {
			c.expect("eu", "1", "PEXPIRE", tc.key, "300")
		}
		eventually(t, 10*time.Second, func() error {
			for _, r := range c.names {
				if n := c.must(r, "EXISTS", tc.key); n != int64(0) {
					return fmt.Errorf("%s: EXISTS %s = %v", r, tc.key, n)
				}
			}
			return nil
		})
		// The owner's DEL reaches every region; nobody else writes.
		eventually(t, 10*time.Second, func() error {
			c.sync()
			for _, r := range c.names {
				st := c.status(r)
				if got, want := st.Applied[tc.owner], before[r].Applied[tc.owner]+2; got != want {
					return fmt.Errorf("%s: applied[%s] = %d, want %d (the owner's expiry DEL)", r, tc.owner, got, want)
				}
				if got, want := st.Applied[tc.other], before[r].Applied[tc.other]; got != want {
					return fmt.Errorf("%s: applied[%s] = %d, want %d: a non-owner wrote", r, tc.other, got, want)
				}
			}
			return nil
		})
		c.converge()
		c.expectAll("-2", "TTL", tc.key)
	}
	c.expectAll("v", "GET", "long")
	c.expectAll("1", "DBSIZE")
}

// TestTTL_NonOwnerHidesAndWritesAsMissing: a region that does not own the
// expiry hides an expired key on read before the owner's DEL arrives, and a
// write there behaves as on a missing key. eu's clock runs 20s ahead, so
// keys us sets with a 10s TTL are expired for eu at once while us (the
// owner) deletes them only 10s later: no race with the owner's DEL.
func TestTTL_NonOwnerHidesAndWritesAsMissing(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", 20*time.Second))
	us, eu := c.instanceID("us"), c.instanceID("eu")
	c.expect("us", "OK", "SET", "base", "x")
	c.converge()
	before := c.status("eu")
	c.expect("us", "OK", "SET", "n", "5", "EX", "10")
	c.expect("us", "OK", "SET", "s", "old", "EX", "10")
	c.expect("us", "OK", "SET", "a", "old", "EX", "10")
	c.sync()
	if got, want := c.status("eu").Applied[us], before.Applied[us]+3; got != want {
		t.Fatalf("eu applied[us] = %d after sync, want %d", got, want)
	}
	c.pause("eu") // the owner's DEL cannot reach eu
	c.expect("us", "3", "EXISTS", "n", "s", "a")
	c.expect("eu", "0", "EXISTS", "n", "s", "a")
	c.expect("eu", "(nil)", "GET", "n")
	c.expect("eu", "-2", "TTL", "n")
	if got := c.status("eu").Applied[eu]; got != before.Applied[eu] {
		t.Fatalf("eu wrote (applied[eu] %d -> %d) though it does not own the expiry", before.Applied[eu], got)
	}
	c.expect("eu", "1", "INCR", "n")
	c.expect("eu", "OK", "SET", "s", "new")
	c.expect("eu", "3", "APPEND", "a", "new")
	c.expect("eu", "-1", "TTL", "n")
	c.converge()
	c.expectAll("1", "GET", "n")
	c.expectAll("new", "GET", "s")
	c.expectAll("new", "GET", "a")
	for _, k := range []string{"n", "s", "a"} {
		c.expectAll("-1", "TTL", k)
	}
	c.expectAll("x", "GET", "base")
}
