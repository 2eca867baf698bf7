package integration

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSeedExample is the example every georep user meets first.
func TestSeedExample(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.pauseAll()
	c.expect("us", "OK", "SET", "key1", "a")
	c.expect("eu", "OK", "SET", "key1", "b")
	c.converge()
	for _, r := range []string{"us", "eu", "ap"} {
		c.expect(r, "b", "GET", "key1")
	}
	c.expect("us", "OK", "SET", "key1", "c")
	c.sync()
	c.expect("eu", "c", "GET", "key1")
	c.pause("us")
	c.expect("eu", "OK", "SET", "key1", "d")
	c.expect("us", "c", "GET", "key1")
	c.converge()
	for _, r := range []string{"us", "eu", "ap"} {
		c.expect(r, "d", "GET", "key1")
	}
}

// TestStrings_S2_CausalityBeatsSkewedClock: eu's clock runs 10s behind; a
// write eu makes after seeing us's write still wins (HLC, decision 1).
func TestStrings_S2_CausalityBeatsSkewedClock(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", -10*time.Second))
	c.expect("us", "OK", "SET", "k", "a")
	c.sync()
	c.expect("eu", "a", "GET", "k")
	c.expect("eu", "OK", "SET", "k", "b")
	c.converge()
	c.expectAll("b", "GET", "k")

	// Same again the other way round: us writes after seeing eu's write.
	c.expect("us", "OK", "SET", "k", "c")
	c.converge()
	c.expectAll("c", "GET", "k")
}

// TestStrings_S3_ConcurrentSkewedClock: among concurrent writes the wall
// clock decides, even when it is wrong: eu writes later in real time but
// stamps 10s earlier, so us's value wins.
func TestStrings_S3_ConcurrentSkewedClock(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withClockOffset("eu", -10*time.Second))
	// Earlier synced traffic moves eu's HLC up to what it saw of us, not to
	// us's later writes.
	c.expect("us", "OK", "SET", "other", "x")
	c.converge()
	c.pauseAll()
	c.expect("us", "OK", "SET", "k", "a")
	c.expect("eu", "OK", "SET", "k", "b")
	c.expect("eu", "b", "GET", "k")
	c.converge()
	c.expectAll("a", "GET", "k")
}

// TestStrings_ConcurrentWritesConverge: concurrent writes of several keys
// in three regions, the later write of each key wins everywhere.
func TestStrings_ConcurrentWritesConverge(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.pauseAll()
	// Each second write starts in a later millisecond than the first, so
	// its HLC is greater (writes in one millisecond tie and the smaller
	// instance ID, us's, wins).
	c.expect("us", "OK", "SET", "k1", "us")
	nextMilli()
	c.expect("eu", "OK", "SET", "k1", "eu")
	c.expect("ap", "OK", "SET", "k2", "ap")
	nextMilli()
	c.expect("us", "OK", "SET", "k2", "us")
	c.expect("eu", "2", "APPEND", "k3", "eu") // APPEND replicates the whole value
	nextMilli()
	c.expect("us", "OK", "SET", "k3", "us")
	c.converge()
	c.expectAll("eu", "GET", "k1")
	c.expectAll("us", "GET", "k2")
	c.expectAll("us", "GET", "k3")
	c.expectAll("string", "TYPE", "k1")
}

// TestStrings_D1_DelVsConcurrentSet: DEL removes only the value its region
// had seen; a concurrent SET survives, in either time order.
func TestStrings_D1_DelVsConcurrentSet(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "OK", "SET", "k", "a")
	c.expect("us", "OK", "SET", "j", "a")
	c.converge()
	c.pauseAll()
	// k: DEL first, then the concurrent SET.
	c.expect("us", "1", "DEL", "k")
	c.expect("eu", "OK", "SET", "k", "b")
	// j: SET first, then the concurrent DEL (later in wall-clock time).
	c.expect("eu", "OK", "SET", "j", "b")
	c.expect("us", "1", "DEL", "j")
	c.expect("us", "(nil)", "GET", "k")
	c.expect("us", "(nil)", "GET", "j")
	c.converge()
	c.expectAll("b", "GET", "k")
	c.expectAll("b", "GET", "j")

	// A DEL after seeing the value removes it everywhere.
	c.expect("eu", "2", "DEL", "k", "j")
	c.converge()
	c.expectAll("0", "EXISTS", "k", "j")
}

// TestStrings_TooLargeForOneRecord: a write whose event cannot fit in one
// Kafka record is refused with a clear error before it reaches the log; the
// key keeps its value, the region keeps serving, and a large value that fits
// replicates.
func TestStrings_TooLargeForOneRecord(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	big := strings.Repeat("v", 600_000)
	c.expect("us", "OK", "SET", "k", big)
	for _, args := range [][]any{
		{"SET", "k", strings.Repeat("x", 1_000_000)},
		{"APPEND", "k", big},
		{"HSET", "h", "f", strings.Repeat("x", 1_000_000)},
	} {
		_, err := c.do("us", args...)
		if err == nil || !strings.HasPrefix(err.Error(), "ERR write too large") {
			t.Fatalf("%s of a value over 1 MB: got %v, want ERR write too large", args[0], err)
		}
	}
	c.expect("us", "OK", "SET", "after", "1")
	c.converge()
	for _, r := range []string{"us", "eu"} {
		if got := c.get(r, "k"); got != big {
			t.Fatalf("%s: k has %d bytes, want the %d of the last write that fitted", r, len(got), len(big))
		}
		c.expect(r, "0", "EXISTS", "h")
		c.expect(r, "1", "GET", "after")
	}
}

// nextMilli returns once the wall clock has moved to a later millisecond
// than when it was called (every region of a test runs on this machine's
// clock), so a write made afterwards gets a greater HLC than one made before.
func nextMilli() {
	start := time.Now().UnixMilli()
	for time.Now().UnixMilli() <= start {
		runtime.Gosched()
	}
}
