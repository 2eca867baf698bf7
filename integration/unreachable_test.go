package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestKafkaUnreachable closes one region's embedded broker: writes there
// fail with an error reply (bounded by the write timeout) and leave nothing
// behind, reads still answer, and the other regions go on accepting and
// replicating writes.
func TestKafkaUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for write timeouts")
	}
	c := startCluster(t, []string{"us", "eu", "ap"}, withWriteTimeout(2*time.Second))
	c.expect("us", "OK", "SET", "k", "v")
	c.expect("us", "5", "INCRBY", "n", "5")
	c.converge()

	broker := c.region("us").Cluster
	if broker == nil {
		t.Skip("needs the embedded brokers (closes one in-process)")
	}
	broker.Close()

	for _, cmd := range [][]any{
		{"SET", "k", "w"},
		{"INCR", "n"},
		{"MSET", "new", "m", "{t}a", "1", "{t}b", "2"}, // several partitions: one Kafka transaction
	} {
		_, err := c.do("us", cmd...)
		var reply redis.Error
		if err == nil || !errors.As(err, &reply) {
			t.Fatalf("us %v with its broker down = %v, want an error reply", cmd, err)
		}
	}
	// Reads answer, and show none of the failed writes.
	c.expect("us", "v", "GET", "k")
	c.expect("us", "5", "GET", "n")
	c.expect("us", "0", "EXISTS", "new", "{t}a", "{t}b")
	c.expect("us", "PONG", "PING")
	if st := c.status("us"); st.Applied[c.instanceID("us")] != 2 {
		t.Fatalf("us applied %d of its own events, want 2", st.Applied[c.instanceID("us")])
	}

	// The others write and replicate to each other.
	c.expect("eu", "OK", "SET", "k", "eu")
	c.expect("ap", "6", "INCR", "n")
	for _, r := range []string{"eu", "ap"} {
		eventually(t, 20*time.Second, func() error {
			if got := c.get(r, "k"); got != "eu" {
				return fmt.Errorf("%s: GET k = %s", r, got)
			}
			if got := c.get(r, "n"); got != "6" {
				return fmt.Errorf("%s: GET n = %s", r, got)
			}
			return nil
		})
	}
	// GEOREP SYNC names the peer it cannot reach instead of waiting out its
	// timeout, once it has applied what the others wrote.
	_, err := c.do("eu", "GEOREP", "SYNC", "15000")
	if err == nil || !strings.Contains(err.Error(), "peer us unreachable") || strings.Contains(err.Error(), "timed out") {
		t.Fatalf("eu GEOREP SYNC with us's broker down = %v, want an error naming peer us", err)
	}
	c.expect("eu", "6", "GET", "n")
	c.alive()
}
