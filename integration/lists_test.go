package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lists across regions: the scenarios of aa-semantics.md (L-1..L-4) and
// the rules of decision 11 around them, over RESP with GEOREP PAUSE/RESUME
// making writes concurrent.

// TestLists_L1_Simple: a push made after seeing another comes first.
func TestLists_L1_Simple(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "LPUSH", "mylist", "hello")
	c.converge()
	c.expect("eu", "2", "LPUSH", "mylist", "world")
	c.converge()
	c.expectAll("[world hello]", "LRANGE", "mylist", "0", "-1")
}

// TestLists_L2_ConcurrentInserts: concurrent LINSERTs after one element are
// both kept, the smaller instance ID's first.
func TestLists_L2_ConcurrentInserts(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "LPUSH", "L", "x")
	c.converge()
	c.pauseAll()
	c.expect("us", "2", "LINSERT", "L", "AFTER", "x", "y1")
	c.expect("eu", "2", "LINSERT", "L", "AFTER", "x", "y2")
	c.expect("us", "[x y1]", "LRANGE", "L", "0", "-1")
	c.expect("eu", "[x y2]", "LRANGE", "L", "0", "-1")
	c.converge()
	c.expectAll("[x y1 y2]", "LRANGE", "L", "0", "-1")

	// The same with eu writing first in time: the order does not follow
	// the clock.
	c.expect("us", "1", "DEL", "L")
	c.expect("us", "1", "LPUSH", "L", "x")
	c.converge()
	c.pauseAll()
	c.expect("eu", "2", "LINSERT", "L", "AFTER", "x", "y2")
	c.expect("us", "2", "LINSERT", "L", "AFTER", "x", "y1")
	c.converge()
	c.expectAll("[x y1 y2]", "LRANGE", "L", "0", "-1")
}

// TestLists_L3_DelKeepsConcurrentPush: DEL removes the elements its region
// had seen; a concurrent push survives.
func TestLists_L3_DelKeepsConcurrentPush(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "LPUSH", "L", "x")
	c.converge()
	c.expectAll("[x]", "LRANGE", "L", "0", "-1")
	c.pauseAll()
	c.expect("us", "2", "LPUSH", "L", "y")
	c.expect("eu", "1", "DEL", "L")
	c.expect("eu", "0", "EXISTS", "L")
	c.converge()
	c.expectAll("[y]", "LRANGE", "L", "0", "-1")
	c.expectAll("1", "LLEN", "L")
}

// TestLists_L4_PopsAtLeastOnce: two regions may pop the same element; it is
// removed once, and the emptied list no longer exists.
func TestLists_L4_PopsAtLeastOnce(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "3", "LPUSH", "L", "x", "y", "z")
	c.converge()
	c.expect("eu", "x", "RPOP", "L")
	c.converge()
	c.expect("us", "y", "RPOP", "L")
	c.converge()
	c.pauseAll()
	c.expect("us", "z", "RPOP", "L")
	c.expect("eu", "z", "RPOP", "L")
	c.converge()
	c.expectAll("0", "LLEN", "L")
	c.expectAll("0", "EXISTS", "L")
	c.expectAll("none", "TYPE", "L")
}

// Concurrent runs of pushes at one place stay contiguous, the smaller
// instance ID's run first; pushes made after seeing others go nearest
// their end, as in Redis.
func TestLists_ConcurrentRunsStayContiguous(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.expect("ap", "1", "RPUSH", "L", "m")
	c.converge()
	c.pauseAll()
	c.expect("ap", "3", "LPUSH", "L", "a1", "a2")
	c.expect("eu", "4", "LPUSH", "L", "e1", "e2", "e3")
	c.expect("us", "2", "LPUSH", "L", "u1")
	c.expect("us", "3", "LPUSH", "L", "u2")
	c.expect("eu", "5", "RPUSH", "L", "e4")
	c.expect("us", "4", "RPUSH", "L", "u3")
	c.converge()
	c.expectAll("[u2 u1 e3 e2 e1 a2 a1 m u3 e4]", "LRANGE", "L", "0", "-1")
	c.expectAll("10", "LLEN", "L")
	// After seeing everything, pushes go to the very ends.
	c.expect("ap", "11", "LPUSH", "L", "first")
	c.expect("ap", "12", "RPUSH", "L", "last")
	c.converge()
	c.expectAll("first", "LINDEX", "L", "0")
	c.expectAll("last", "LINDEX", "L", "-1")
}

// An insert made after seeing a concurrent sibling comes before it
// (nearest the pivot), whatever the instance IDs.
func TestLists_InsertAfterSeeingGoesFirst(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "RPUSH", "L", "x")
	c.converge()
	c.expect("us", "2", "LINSERT", "L", "AFTER", "x", "y1")
	c.converge()
	c.expect("eu", "3", "LINSERT", "L", "AFTER", "x", "y2")
	c.converge()
	c.expectAll("[x y2 y1]", "LRANGE", "L", "0", "-1")
	c.expect("eu", "4", "LINSERT", "L", "BEFORE", "y1", "z")
	c.converge()
	c.expectAll("[x y2 z y1]", "LRANGE", "L", "0", "-1")
}

// LSET is last-writer-wins on the element; a concurrent removal of the
// element wins over it.
func TestLists_LSet(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"}, withClockOffset("eu", time.Second))
	c.expect("us", "3", "RPUSH", "L", "a", "b", "c")
	c.converge()
	c.pauseAll()
	c.expect("us", "OK", "LSET", "L", "0", "us")
	c.expect("eu", "OK", "LSET", "L", "0", "eu") // later clock: wins
	c.expect("ap", "OK", "LSET", "L", "1", "ap")
	c.converge()
	c.expectAll("[eu ap c]", "LRANGE", "L", "0", "-1")

	c.pauseAll()
	c.expect("us", "OK", "LSET", "L", "1", "set")
	c.expect("eu", "1", "LREM", "L", "0", "ap") // removal wins
	c.expect("ap", "OK", "LSET", "L", "2", "C")
	c.expect("ap", "eu", "LPOP", "L")
	c.expect("us", "OK", "LSET", "L", "0", "lost") // popped by ap concurrently
	c.converge()
	c.expectAll("[C]", "LRANGE", "L", "0", "-1")
}

// LREM and LTRIM remove the element instances their region had seen; a
// concurrent push survives them.
func TestLists_LRemLTrimObserved(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "4", "RPUSH", "L", "a", "x", "b", "x")
	c.converge()
	c.pauseAll()
	c.expect("us", "2", "LREM", "L", "0", "x")
	c.expect("eu", "5", "RPUSH", "L", "x")
	c.converge()
	c.expectAll("[a b x]", "LRANGE", "L", "0", "-1")

	c.pauseAll()
	c.expect("us", "OK", "LTRIM", "L", "1", "1")
	c.expect("eu", "4", "LPUSH", "L", "new")
	c.expect("us", "[b]", "LRANGE", "L", "0", "-1")
	c.converge()
	c.expectAll("[new b]", "LRANGE", "L", "0", "-1")
}

// LMOVE / RPOPLPUSH: the source side is an observed removal, so under
// concurrency the same element may land in two destinations.
func TestLists_LMoveConcurrent(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "RPUSH", "src", "a", "b")
	c.converge()
	c.pauseAll()
	c.expect("us", "b", "LMOVE", "src", "d1", "RIGHT", "LEFT")
	c.expect("eu", "b", "RPOPLPUSH", "src", "d2")
	c.converge()
	c.expectAll("[a]", "LRANGE", "src", "0", "-1")
	c.expectAll("[b]", "LRANGE", "d1", "0", "-1")
	c.expectAll("[b]", "LRANGE", "d2", "0", "-1")
	// Within one list (rotation).
	c.expect("eu", "3", "RPUSH", "r", "1", "2", "3")
	c.converge()
	c.expect("us", "3", "LMOVE", "r", "r", "RIGHT", "LEFT")
	c.converge()
	c.expectAll("[3 1 2]", "LRANGE", "r", "0", "-1")
}

// A type conflict between a list and a string: the latest live write's
// type is visible and the other state is discarded.
func TestLists_TypeConflict(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", time.Second))
	c.pauseAll()
	c.expect("us", "1", "RPUSH", "k", "a")
	c.expect("eu", "OK", "SET", "k", "s") // later
	c.converge()
	c.expectAll("string", "TYPE", "k")
	c.expectAll("s", "GET", "k")
	for _, r := range c.names {
		if _, err := c.do(r, "LRANGE", "k", "0", "-1"); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			c.t.Fatalf("%s LRANGE on a string: %v", r, err)
		}
	}
	// The list wins when it is written later.
	c.pauseAll()
	c.expect("eu", "1", "RPUSH", "k2", "a")
	c.expect("us", "OK", "SET", "k2", "s")
	c.converge()
	c.expectAll("list", "TYPE", "k2")
	c.expectAll("[a]", "LRANGE", "k2", "0", "-1")
	c.expect("us", "OK", "SET", "k2", "t")
	c.converge()
	c.expectAll("t", "GET", "k2")
}

// The expiry of a list is an observed DEL by the region owning the TTL: a
// push made concurrently elsewhere survives it.
func TestLists_ExpiryKeepsConcurrentPush(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "RPUSH", "L", "a", "b")
	c.expect("us", "1", "PEXPIRE", "L", "1500")
	c.converge()
	c.pauseAll()
	c.expect("eu", "3", "RPUSH", "L", "c")
	eventually(t, 10*time.Second, func() error {
		if v, err := c.do("us", "EXISTS", "L"); err != nil || v != int64(0) {
			return fmt.Errorf("us EXISTS L = %v, %v", v, err)
		}
		return nil
	})
	// us owns the TTL: its reaper deletes the key (us's third event).
	eventually(t, 10*time.Second, func() error {
		if seq := c.status("us").Applied["1"]; seq < 3 {
			return fmt.Errorf("us applied its own events up to %d", seq)
		}
		return nil
	})
	c.converge()
	c.expectAll("[c]", "LRANGE", "L", "0", "-1")
	c.expectAll("-1", "TTL", "L")
}

// RENAME and COPY of a list replicate its elements in order.
func TestLists_RenameCopy(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "3", "RPUSH", "src", "a", "b", "c")
	c.converge()
	c.expect("eu", "1", "COPY", "src", "cp")
	c.converge()
	c.expect("eu", "OK", "RENAME", "src", "dst")
	c.converge()
	c.expectAll("0", "EXISTS", "src")
	c.expectAll("[a b c]", "LRANGE", "dst", "0", "-1")
	c.expectAll("[a b c]", "LRANGE", "cp", "0", "-1")
	c.expect("us", "4", "RPUSH", "dst", "d")
	c.converge()
	c.expectAll("[a b c]", "LRANGE", "cp", "0", "-1")
}

// FLUSHALL removes the lists the region had seen; a concurrent push
// elsewhere survives; keyspace commands see lists.
func TestLists_FlushAllAndKeyspace(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "RPUSH", "a", "1", "2")
	c.expect("us", "1", "RPUSH", "b", "1")
	c.converge()
	c.expectAll("2", "DBSIZE")
	c.expectAll("list", "TYPE", "a")
	c.expectAll("[0 [a]]", "SCAN", "0", "MATCH", "a", "TYPE", "list")
	c.pauseAll()
	c.expect("us", "OK", "FLUSHALL")
	c.expect("eu", "3", "RPUSH", "a", "3")
	c.converge()
	c.expectAll("[3]", "LRANGE", "a", "0", "-1")
	c.expectAll("1", "DBSIZE")
	// Popping the last element leaves nothing to count.
	c.expect("eu", "3", "LPOP", "a")
	c.converge()
	c.expectAll("0", "DBSIZE")
}

// Lists survive a restart of every region (state and logs on disk).
func TestLists_Restart(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withDataDir(t.TempDir()))
	c.expect("us", "3", "RPUSH", "L", "a", "b", "c")
	c.converge()
	c.expect("eu", "b", "LINDEX", "L", "1")
	c.expect("eu", "a", "LPOP", "L")
	c.converge()
	c.expect("us", "OK", "LSET", "L", "1", "C")
	c.converge()
	c.restart()
	c.expectAll("[b C]", "LRANGE", "L", "0", "-1")
	c.expect("eu", "3", "RPUSH", "L", "d")
	c.converge()
	c.expectAll("[b C d]", "LRANGE", "L", "0", "-1")
}

// blocked waits until region has a client blocked in cmd (CLIENT LIST).
func (c *cluster) blocked(region, cmd string) {
	c.t.Helper()
	eventually(c.t, 10*time.Second, func() error {
		v, err := c.do(region, "CLIENT", "LIST")
		if err != nil {
			return err
		}
		if !strings.Contains(fmt.Sprint(v), "cmd="+cmd+" ") {
			return fmt.Errorf("no client blocked in %s on %s yet", cmd, region)
		}
		return nil
	})
}

// blocking runs a blocking command on region in the background; its reply
// (or error) arrives on the channel.
func (c *cluster) blocking(region string, args ...any) <-chan string {
	out := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := c.r(region).Do(ctx, args...).Result()
		switch {
		case err == redis.Nil:
			out <- "(nil)"
		case err != nil:
			out <- "ERR: " + err.Error()
		default:
			out <- fmt.Sprint(v)
		}
	}()
	return out
}

func reply(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(25 * time.Second):
		t.Fatalf("%s: no reply", what)
	}
	return ""
}

// A blocking pop in one region is woken by a push made in another.
func TestLists_BlockingPopWokenByPeerPush(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	got := c.blocking("eu", "BLPOP", "other", "q", "20")
	c.blocked("eu", "blpop")
	c.expect("us", "1", "RPUSH", "q", "job")
	if r := reply(t, got, "BLPOP on eu"); r != "[q job]" {
		t.Fatalf("BLPOP on eu = %s", r)
	}
	c.converge()
	c.expectAll("0", "LLEN", "q")

	// BLMOVE: the element moves in eu, and the move replicates.
	got = c.blocking("eu", "BLMOVE", "src", "dst", "LEFT", "RIGHT", "20")
	c.blocked("eu", "blmove")
	c.expect("us", "2", "RPUSH", "src", "a", "b")
	if r := reply(t, got, "BLMOVE on eu"); r != "a" {
		t.Fatalf("BLMOVE on eu = %s", r)
	}
	c.converge()
	c.expectAll("[b]", "LRANGE", "src", "0", "-1")
	c.expectAll("[a]", "LRANGE", "dst", "0", "-1")

	// BLMPOP with a count, woken by a push of several values.
	got = c.blocking("eu", "BLMPOP", "20", "1", "m", "RIGHT", "COUNT", "2")
	c.blocked("eu", "blmpop")
	c.expect("us", "3", "RPUSH", "m", "1", "2", "3")
	if r := reply(t, got, "BLMPOP on eu"); r != "[m [3 2]]" {
		t.Fatalf("BLMPOP on eu = %s", r)
	}
	c.converge()
	c.expectAll("[1]", "LRANGE", "m", "0", "-1")
}

// Blocked clients in two regions woken by one push: pops are at least
// once, so both may get the element; it is popped at least once and
// removed once.
func TestLists_BlockingPopsInTwoRegions(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	eu := c.blocking("eu", "BRPOP", "q", "3")
	ap := c.blocking("ap", "BRPOP", "q", "3")
	c.blocked("eu", "brpop")
	c.blocked("ap", "brpop")
	c.expect("us", "1", "LPUSH", "q", "job")
	r1, r2 := reply(t, eu, "BRPOP on eu"), reply(t, ap, "BRPOP on ap")
	popped := 0
	for _, r := range []string{r1, r2} {
		switch r {
		case "[q job]":
			popped++
		case "(nil)": // timed out: the other region's pop arrived first
		default:
			t.Fatalf("BRPOP = %s", r)
		}
	}
	if popped == 0 {
		t.Fatalf("nobody popped the element: %s, %s", r1, r2)
	}
	c.converge()
	c.expectAll("0", "LLEN", "q")
	c.expectAll("0", "EXISTS", "q")
}
