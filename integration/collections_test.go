package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// Hashes, sets and sorted sets across regions: the scenarios of
// aa-semantics.md (H-1, H-2, SET-1, SET-2, Z-1, Z-2, Z-5, T-1) and the rules
// around them, over RESP with GEOREP PAUSE/RESUME making writes concurrent.

// TestHashes_H1_AddWins: concurrent HSETs of different fields are unioned.
func TestHashes_H1_AddWins(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.pauseAll()
	c.expect("us", "1", "HSET", "key1", "field1", "a")
	c.expect("eu", "1", "HSET", "key1", "field2", "b")
	c.converge()
	c.expectAll("[field1 a field2 b]", "HGETALL", "key1")
	c.expectAll("2", "HLEN", "key1")
}

// TestHashes_H2_HDelVsConcurrentUpdate: an HDEL removes only the field
// version its region had seen; the concurrent update survives.
func TestHashes_H2_HDelVsConcurrentUpdate(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "HSET", "h", "f", "v0")
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "HDEL", "h", "f")
	c.expect("eu", "0", "HSET", "h", "f", "v1")
	c.expect("us", "(nil)", "HGET", "h", "f")
	c.converge()
	c.expectAll("v1", "HGET", "h", "f")
}

// TestHashes_ConcurrentHSetLWW: concurrent HSETs of one field: the later
// write wins everywhere (eu's clock runs ahead, so its write is later).
func TestHashes_ConcurrentHSetLWW(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"}, withClockOffset("eu", time.Second))
	c.expect("us", "1", "HSET", "h", "other", "x")
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "HSET", "h", "f", "us")
	c.expect("eu", "1", "HSET", "h", "f", "eu")
	c.expect("ap", "1", "HSET", "h", "g", "ap")
	c.converge()
	c.expectAll("[f eu g ap other x]", "HGETALL", "h")
}

// TestHashes_HIncrBySums: concurrent HINCRBYs of one field add up; an HSET
// resets the increments its region had seen, unseen ones survive on top.
func TestHashes_HIncrBySums(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.pauseAll()
	c.expect("us", "5", "HINCRBY", "h", "n", "5")
	c.expect("eu", "3", "HINCRBY", "h", "n", "3")
	c.expect("ap", "-1", "HINCRBY", "h", "n", "-1")
	c.converge()
	c.expectAll("7", "HGET", "h", "n")
	c.pauseAll()
	c.expect("us", "0", "HSET", "h", "n", "100")
	c.expect("eu", "8", "HINCRBY", "h", "n", "1")
	c.converge()
	c.expectAll("101", "HGET", "h", "n")
	c.pauseAll()
	c.expect("us", "101.5", "HINCRBYFLOAT", "h", "n", "0.5")
	c.expect("eu", "102", "HINCRBY", "h", "n", "1")
	c.converge()
	c.expectAll("102.5", "HGET", "h", "n")
}

// TestSets_SET1_AddWins is the reference's example: concurrent adds union.
func TestSets_SET1_AddWins(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.pauseAll()
	c.expect("us", "1", "SADD", "key1", "a")
	c.expect("eu", "1", "SADD", "key1", "b")
	c.expect("us", "[a]", "SMEMBERS", "key1")
	c.expect("eu", "[b]", "SMEMBERS", "key1")
	c.converge()
	c.expectAll("[a b]", "SMEMBERS", "key1")
}

// TestSets_SET2_ObservedRemove: a remove takes only what its region had
// seen: SREM of an element added concurrently elsewhere does nothing.
func TestSets_SET2_ObservedRemove(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "SADD", "key1", "a", "b")
	c.converge()
	c.expectAll("[a b]", "SMEMBERS", "key1")
	c.pauseAll()
	c.expect("us", "1", "SREM", "key1", "a")
	c.expect("eu", "1", "SADD", "key1", "c")
	c.expect("us", "0", "SREM", "key1", "c")
	c.converge()
	c.expectAll("[b c]", "SMEMBERS", "key1")
}

// TestSets_ReAddWinsOverConcurrentRemove: SADD of a member already there is
// an add too: it survives a concurrent SREM that did not see it.
func TestSets_ReAddWinsOverConcurrentRemove(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "SADD", "s", "m")
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "SREM", "s", "m")
	c.expect("eu", "0", "SADD", "s", "m")
	c.converge()
	c.expectAll("[m]", "SMEMBERS", "s")
}

// TestSets_SPopAtLeastOnce: two regions pop the same member concurrently;
// both return it, and it is gone everywhere after the sync.
func TestSets_SPopAtLeastOnce(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "SADD", "q", "job")
	c.converge()
	c.pauseAll()
	c.expect("us", "job", "SPOP", "q")
	c.expect("eu", "job", "SPOP", "q")
	c.converge()
	c.expectAll("0", "EXISTS", "q")
	c.expectAll("0", "SCARD", "q")
}

// TestSets_SMoveAndStore: SMOVE and S*STORE across regions: the store
// replaces the destination with an observed DEL, so a concurrent add to
// the destination elsewhere survives.
func TestSets_SMoveAndStore(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "3", "SADD", "a", "1", "2", "3")
	c.expect("us", "2", "SADD", "b", "2", "3")
	c.expect("us", "1", "SADD", "dst", "old")
	c.converge()
	c.pauseAll()
	c.expect("us", "2", "SINTERSTORE", "dst", "a", "b")
	c.expect("eu", "1", "SADD", "dst", "new")
	c.expect("eu", "1", "SMOVE", "a", "b", "1")
	c.converge()
	c.expectAll("[2 3 new]", "SMEMBERS", "dst")
	c.expectAll("[2 3]", "SMEMBERS", "a")
	c.expectAll("[1 2 3]", "SMEMBERS", "b")
}

// TestZSets_Z1_NoConflict: writes with a sync in between.
func TestZSets_Z1_NoConflict(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "ZADD", "Z", "1.1", "x")
	c.converge()
	c.expect("eu", "1", "ZADD", "Z", "1.2", "y")
	c.converge()
	c.expectAll("[x y]", "ZRANGE", "Z", "0", "-1")
}

// TestZSets_Z2_ConcurrentAddLWW: concurrent ZADDs of one member: the later
// score wins (eu's clock is ahead); a tie goes to the smaller instance ID.
func TestZSets_Z2_ConcurrentAddLWW(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", time.Second))
	c.pauseAll()
	c.expect("us", "1", "ZADD", "Z", "1.1", "x")
	c.expect("eu", "1", "ZADD", "Z", "2.1", "x")
	c.expect("us", "1.1", "ZSCORE", "Z", "x")
	c.expect("eu", "2.1", "ZSCORE", "Z", "x")
	c.converge()
	c.expectAll("2.1", "ZSCORE", "Z", "x")
}

// TestZSets_Z5_ZRemVsConcurrentZIncrBy: ZREM removes the score it saw; the
// unseen concurrent increment survives alone.
func TestZSets_Z5_ZRemVsConcurrentZIncrBy(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "ZADD", "Z", "4.1", "x")
	c.converge()
	c.expectAll("4.1", "ZSCORE", "Z", "x")
	c.pauseAll()
	c.expect("us", "1", "ZREM", "Z", "x")
	c.expect("eu", "6.1", "ZINCRBY", "Z", "2.0", "x")
	c.expect("us", "(nil)", "ZSCORE", "Z", "x")
	c.expect("eu", "6.1", "ZSCORE", "Z", "x")
	c.converge()
	c.expectAll("2", "ZSCORE", "Z", "x")
}

// TestZSets_ConcurrentZIncrBySum: concurrent ZINCRBYs add up; a ZADD
// resets the increments it saw, unseen ones stay on top of its score.
func TestZSets_ConcurrentZIncrBySum(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.expect("us", "1", "ZADD", "lb", "10", "alice")
	c.converge()
	c.pauseAll()
	c.expect("us", "15", "ZINCRBY", "lb", "5", "alice")
	c.expect("eu", "13", "ZINCRBY", "lb", "3", "alice")
	c.expect("ap", "9.5", "ZINCRBY", "lb", "-0.5", "alice")
	c.converge()
	c.expectAll("17.5", "ZSCORE", "lb", "alice")
	c.pauseAll()
	c.expect("us", "0", "ZADD", "lb", "100", "alice")
	c.expect("eu", "18.5", "ZINCRBY", "lb", "1", "alice")
	c.converge()
	c.expectAll("101", "ZSCORE", "lb", "alice")
	// In sequence, increments show Redis's double arithmetic exactly.
	c.expect("us", "0.1", "ZINCRBY", "f", "0.1", "m")
	c.expect("us", "0.2", "ZINCRBY", "f", "0.1", "m")
	c.expect("us", "0.30000000000000004", "ZINCRBY", "f", "0.1", "m")
	c.converge()
	c.expectAll("0.30000000000000004", "ZSCORE", "f", "m")
}

// TestZSets_PopsAtLeastOnce: ZPOPMIN in two regions concurrently returns
// the same member in both; it is removed once.
func TestZSets_PopsAtLeastOnce(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "3", "ZADD", "q", "1", "a", "2", "b", "3", "c")
	c.converge()
	c.pauseAll()
	c.expect("us", "[a 1]", "ZPOPMIN", "q")
	c.expect("eu", "[a 1]", "ZPOPMIN", "q")
	c.expect("eu", "[q [[c 3]]]", "ZMPOP", "1", "q", "MAX")
	c.converge()
	c.expectAll("[b]", "ZRANGE", "q", "0", "-1")
}

// TestZSets_RangesAfterConvergence: the score index follows merged scores.
func TestZSets_RangesAfterConvergence(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.pauseAll()
	for i := 0; i < 20; i++ {
		c.must("us", "ZADD", "z", strconv.Itoa(i), fmt.Sprintf("m%02d", i))
		c.must("eu", "ZINCRBY", "z", "100", fmt.Sprintf("m%02d", 19-i))
	}
	c.converge()
	c.expectAll("20", "ZCARD", "z")
	c.expectAll("[m00 100 m01 101]", "ZRANGE", "z", "0", "1", "WITHSCORES")
	c.expectAll("[m19 119]", "ZRANGE", "z", "-1", "-1", "WITHSCORES")
	c.expectAll("[m05 m06]", "ZRANGEBYSCORE", "z", "105", "(107")
	c.expectAll("5", "ZRANK", "z", "m05")
	c.expectAll("3", "ZCOUNT", "z", "(100", "103")
}

// TestCollections_T1_TypeConflict: a string and a set written concurrently:
// the later write's type is visible everywhere, the other state is gone.
func TestCollections_T1_TypeConflict(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", time.Second))
	c.pauseAll()
	c.expect("us", "OK", "SET", "k", "s")
	c.expect("eu", "1", "SADD", "k", "m")
	c.converge()
	c.expectAll("set", "TYPE", "k")
	c.expectAll("[m]", "SMEMBERS", "k")
	for _, r := range []string{"us", "eu"} {
		if _, err := c.do(r, "GET", "k"); err == nil || err.Error()[:9] != "WRONGTYPE" {
			t.Fatalf("%s GET k: %v, want WRONGTYPE", r, err)
		}
	}
	// The next write removes the hidden string for good.
	c.expect("us", "1", "SADD", "k", "n")
	c.converge()
	c.expectAll("set", "TYPE", "k")
	c.expect("us", "1", "DEL", "k")
	c.converge()
	c.expectAll("0", "EXISTS", "k")
}

// TestCollections_DelVsConcurrentAdd: DEL of a hash, set or sorted set
// removes what its region had seen; what another region added concurrently
// survives.
func TestCollections_DelVsConcurrentAdd(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "1", "HSET", "h", "f1", "a")
	c.expect("us", "1", "SADD", "s", "a")
	c.expect("us", "1", "ZADD", "z", "1", "a")
	c.expect("us", "1", "HINCRBY", "h", "n", "1")
	c.converge()
	c.pauseAll()
	c.expect("us", "3", "DEL", "h", "s", "z")
	c.expect("eu", "1", "HSET", "h", "f2", "b")
	c.expect("eu", "3", "HINCRBY", "h", "n", "2")
	c.expect("eu", "1", "SADD", "s", "b")
	c.expect("eu", "3", "ZINCRBY", "z", "2", "a")
	c.converge()
	c.expectAll("[f2 b n 2]", "HGETALL", "h")
	c.expectAll("[b]", "SMEMBERS", "s")
	c.expectAll("2", "ZSCORE", "z", "a")
}

// TestCollections_LargeDel: a DEL of a set too large for one transaction
// is applied as a pending reset (elements rewritten in the background);
// reads never see it half applied, and a concurrent add survives.
func TestCollections_LargeDel(t *testing.T) {
	if testing.Short() {
		t.Skip("large collection")
	}
	c := startCluster(t, []string{"us", "eu"})
	const n = 6000
	for i := 0; i < n; i += 1000 {
		args := []any{"SADD", "big"}
		for j := i; j < i+1000; j++ {
			args = append(args, fmt.Sprintf("m%05d", j))
		}
		c.must("us", args...)
	}
	c.converge()
	c.expectAll(strconv.Itoa(n), "SCARD", "big")
	c.pauseAll()
	c.expect("us", "1", "DEL", "big")
	c.expect("eu", "1", "SADD", "big", "late")
	c.expect("eu", "0", "SADD", "big", "m00001")
	c.expect("us", "0", "SCARD", "big")
	c.converge()
	c.expectAll("2", "SCARD", "big")
	c.expectAll("[late m00001]", "SMEMBERS", "big")
	c.expectAll("0", "SISMEMBER", "big", "m00002")
	c.expectAll("[0 [late m00001]]", "SSCAN", "big", "0")
	eventually(t, 20*time.Second, func() error {
		for _, r := range c.names {
			if v := c.info(r, "georep")["tombstones"]; v != "0" {
				return fmt.Errorf("%s: %s tombstones", r, v)
			}
		}
		return nil
	})
}

// TestCollections_Expire: a collection with a TTL expires in every region.
func TestCollections_Expire(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "HSET", "h", "a", "1", "b", "2")
	c.expect("us", "1", "PEXPIRE", "h", "300")
	c.sync()
	eventually(t, 10*time.Second, func() error {
		for _, r := range c.names {
			if v, err := c.do(r, "EXISTS", "h"); err != nil || v != int64(0) {
				return fmt.Errorf("%s: EXISTS h = %v %v", r, v, err)
			}
		}
		return nil
	})
	c.converge()
	c.expectAll("0", "HLEN", "h")
	c.expect("eu", "1", "HSET", "h", "c", "3")
	c.converge()
	c.expectAll("[c 3]", "HGETALL", "h")
	c.expectAll("-1", "TTL", "h")
}

// TestCollections_RenameAndCopy: RENAME and COPY of collections carry
// their visible content.
func TestCollections_RenameAndCopy(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "2", "ZADD", "z", "1", "a", "2", "b")
	c.expect("us", "5", "HINCRBY", "h", "n", "5")
	c.expect("us", "OK", "RENAME", "z", "z2")
	c.expect("us", "1", "COPY", "h", "h2")
	c.converge()
	c.expectAll("0", "EXISTS", "z")
	c.expectAll("[a 1 b 2]", "ZRANGE", "z2", "0", "-1", "WITHSCORES")
	c.expectAll("5", "HGET", "h2", "n")
	c.expectAll("zset", "TYPE", "z2")
}

// TestCollections_Geo: GEOADD replicates like ZADD; searches agree.
func TestCollections_Geo(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.pauseAll()
	c.expect("us", "1", "GEOADD", "g", "13.361389", "38.115556", "Palermo")
	c.expect("eu", "1", "GEOADD", "g", "15.087269", "37.502669", "Catania")
	c.converge()
	c.expectAll("166.2742", "GEODIST", "g", "Palermo", "Catania", "km")
	c.expectAll("[Catania Palermo]", "GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC")
}

// TestCollections_LargeReads: scans, random picks, pops and rank queries on
// collections larger than Redis's compact encodings.
func TestCollections_LargeReads(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	const n = 1000
	hargs := []any{"HSET", "h"}
	sargs := []any{"SADD", "s"}
	zargs := []any{"ZADD", "z"}
	for i := 0; i < n; i++ {
		hargs = append(hargs, fmt.Sprintf("f%04d", i), i)
		sargs = append(sargs, fmt.Sprintf("m%04d", i))
		zargs = append(zargs, i, fmt.Sprintf("m%04d", i))
	}
	c.must("us", hargs...)
	c.must("us", sargs...)
	c.must("us", zargs...)
	c.converge()
	ctx := context.Background()
	for _, r := range c.names {
		cl := c.r(r)
		// Every element exactly once, about COUNT a call.
		scan := func(cmd func(cursor uint64) ([]string, uint64, error), step int) {
			seen := map[string]bool{}
			var cursor uint64
			calls := 0
			for {
				items, next, err := cmd(cursor)
				if err != nil {
					t.Fatal(err)
				}
				calls++
				for i := 0; i < len(items); i += step {
					if seen[items[i]] {
						t.Fatalf("%s: %s returned twice", r, items[i])
					}
					seen[items[i]] = true
				}
				if next == 0 {
					break
				}
				cursor = next
			}
			if len(seen) != n || calls < n/50 {
				t.Fatalf("%s: scan saw %d elements in %d calls", r, len(seen), calls)
			}
		}
		scan(func(cur uint64) ([]string, uint64, error) { return cl.HScan(ctx, "h", cur, "", 20).Result() }, 2)
		scan(func(cur uint64) ([]string, uint64, error) { return cl.SScan(ctx, "s", cur, "", 20).Result() }, 1)
		scan(func(cur uint64) ([]string, uint64, error) { return cl.ZScan(ctx, "z", cur, "", 20).Result() }, 2)
		if got, err := cl.SRandMemberN(ctx, "s", 10).Result(); len(got) != 10 || len(distinctStrings(got)) != 10 {
			t.Fatalf("%s SRANDMEMBER 10 = %v %v", r, got, err)
		}
		if got := cl.SRandMemberN(ctx, "s", -2000).Val(); len(got) != 2000 {
			t.Fatalf("%s SRANDMEMBER -2000 gave %d", r, len(got))
		}
		if got := cl.HRandField(ctx, "h", 5).Val(); len(distinctStrings(got)) != 5 {
			t.Fatalf("%s HRANDFIELD 5 = %v", r, got)
		}
		if got := cl.ZRandMember(ctx, "z", 5).Val(); len(distinctStrings(got)) != 5 {
			t.Fatalf("%s ZRANDMEMBER 5 = %v", r, got)
		}
	}
	c.expectAll("[m0100 m0101 m0102]", "ZRANGE", "z", "100", "102")
	c.expectAll("[m0999 m0998]", "ZRANGE", "z", "0", "1", "REV")
	c.expectAll("[m0997 m0998]", "ZRANGE", "z", "-3", "-2")
	c.expectAll("500", "ZRANK", "z", "m0500")
	c.expectAll("499", "ZREVRANK", "z", "m0500")
	c.expectAll("[m0900 m0901]", "ZRANGEBYSCORE", "z", "(899", "+inf", "LIMIT", "0", "2")
	c.expectAll("[m0102 m0101]", "ZREVRANGEBYSCORE", "z", "102", "-inf", "LIMIT", "0", "2")
	c.expectAll("100", "ZCOUNT", "z", "900", "+inf")
	c.expectAll("999", "HGET", "h", "f0999")
	c.pauseAll()
	if got := c.r("us").SPopN(ctx, "s", 10).Val(); len(distinctStrings(got)) != 10 {
		t.Fatalf("SPOP 10 = %v", got)
	}
	c.expect("eu", "[m0000 0 m0001 1]", "ZPOPMIN", "z", "2")
	c.converge()
	c.expectAll("990", "SCARD", "s")
	c.expectAll("998", "ZCARD", "z")
	c.expectAll("0", "ZRANK", "z", "m0002")
}

func distinctStrings(ss []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range ss {
		out[s] = true
	}
	return out
}
