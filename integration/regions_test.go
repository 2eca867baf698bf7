package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRegions_AddRegion adds a region to a running two-region deployment the
// documented way (us,eu restarted as us,eu,ap on the same data directory):
// us and eu keep their data and instance IDs; ap starts empty with the next
// instance ID and, inbound replication paused so the test sees it behind,
// refuses writes with READONLY naming the peer it is catching up with while
// it answers reads; after RESUME it catches up, accepts writes, and its
// writes reach us and eu.
func TestRegions_AddRegion(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"}, withDataDir(t.TempDir()))
	c.expect("us", "OK", "SET", "greeting", "hello")
	c.expect("eu", "5", "INCRBY", "n", "5")
	c.expect("us", "2", "SADD", "team", "alice", "bob")
	c.expect("eu", "3", "RPUSH", "queue", "a", "b", "c")
	c.converge()
	c.expect("us", "7", "INCRBY", "n", "2")
	c.converge()
	ids := map[string]uint32{}
	for _, r := range c.names {
		ids[r] = c.region(r).InstanceID
	}

	c.addRegion("ap", true)
	if c.region("us").InstanceID != ids["us"] || c.region("eu").InstanceID != ids["eu"] {
		t.Fatalf("instance IDs changed: us %d eu %d, were %v", c.region("us").InstanceID, c.region("eu").InstanceID, ids)
	}
	if id := c.region("ap").InstanceID; id == ids["us"] || id == ids["eu"] || id == 0 {
		t.Fatalf("ap got instance ID %d (us %d, eu %d)", id, ids["us"], ids["eu"])
	}
	c.expect("us", "hello", "GET", "greeting")
	c.expect("eu", "7", "GET", "n")

	// ap is behind (paused): every write is refused, and the reason comes
	// to name the first peer and how far behind ap is.
	eventually(t, 20*time.Second, func() error {
		_, err := c.do("ap", "SET", "x", "1")
		var reply redis.Error
		if !errors.As(err, &reply) || !strings.HasPrefix(err.Error(), "READONLY ") {
			t.Fatalf("ap SET while catching up = %v, want a READONLY error", err)
		}
		const want = "READONLY georep region ap is catching up with us ("
		if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), " events behind); writes are not accepted") {
			return fmt.Errorf("ap SET: %v", err)
		}
		return nil
	})
	// Reads are served meanwhile: what ap has applied (nothing yet).
	c.expect("ap", "(nil)", "GET", "greeting")
	c.expect("ap", "0", "EXISTS", "x")
	if st := c.status("ap"); st.Writable || !st.Paused {
		t.Fatalf("ap status while catching up: %+v", st)
	}

	c.must("ap", "GEOREP", "RESUME")
	eventually(t, 30*time.Second, func() error {
		if !c.status("ap").Writable {
			return errors.New("ap not writable yet")
		}
		return nil
	})
	// Caught up: ap saw everything us and eu had written when it started.
	c.expect("ap", "hello", "GET", "greeting")
	c.expect("ap", "7", "GET", "n")
	c.expect("ap", "2", "SCARD", "team")
	c.expect("ap", "[a b c]", "LRANGE", "queue", "0", "-1")

	// ap writes; us and eu mirror ap's topic and apply them.
	c.expect("ap", "10", "INCRBY", "n", "3")
	c.expect("ap", "OK", "SET", "from-ap", "hi")
	c.expect("ap", "1", "SADD", "team", "carol")
	c.sync()
	for _, r := range []string{"us", "eu"} {
		c.expect(r, "10", "GET", "n")
		c.expect(r, "hi", "GET", "from-ap")
		c.expect(r, "3", "SCARD", "team")
	}
	c.expect("us", "11", "INCR", "n")
	c.converge()
	c.expectAll("11", "GET", "n")
	st := c.status("ap")
	for _, r := range []string{"us", "eu"} {
		if st.Applied[fmt.Sprint(c.region(r).InstanceID)] == 0 {
			t.Fatalf("ap applied nothing of %s: %v", r, st.Applied)
		}
	}
}
