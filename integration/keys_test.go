package integration

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestKeys_DelSeveralKeys: one DEL of keys in several partitions replicates
// as one observed remove per key; a concurrent SET of one of them survives.
func TestKeys_DelSeveralKeys(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	keys := c.keysInPartitions("del:", 4)
	c.pauseAll() // eu's INCRBY is concurrent with us's SETs
	for i, k := range keys {
		c.expect("us", "OK", "SET", k, fmt.Sprint(i))
	}
	c.expect("eu", "5", "INCRBY", keys[3], "5") // a counter among them
	c.converge()
	c.expectAll("8", "GET", keys[3]) // the unseen increment on top of the SET
	c.expect("ap", "4", "DEL", keys[0], keys[1], keys[2], keys[3], "del:missing")
	c.converge()
	c.expectAll("0", "EXISTS", keys[0], keys[1], keys[2], keys[3])
	c.expectAll("0", "DBSIZE")

	for i, k := range keys {
		c.expect("us", "OK", "SET", k, fmt.Sprint(i))
	}
	c.converge()
	c.pauseAll()
	c.expect("us", "3", "DEL", keys[0], keys[1], keys[2])
	c.expect("eu", "OK", "SET", keys[1], "eu")
	c.converge()
	c.expectAll("(nil)", "GET", keys[0])
	c.expectAll("eu", "GET", keys[1])
	c.expectAll("(nil)", "GET", keys[2])
	c.expectAll("3", "GET", keys[3])
}

// TestKeys_RenameCopy: RENAME and COPY replicate (value and TTL); a
// concurrent write to the renamed source in another region survives there.
func TestKeys_RenameCopy(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "OK", "SET", "src", "v", "EX", "1000")
	c.expect("us", "OK", "SET", "src2", "w")
	c.expect("us", "7", "INCRBY", "cnt", "7")
	c.converge()
	c.expect("us", "OK", "RENAME", "src", "dst")
	c.expect("us", "1", "COPY", "src2", "dst2")
	c.expect("eu", "1", "COPY", "cnt", "cnt2")
	c.converge()
	c.expectAll("(nil)", "GET", "src")
	c.expectAll("v", "GET", "dst")
	c.ttlIn("dst", 900, 1000)
	c.expectAll("w", "GET", "src2")
	c.expectAll("w", "GET", "dst2")
	c.expectAll("7", "GET", "cnt2")
	c.expect("us", "8", "INCR", "cnt2") // the copy is a counter of its own
	c.converge()
	c.expectAll("7", "GET", "cnt")
	c.expectAll("8", "GET", "cnt2")

	c.pauseAll()
	c.expect("us", "OK", "RENAME", "dst", "moved")
	c.expect("eu", "OK", "SET", "dst", "concurrent")
	c.converge()
	c.expectAll("v", "GET", "moved")
	c.expectAll("concurrent", "GET", "dst")
	c.expectAll("-1", "TTL", "dst")
}

// TestKeys_FlushAllVsConcurrentSet: FLUSHALL removes what its region had
// seen; keys written concurrently elsewhere (new ones and rewrites of
// observed ones) survive everywhere.
func TestKeys_FlushAllVsConcurrentSet(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	for i := 0; i < 20; i++ {
		c.expect("us", "OK", "SET", fmt.Sprintf("old:%d", i), "x")
	}
	c.expect("eu", "OK", "SET", "rewritten", "old")
	c.expect("ap", "5", "INCRBY", "counter", "5")
	c.converge()
	c.expectAll("22", "DBSIZE")
	c.pauseAll()
	c.expect("us", "OK", "FLUSHALL")
	c.expect("us", "0", "DBSIZE")
	c.expect("eu", "OK", "SET", "new", "eu")
	c.expect("eu", "OK", "SET", "rewritten", "new")
	c.expect("ap", "7", "INCRBY", "counter", "2")
	c.converge()
	c.expectAll("eu", "GET", "new")
	c.expectAll("new", "GET", "rewritten")
	c.expectAll("2", "GET", "counter") // observed reset: only ap's unseen increment
	c.expectAll("0", "EXISTS", "old:0", "old:7", "old:19")
	c.expectAll("3", "DBSIZE")

	// A FLUSHALL after seeing everything empties every region.
	c.expect("ap", "OK", "FLUSHALL")
	c.converge()
	c.expectAll("0", "DBSIZE")
}

// TestKeys_MSetAtomic: a reader polling the origin or another region never
// sees only some of the keys one MSET wrote, when the keys share a slot
// (hash tag).
//
// Keys of different partitions are not covered: their effects are applied
// by different partition workers, and a reader can see one without the
// other (reported; TestKeys_MSetCrossPartition checks what holds there).
func TestKeys_MSetAtomic(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	for _, reader := range []string{"eu", "us"} {
		t.Run("reader="+reader, func(t *testing.T) {
			sawNone := 0 // rounds in which the reader saw the keys missing first
			for i := 0; i < rounds; i++ {
				keys := []string{fmt.Sprintf("{m%s%d}a", reader, i), fmt.Sprintf("{m%s%d}b", reader, i)}
				type result struct {
					none bool
					err  error
				}
				seen := make(chan result, 1)
				started := make(chan struct{})
				go func() {
					none, err := watchAllOrNothing(c, reader, keys, started)
					seen <- result{none, err}
				}()
				<-started
				c.expect("us", "OK", "MSET", keys[0], "1", keys[1], "2")
				r := <-seen
				if r.err != nil {
					t.Fatalf("round %d: %v", i, r.err)
				}
				if r.none {
					sawNone++
				}
			}
			if sawNone == 0 {
				t.Fatal("the reader never saw the keys before the MSET arrived: the test checked nothing")
			}
		})
	}
}

// TestKeys_MSetCrossPartition: an MSET of keys in different partitions is
// all there in the origin once acknowledged, and arrives whole everywhere.
// eu's clock is ahead, so its concurrent write to y has the greater HLC
// (in the same millisecond as us's, the tie would go to us).
func TestKeys_MSetCrossPartition(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"}, withClockOffset("eu", time.Second))
	for i := 0; i < 5; i++ {
		keys := c.keysInPartitions(fmt.Sprintf("mx%d:", i), 4)
		c.expect("eu", "OK", "MSET", keys[0], "a", keys[1], "b", keys[2], "c", keys[3], "d")
		c.expect("eu", "[a b c d]", "MGET", keys[0], keys[1], keys[2], keys[3])
		c.sync()
		c.expectAll("[a b c d]", "MGET", keys[0], keys[1], keys[2], keys[3])
	}
	c.pauseAll()
	c.expect("us", "OK", "MSET", "x", "us", "y", "us")
	c.expect("eu", "OK", "MSET", "y", "eu", "z", "eu") // later clock: y wins
	c.converge()
	c.expectAll("[us eu eu]", "MGET", "x", "y", "z")
}

// watchAllOrNothing polls region with EXISTS and MGET until every key
// exists, failing if it ever sees only some of them. It reports whether it
// saw none of them first.
func watchAllOrNothing(c *cluster, region string, keys []string, started chan<- struct{}) (sawNone bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := c.r(region)
	args := make([]string, len(keys))
	copy(args, keys)
	close(started)
	for ctx.Err() == nil {
		n, err := cl.Exists(ctx, args...).Result()
		if err != nil {
			return sawNone, err
		}
		if n != 0 && n != int64(len(keys)) {
			return sawNone, fmt.Errorf("EXISTS %v = %d on %s: a partial MSET is visible", keys, n, region)
		}
		sawNone = sawNone || n == 0
		vals, err := cl.MGet(ctx, args...).Result()
		if err != nil {
			return sawNone, err
		}
		nils := 0
		for _, v := range vals {
			if v == nil {
				nils++
			}
		}
		if nils != 0 && nils != len(keys) {
			return sawNone, fmt.Errorf("MGET %v = %v on %s: a partial MSET is visible", keys, vals, region)
		}
		if nils == 0 && n == int64(len(keys)) {
			return sawNone, nil
		}
	}
	return sawNone, fmt.Errorf("MSET of %v not visible on %s in time", keys, region)
}
