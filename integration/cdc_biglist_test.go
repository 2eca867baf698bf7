//go:build !race

package integration

import (
	"context"
	"testing"
	"time"
)

// TestCDC_ChangelogBigListWrites: list writes too big for one Badger
// transaction (their records are written right after the batch commits,
// materializer/listjournal.go) are published whole, and so is the delete
// of such a list. (Not under the race detector: applying tens of thousands
// of list elements there takes longer than a write may wait.)
func TestCDC_ChangelogBigListWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 24,000 list elements")
	}
	topic := changelogTopic(t)
	c := startCluster(t, []string{"us"}, withChangelog(topic), withDataDir(t.TempDir()), withWriteTimeout(time.Minute))
	pipe := c.r("us").Pipeline()
	for j := 0; j < 3; j++ {
		vals := make([]any, 8000)
		for i := range vals {
			vals[i] = j*8000 + i
		}
		pipe.RPush(context.Background(), "biglist", vals...)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatalf("RPUSH biglist: %.200v", err)
	}
	c.expect("us", "24000", "LLEN", "biglist")
	waitChangelogEquals(t, c.r("us"), c.region("us").Brokers, topic)
	c.must("us", "DEL", "biglist")
	c.must("us", "SET", "after", "1")
	waitChangelogEquals(t, c.r("us"), c.region("us").Brokers, topic)
}
