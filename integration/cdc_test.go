package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/cmd/deploy"
)

// withChangelog makes every node publish its changelog to topic.
func withChangelog(topic string) clusterOpt {
	return func(c *deploy.DevConfig) { c.Changelog, c.ChangelogTopic = true, topic }
}

// changelogTopic is a changelog topic name no other test uses (real Kafka
// clusters are shared by the whole suite).
func changelogTopic(t *testing.T) string {
	return fmt.Sprintf("t%x.georep.changelog", time.Now().UnixNano()&0xffffffffff)
}

// changelogValue is the "after" of a changelog record.
type changelogValue struct {
	Type     string          `json:"type"`
	Encoding string          `json:"encoding"`
	Value    json.RawMessage `json:"value"`
}

// canonical renders a changelog value the way respValue renders a key read
// over RESP, so the two compare as strings.
func (v *changelogValue) canonical() (string, error) {
	dec := func(s string) (string, error) {
		if v.Encoding == "base64" {
			b, err := base64.StdEncoding.DecodeString(s)
			return string(b), err
		}
		return s, nil
	}
	var parts []string
	switch v.Type {
	case "string":
		var s string
		if err := json.Unmarshal(v.Value, &s); err != nil {
			return "", err
		}
		s, err := dec(s)
		return "string:" + strconv.Quote(s), err
	case "hash":
		var m map[string]string
		if err := json.Unmarshal(v.Value, &m); err != nil {
			return "", err
		}
		for f, x := range m {
			f, err := dec(f)
			if err != nil {
				return "", err
			}
			x, err = dec(x)
			if err != nil {
				return "", err
			}
			parts = append(parts, strconv.Quote(f)+"="+strconv.Quote(x))
		}
		sort.Strings(parts)
	case "set", "list":
		var a []string
		if err := json.Unmarshal(v.Value, &a); err != nil {
			return "", err
		}
		for _, x := range a {
			x, err := dec(x)
			if err != nil {
				return "", err
			}
			parts = append(parts, strconv.Quote(x))
		}
		if v.Type == "set" {
			sort.Strings(parts)
		}
	case "zset":
		var a [][2]any
		if err := json.Unmarshal(v.Value, &a); err != nil {
			return "", err
		}
		for _, x := range a {
			m, err := dec(fmt.Sprint(x[0]))
			if err != nil {
				return "", err
			}
			var score float64
			switch s := x[1].(type) {
			case float64:
				score = s
			case string:
				if score, err = strconv.ParseFloat(s, 64); err != nil {
					return "", err
				}
			}
			parts = append(parts, strconv.Quote(m)+"@"+strconv.FormatFloat(score, 'g', -1, 64))
		}
	default:
		return "", fmt.Errorf("unknown type %q", v.Type)
	}
	return v.Type + ":" + strings.Join(parts, ","), nil
}

// changelogState reads a changelog topic from the beginning up to its
// current end and folds it into key -> canonical value, as a consumer
// keeping a table would. It also returns how many records it read.
func changelogState(brokers []string, topic string) (map[string]string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, 0, err
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, err
	}
	if err := ends.Error(); err != nil {
		return nil, 0, err
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	state := map[string]string{}
	n := 0
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, n, fmt.Errorf("consume %s: %w", topic, err)
		}
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if r.Value == nil {
				delete(state, string(r.Key))
				return
			}
			var rec struct {
				Op        string          `json:"op"`
				After     *changelogValue `json:"after"`
				Truncated bool            `json:"truncated"`
			}
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				ferr = fmt.Errorf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				return
			}
			switch {
			case rec.Op == "d":
				delete(state, string(r.Key))
			case rec.Truncated:
				state[string(r.Key)] = "truncated"
			case rec.After != nil:
				s, err := rec.After.canonical()
				if err != nil {
					ferr = fmt.Errorf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				}
				state[string(r.Key)] = s
			}
		})
		if ferr != nil {
			return nil, n, ferr
		}
	}
	return state, n, nil
}

// respState reads every visible key of a region over RESP into key ->
// canonical value.
func respState(cl *redis.Client) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var keys []string
	var cursor uint64
	for {
		ks, next, err := cl.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	out := map[string]string{}
	for _, k := range keys {
		typ, err := cl.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		var parts []string
		switch typ {
		case "none":
			continue // expired since the SCAN
		case "string":
			v, err := cl.Get(ctx, k).Result()
			if err == redis.Nil {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[k] = "string:" + strconv.Quote(v)
			continue
		case "hash":
			m, err := cl.HGetAll(ctx, k).Result()
			if err != nil {
				return nil, err
			}
			for f, x := range m {
				parts = append(parts, strconv.Quote(f)+"="+strconv.Quote(x))
			}
			sort.Strings(parts)
		case "set":
			ms, err := cl.SMembers(ctx, k).Result()
			if err != nil {
				return nil, err
			}
			for _, x := range ms {
				parts = append(parts, strconv.Quote(x))
			}
			sort.Strings(parts)
		case "zset":
			zs, err := cl.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				return nil, err
			}
			for _, z := range zs {
				parts = append(parts, strconv.Quote(fmt.Sprint(z.Member))+"@"+strconv.FormatFloat(z.Score, 'g', -1, 64))
			}
		case "list":
			ls, err := cl.LRange(ctx, k, 0, -1).Result()
			if err != nil {
				return nil, err
			}
			for _, x := range ls {
				parts = append(parts, strconv.Quote(x))
			}
		default:
			return nil, fmt.Errorf("key %q has type %s", k, typ)
		}
		if len(parts) == 0 {
			continue // emptied since the SCAN
		}
		out[k] = typ + ":" + strings.Join(parts, ",")
	}
	return out, nil
}

// diffStates describes how two states differ ("" when equal).
func diffStates(got, want map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("%q missing (want %s)", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%q = %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%q = %s, not in the region", k, g))
		}
	}
	sort.Strings(d)
	if len(d) > 10 {
		d = append(d[:10], fmt.Sprintf("... %d differences", len(d)))
	}
	return strings.Join(d, "; ")
}

// waitChangelogEquals polls until the changelog folded from the beginning
// equals the region's state read over RESP.
func waitChangelogEquals(t *testing.T, cl *redis.Client, brokers []string, topic string) int {
	t.Helper()
	var records int
	eventually(t, 60*time.Second, func() error {
		got, n, err := changelogState(brokers, topic)
		if err != nil {
			return err
		}
		want, err := respState(cl)
		if err != nil {
			return err
		}
		if d := diffStates(got, want); d != "" {
			return fmt.Errorf("changelog (%d records) differs from the region: %s", n, d)
		}
		records = n
		return nil
	})
	return records
}

// cdcWorkload writes a mix of every type, deletes and expiries to a region.
func cdcWorkload(t *testing.T, c *cluster, region, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s:%d", prefix, i)
		c.must(region, "SET", k+":s", fmt.Sprintf("v%d é", i))
		c.must(region, "INCRBY", k+":n", i+1)
		c.must(region, "INCRBYFLOAT", k+":f", "0.5")
		c.must(region, "HSET", k+":h", "a", i, "b", "x")
		c.must(region, "HINCRBY", k+":h", "c", 3)
		c.must(region, "SADD", k+":set", "m1", "m2", "m3")
		c.must(region, "SREM", k+":set", "m2")
		c.must(region, "ZADD", k+":z", 1.5, "a", 2, "b", "+inf", "top")
		c.must(region, "ZINCRBY", k+":z", 2, "a")
		c.must(region, "RPUSH", k+":l", "a", "b", "c", "\xfe")
		c.must(region, "LPUSH", k+":l", "head")
		c.must(region, "LPOP", k+":l")
		c.must(region, "SET", k+":bin", "\xff\x00\x01")
		c.must(region, "SET", k+":tmp", "short-lived", "PX", 300)
		c.must(region, "HSET", k+":htmp", "f", "v")
		c.must(region, "PEXPIRE", k+":htmp", 300)
		if i%2 == 0 {
			c.must(region, "DEL", k+":s", k+":set")
			c.must(region, "HDEL", k+":h", "b")
		}
		if i%3 == 0 {
			c.must(region, "SET", k+":h", "now a string") // type change
		}
	}
}

// waitExpired polls until the keys are gone from a region (expired and
// deleted by their owner's reaper).
func waitExpired(t *testing.T, c *cluster, region string, keys ...string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		for _, k := range keys {
			n, err := c.r(region).Exists(context.Background(), k).Result()
			if err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("%s still exists", k)
			}
		}
		return nil
	})
}

// TestCDC_ChangelogReconstructsState: each region's changelog, read from
// the beginning, folds into exactly the region's state: local and
// replicated writes, every type, deletes and expiries; also after the
// deployment restarts on its data.
func TestCDC_ChangelogReconstructsState(t *testing.T) {
	topic := changelogTopic(t)
	c := startCluster(t, []string{"us", "eu"}, withChangelog(topic), withDataDir(t.TempDir()))
	cdcWorkload(t, c, "us", "us", 6)
	cdcWorkload(t, c, "eu", "eu", 4)
	// Every short-lived key gone before converge compares digests: each
	// region's GEOREP DIGEST leaves out what has expired when it is called,
	// so a key expiring between the two calls would make them differ.
	var shortLived []string
	for _, w := range []struct {
		prefix string
		n      int
	}{{"us", 6}, {"eu", 4}} {
		for i := 0; i < w.n; i++ {
			shortLived = append(shortLived, fmt.Sprintf("%s:%d:tmp", w.prefix, i), fmt.Sprintf("%s:%d:htmp", w.prefix, i))
		}
	}
	waitExpired(t, c, "us", shortLived...)
	waitExpired(t, c, "eu", shortLived...)
	// A concurrent conflict: the changelog carries the winner.
	c.pauseAll()
	c.must("us", "SET", "both", "from-us")
	c.must("eu", "INCRBY", "cnt", 5)
	c.must("us", "INCRBY", "cnt", 7)
	c.converge()
	for _, r := range []string{"us", "eu"} {
		n := waitChangelogEquals(t, c.r(r), c.region(r).Brokers, topic)
		t.Logf("%s: changelog of %d records equals the region's state", r, n)
	}
	c.expect("eu", "12", "GET", "cnt")
	if info := c.info("us", "georep"); info["changelog"] != "1" || info["changelog_published"] == "" || info["changelog_published"] == "0" {
		t.Fatalf("INFO georep: changelog=%s changelog_published=%s", info["changelog"], info["changelog_published"])
	}

	c.restart()
	c.must("eu", "DEL", "us:1:n")
	c.must("us", "HSET", "eu:1:h", "after", "restart")
	c.must("eu", "RPUSH", "us:1:l", "after-restart")
	c.sync()
	for _, r := range []string{"us", "eu"} {
		waitChangelogEquals(t, c.r(r), c.region(r).Brokers, topic)
	}
}

// TestCDC_ChangelogAfterKill9 kills `georep dev --changelog` with SIGKILL
// while a client writes, restarts it on the same data, and checks that the
// changelog still folds into the region's state: changes applied but not
// yet published at the kill are published after the restart.
func TestCDC_ChangelogAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if os.Getenv("GEOREP_KAFKA") != "" {
		t.Skip("embedded mode only")
	}
	bin := georepBinary(t) // built once per test run
	dataDir := t.TempDir()
	port := freePorts(t, 2)
	kport := freePorts(t, 2, port, port+1)
	dev := startDevProcess(t, bin, dataDir, port, kport, "--changelog")
	defer dev.Process.Kill()

	addr := "127.0.0.1:" + strconv.Itoa(port)
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 4})
	defer cl.Close()
	ctx := context.Background()
	done := make(chan int, 1)
	go func() {
		i := 0
		defer func() { done <- i }()
		for ; ; i++ {
			p := cl.Pipeline()
			p.Set(ctx, fmt.Sprintf("k:%d", i%300), i, 0)
			p.HSet(ctx, fmt.Sprintf("h:%d", i%50), fmt.Sprint(i%7), i)
			p.IncrBy(ctx, "counter", 1)
			p.ZAdd(ctx, "z", redis.Z{Score: float64(i), Member: fmt.Sprint(i % 40)})
			p.RPush(ctx, fmt.Sprintf("l:%d", i%10), i)
			if i%3 == 0 {
				p.LPop(ctx, fmt.Sprintf("l:%d", (i+5)%10))
			}
			if i%5 == 0 {
				p.Del(ctx, fmt.Sprintf("k:%d", (i+150)%300))
			}
			if _, err := p.Exec(ctx); err != nil && err != redis.Nil { // LPOP of an empty list: nil
				return
			}
		}
	}()
	eventually(t, 60*time.Second, func() error {
		n, err := cl.Get(ctx, "counter").Int()
		if err != nil || n < 400 {
			return fmt.Errorf("counter %d (%v)", n, err)
		}
		return nil
	})
	if err := dev.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = dev.Wait()
	t.Logf("killed after %d write rounds", <-done)

	dev2 := startDevProcess(t, bin, dataDir, port, kport, "--changelog")
	defer func() {
		dev2.Process.Signal(syscall.SIGTERM)
		dev2.Wait()
	}()
	for _, r := range []struct{ port, kport int }{{port, kport}, {port + 1, kport + 1}} {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
		defer rc.Close()
		if err := rc.Do(ctx, "GEOREP", "SYNC", "30000").Err(); err != nil {
			t.Fatal(err)
		}
		n := waitChangelogEquals(t, rc, []string{"127.0.0.1:" + strconv.Itoa(r.kport)}, "georep.changelog")
		t.Logf("region on port %d: changelog of %d records equals its state", r.port, n)
	}
}

// TestCDC_ChangelogKill9Node (real Kafka): us's `georep node --changelog`
// is killed with SIGKILL during a write load and restarted on the same
// data; each region's changelog still folds into its state.
func TestCDC_ChangelogKill9Node(t *testing.T) {
	needRealKafka(t)
	topic := changelogTopic(t)
	c := startCluster(t, []string{"us", "eu"}, withChangelog(topic), withDataDir(t.TempDir()))
	us, eu := startLoad(t, c, "us", 4, 500), startLoad(t, c, "eu", 2, 200)
	us.waitAcks(t, 1000, 30*time.Second)
	eu.waitAcks(t, 200, 30*time.Second)
	c.real.kill9("us")
	eu.waitAcks(t, 200, 30*time.Second)
	c.real.restartNode("us")
	us.waitAcks(t, 500, 30*time.Second)
	us.stop()
	eu.stop()
	c.converge()
	for _, r := range []string{"us", "eu"} {
		n := waitChangelogEquals(t, c.r(r), c.region(r).Brokers, topic)
		t.Logf("%s: changelog of %d records equals the region's state", r, n)
	}
}
