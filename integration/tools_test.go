package integration

// The log tools (georep replay, snapshot, digest, tail), run as the built
// binary against the regions' Kafka clusters: the embedded brokers by
// default, real Apache Kafka with GEOREP_KAFKA (make test-kafka).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// toolWrite is one write of the log-tools workload: a command and the keys
// it changes, each by exactly one event.
type toolWrite struct {
	args []any
	keys []string
}

// toolWorkload returns a mixed workload for region r, round n: strings,
// counters, a hash, a set, a sorted set, a list and deletes, every command
// changing what it names (no no-op writes, which log nothing).
func toolWorkload(r string, n int) []toolWrite {
	p := fmt.Sprintf("tools:%s:%d:", r, n)
	var ws []toolWrite
	w := func(keys []string, args ...any) { ws = append(ws, toolWrite{args: args, keys: keys}) }
	for i := 0; i < 5; i++ {
		s := fmt.Sprintf("%sstr:%d", p, i)
		w([]string{s}, "SET", s, fmt.Sprintf("v%d", i))
		w([]string{p + "ctr"}, "INCRBY", p+"ctr", i+1)
		w([]string{"tools:shared:ctr"}, "INCR", "tools:shared:ctr") // every region counts here
		w([]string{p + "flt"}, "INCRBYFLOAT", p+"flt", "0.5")
		w([]string{p + "h"}, "HSET", p+"h", fmt.Sprintf("f%d", i), fmt.Sprintf("v%d", i))
		w([]string{p + "s"}, "SADD", p+"s", fmt.Sprintf("m%d", i))
		w([]string{p + "z"}, "ZADD", p+"z", i, fmt.Sprintf("m%d", i))
		w([]string{p + "l"}, "RPUSH", p+"l", fmt.Sprintf("e%d", i))
	}
	w([]string{p + "h"}, "HDEL", p+"h", "f0")
	w([]string{p + "s"}, "SREM", p+"s", "m1")
	w([]string{p + "z"}, "ZINCRBY", p+"z", "2.5", "m2")
	w([]string{p + "l"}, "LPOP", p+"l")
	w([]string{p + "str:0"}, "DEL", p+"str:0")
	w([]string{p + "str:1", p + "str:2"}, "DEL", p+"str:1", p+"str:2") // one event per key, in one transaction
	w([]string{p + "str:3"}, "SET", p+"str:3", "overwritten")
	return ws
}

// writeTools runs a workload on region r and returns the events written per key.
func (c *cluster) writeTools(r string, ws []toolWrite, events map[string]int) {
	c.t.Helper()
	for _, w := range ws {
		c.must(r, w.args...)
		for _, k := range w.keys {
			events[k]++
		}
	}
}

// runTool runs the georep binary and returns its stdout, failing the test
// with its output on error.
func runTool(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(georepBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("georep %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestLogTools replays a region from its Kafka cluster into an empty
// directory (georep replay, then georep digest: the live node's GEOREP
// DIGEST), does it again from a snapshot of the running node (georep
// snapshot --addr, more writes, georep replay --snapshot), and reads the
// region's events with georep tail --json: one valid JSON object per event.
func TestLogTools(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the georep binary")
	}
	c := startCluster(t, []string{"us", "eu"}, withDataDir(t.TempDir()))
	brokers := strings.Join(c.region("us").Brokers, ",")
	topic := c.topic()

	usEvents, euEvents := map[string]int{}, map[string]int{}
	c.writeTools("us", toolWorkload("us", 0), usEvents)
	c.writeTools("eu", toolWorkload("eu", 0), euEvents)
	c.converge()
	live := fmt.Sprint(c.must("us", "GEOREP", "DIGEST"))

	// replay from the topics into an empty directory: the live state.
	dir := filepath.Join(t.TempDir(), "replay")
	runTool(t, "replay", "--brokers", brokers, "--region", "us", "--topic", topic, "--data-dir", dir, "--progress", "none")
	if got := strings.TrimSpace(runTool(t, "digest", "--data-dir", dir)); got != live {
		t.Fatalf("georep replay of us from %s (topic %s): georep digest = %s, live us GEOREP DIGEST = %s", brokers, topic, got, live)
	}

	// A snapshot of the running node, more writes, then replay from the
	// snapshot: it restores the snapshot and applies what came after it.
	snap := filepath.Join(t.TempDir(), "us.snapshot")
	runTool(t, "snapshot", "--addr", c.r("us").Options().Addr, "--out", snap)
	c.writeTools("us", toolWorkload("us", 1), usEvents)
	c.writeTools("eu", toolWorkload("eu", 1), euEvents)
	c.converge()
	live = fmt.Sprint(c.must("us", "GEOREP", "DIGEST"))
	dir = filepath.Join(t.TempDir(), "replay-snapshot")
	out := runTool(t, "replay", "--brokers", brokers, "--region", "us", "--topic", topic, "--data-dir", dir,
		"--snapshot", snap, "--progress", "none")
	if !strings.Contains(out, "restored snapshot") {
		t.Fatalf("georep replay --snapshot did not say it restored the snapshot:\n%s", out)
	}
	if got := strings.TrimSpace(runTool(t, "digest", "--data-dir", dir)); got != live {
		t.Fatalf("georep replay --snapshot of us: georep digest = %s, live us GEOREP DIGEST = %s\n%s", got, live, out)
	}

	// tail: one JSON object per event of each region, as written.
	for _, tc := range []struct {
		region string
		want   map[string]int
	}{{"us", usEvents}, {"eu", euEvents}} {
		out := runTool(t, "tail", "--brokers", brokers, "--topic", topic, "--region", tc.region, "--from-beginning", "--json")
		got := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Region string          `json:"region"`
				Key    any             `json:"key"`
				Error  string          `json:"error"`
				Ops    json.RawMessage `json:"ops"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("georep tail --json (%s): not a JSON line: %q: %v", tc.region, line, err)
			}
			if ev.Error != "" || ev.Region != tc.region || len(ev.Ops) == 0 {
				t.Fatalf("georep tail --json --region %s: unexpected record %s", tc.region, line)
			}
			key, ok := ev.Key.(string)
			if !ok {
				t.Fatalf("georep tail --json: key of %s is not a string", line)
			}
			got[key]++
		}
		for k, n := range tc.want {
			if got[k] != n {
				t.Errorf("georep tail --json --region %s: %d events of %s, wrote %d", tc.region, got[k], k, n)
			}
		}
		for k, n := range got {
			if tc.want[k] == 0 {
				t.Errorf("georep tail --json --region %s: %d events of %s, which it never wrote", tc.region, n, k)
			}
		}
		t.Logf("georep tail --json --region %s: %d events of %d keys, as written", tc.region, sum(got), len(got))
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
