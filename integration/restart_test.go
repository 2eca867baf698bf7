package integration

import (
	"fmt"
	"testing"
)

// TestRestart_SameDataDir stops the deployment cleanly and starts a new one
// on the same data directory: every key is there, and replication goes on
// with fresh dots (a region never reuses a sequence number).
func TestRestart_SameDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a deployment")
	}
	c := startCluster(t, []string{"us", "eu", "ap"}, withDataDir(t.TempDir()))
	const n = 200
	for i := 0; i < n; i++ {
		r := c.names[i%len(c.names)]
		c.expect(r, "OK", "SET", fmt.Sprintf("k:%d", i), fmt.Sprintf("%s-%d", r, i))
	}
	c.expect("us", "OK", "SET", "ttl", "v", "EX", "1000")
	c.expect("eu", "OK", "SET", "gone", "v")
	c.sync()
	c.expect("us", "1", "DEL", "gone")
	c.pauseAll()
	c.expect("us", "1", "INCR", "counter")
	c.expect("eu", "2", "INCRBY", "counter", "2")
	c.expect("ap", "3", "INCRBY", "counter", "3")
	c.converge()
	c.expectAll("6", "GET", "counter")
	digest := fmt.Sprint(c.must("us", "GEOREP", "DIGEST"))
	before := map[string]regionStatus{}
	for _, r := range c.names {
		before[r] = c.status(r)
	}
	ids := map[string]string{}
	for _, r := range c.names {
		ids[r] = c.instanceID(r)
	}

	c.restart()

	for _, r := range c.names {
		st := c.status(r)
		if !st.Writable {
			t.Fatalf("%s not writable after restart", r)
		}
		for o, seq := range before[r].Applied {
			if st.Applied[o] != seq {
				t.Fatalf("%s: applied[%s] = %d after restart, was %d", r, o, st.Applied[o], seq)
			}
		}
		if d := fmt.Sprint(c.must(r, "GEOREP", "DIGEST")); d != digest {
			t.Fatalf("%s: digest %s after restart, %s before", r, d, digest)
		}
		for i := 0; i < n; i++ {
			owner := c.names[i%len(c.names)]
			c.expect(r, fmt.Sprintf("%s-%d", owner, i), "GET", fmt.Sprintf("k:%d", i))
		}
		c.expect(r, "6", "GET", "counter")
		c.expect(r, "0", "EXISTS", "gone")
	}
	c.ttlIn("ttl", 900, 1000)

	// Writes after the restart replicate, stamped with the next sequence
	// numbers: a reused dot would be dropped as a duplicate by every peer.
	c.expect("us", "7", "INCR", "counter")
	c.expect("eu", "OK", "SET", "k:0", "after")
	c.expect("ap", "1", "DEL", "k:1")
	c.converge()
	c.expectAll("7", "GET", "counter")
	c.expectAll("after", "GET", "k:0")
	c.expectAll("0", "EXISTS", "k:1")
	for _, r := range c.names {
		st := c.status(r)
		for _, w := range c.names {
			if got, want := st.Applied[ids[w]], before[r].Applied[ids[w]]+1; got != want {
				t.Fatalf("%s: applied[%s] = %d after one write of %s since the restart, want %d", r, ids[w], got, w, want)
			}
		}
	}

	// And once more, with concurrent writes across the restart: eu's write
	// is made while us is paused and us restarts before it applies it.
	c.pause("us")
	c.expect("eu", "OK", "SET", "late", "eu")
	c.expect("us", "OK", "SET", "early", "us")
	c.restart()
	c.converge()
	c.expectAll("eu", "GET", "late")
	c.expectAll("us", "GET", "early")
}
