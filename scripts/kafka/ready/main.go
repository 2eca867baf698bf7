// Command ready checks the local Kafka clusters started by scripts/kafka.sh.
//
// Modes (each REGIONS is "name=host:port", several joined by commas or
// given as separate arguments):
//
//	ready [-timeout 90s] [-pids us=123,eu=456] REGIONS...
//	    Waits until every cluster accepts a produce and a fetch: ping,
//	    create the scratch topic georep-kafka-ready (1 partition), produce
//	    one record, fetch it back. Clusters are checked in parallel. With
//	    -pids it fails fast when a broker process has exited.
//
//	ready -mm2-wait REGIONS [-pids mm2=789]
//	    Waits until MirrorMaker 2 copies data on every flow: for every
//	    ordered pair (src, dst), dst's topic "src.heartbeats" gets a record
//	    stamped after the start (or -since-ms). Writes nothing.
//
//	ready -mirror-check REGIONS [-topic georep.ops] [-partitions 8]
//	    End-to-end mirror test. WRITES ONE TEST RECORD into the topic in
//	    every region (creating the topic if missing), then waits until every
//	    other region has it in "src.topic" on the same partition, and checks
//	    that no record was mirrored twice over (no "a.b.topic" topics). Use
//	    it on scratch clusters only: applications reading the topic will
//	    see the test records (key "georep-mirror-check").
//
// Progress goes to stderr; exit status 0 means every check passed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const readyTopic = "georep-kafka-ready"

type region struct {
	name string
	addr string
}

func main() {
	timeout := flag.Duration("timeout", 90*time.Second, "overall deadline")
	pidsFlag := flag.String("pids", "", "name=pid,... processes that must stay alive while waiting")
	mm2Wait := flag.String("mm2-wait", "", "regions (name=host:port,...) to wait for MirrorMaker 2 heartbeats on")
	mirrorCheck := flag.String("mirror-check", "", "regions (name=host:port,...) to run the write+mirror test on")
	sinceMS := flag.Int64("since-ms", 0, "-mm2-wait: heartbeats must be newer than this unix ms (default: now)")
	topic := flag.String("topic", "georep.ops", "topic for -mirror-check")
	partitions := flag.Int("partitions", 8, "partitions when -mirror-check creates the topic")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: ready [flags] name=host:port[,name=host:port...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	pids, err := parsePids(*pidsFlag)
	if err != nil {
		fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := watchPids(ctx, pids)
	defer stop()

	switch {
	case *mm2Wait != "":
		regions := mustRegions(append([]string{*mm2Wait}, flag.Args()...))
		err = waitMM2(ctx, regions, *sinceMS)
	case *mirrorCheck != "":
		regions := mustRegions(append([]string{*mirrorCheck}, flag.Args()...))
		err = checkMirror(ctx, regions, *topic, int32(*partitions))
	default:
		regions := mustRegions(flag.Args())
		err = waitReady(ctx, regions)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ready: "+format+"\n", args...)
	os.Exit(1)
}

func mustRegions(args []string) []region {
	var out []region
	seen := map[string]bool{}
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			name, addr, ok := strings.Cut(s, "=")
			if !ok || name == "" || addr == "" {
				fatalf("bad region %q, want name=host:port", s)
			}
			if seen[name] {
				fatalf("region %q given twice", name)
			}
			seen[name] = true
			out = append(out, region{name, addr})
		}
	}
	if len(out) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	return out
}

func parsePids(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, v, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad -pids entry %q, want name=pid", kv)
		}
		out[name] = pid
	}
	return out, nil
}

// watchPids cancels ctx as soon as one of the processes is gone.
func watchPids(parent context.Context, pids map[string]int) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	if len(pids) == 0 {
		return ctx, func() { cancel(nil) }
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			for name, pid := range pids {
				if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
					cancel(fmt.Errorf("%s process %d exited; see its logs", name, pid))
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DialTimeout(2 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// retry runs fn with a per-attempt timeout until it succeeds or ctx ends.
func retry(ctx context.Context, attempt time.Duration, fn func(context.Context) error) error {
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up: %v (last error: %v)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// parallel runs fn for every region and joins the errors.
func parallel(regions []region, fn func(region) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(regions))
	for i, r := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(r); err != nil {
				errs[i] = fmt.Errorf("%s (%s): %w", r.name, r.addr, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func waitReady(ctx context.Context, regions []region) error {
	start := time.Now()
	return parallel(regions, func(r region) error {
		err := retry(ctx, 15*time.Second, func(ctx context.Context) error { return produceFetch(ctx, r.addr) })
		if err == nil {
			fmt.Fprintf(os.Stderr, "%s ready at %s after %.1fs\n", r.name, r.addr, time.Since(start).Seconds())
		}
		return err
	})
}

// produceFetch does one full round trip: ping, create the scratch topic,
// produce a record and read that record back.
func produceFetch(ctx context.Context, addr string) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := createTopic(ctx, kadm.NewClient(cl), readyTopic, 1); err != nil {
		return err
	}
	value := fmt.Sprintf("ready %d", time.Now().UnixNano())
	rec, err := cl.ProduceSync(ctx, &kgo.Record{Topic: readyTopic, Partition: 0, Value: []byte(value)}).First()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return fetchValue(ctx, addr, readyTopic, 0, kgo.NewOffset().At(rec.Offset), value)
}

func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	_, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// fetchValue consumes topic/partition from the given offset until it sees a
// record with the value.
func fetchValue(ctx context.Context, addr, topic string, partition int32, from kgo.Offset, value string) error {
	cl, err := newClient(addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: from}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fetch %s[%d]: record not seen: %w", topic, partition, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition == partition && string(r.Value) == value {
				found = true
			}
		})
		if found {
			return nil
		}
	}
}

func waitMM2(ctx context.Context, regions []region, sinceMS int64) error {
	if len(regions) < 2 {
		return errors.New("-mm2-wait needs at least two regions")
	}
	start := time.Now()
	if sinceMS > 0 {
		start = time.UnixMilli(sinceMS)
	}
	return parallel(regions, func(dst region) error {
		cl, err := newClient(dst.addr)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		for _, src := range regions {
			if src.name == dst.name {
				continue
			}
			hb := src.name + ".heartbeats"
			err := retry(ctx, 10*time.Second, func(ctx context.Context) error {
				ends, err := adm.ListEndOffsets(ctx, hb)
				if err == nil {
					err = ends.Error()
				}
				if err != nil {
					return err
				}
				// A heartbeat stamped after start proves this MM2 run copies
				// (older ones may be left from a previous run).
				after, err := adm.ListOffsetsAfterMilli(ctx, start.UnixMilli(), hb)
				if err == nil {
					err = after.Error()
				}
				if err != nil {
					return err
				}
				e, ok1 := ends.Lookup(hb, 0)
				a, ok2 := after.Lookup(hb, 0)
				if !ok1 || !ok2 || a.Offset < 0 || a.Offset >= e.Offset {
					return fmt.Errorf("%s has no heartbeat newer than the start yet", hb)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("flow %s->%s: %w", src.name, dst.name, err)
			}
			fmt.Fprintf(os.Stderr, "mm2 %s->%s flowing (fresh record in %s) after %.1fs\n", src.name, dst.name, hb, time.Since(start).Seconds())
		}
		return nil
	})
}

func checkMirror(ctx context.Context, regions []region, topic string, partitions int32) error {
	if len(regions) < 2 {
		return errors.New("-mirror-check needs at least two regions")
	}
	type sent struct {
		partition int32
		value     string
		at        time.Time
		parts     int32
	}
	var mu sync.Mutex
	sentBy := map[string]sent{}
	run := time.Now().UnixNano()

	// 1. In every region: create the topic if missing, write one record.
	err := parallel(regions, func(r region) error {
		cl, err := newClient(r.addr)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		var parts int32
		err = retry(ctx, 15*time.Second, func(ctx context.Context) error {
			if err := createTopic(ctx, adm, topic, partitions); err != nil {
				return err
			}
			td, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return err
			}
			d, ok := td[topic]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				return fmt.Errorf("topic %s not visible yet", topic)
			}
			parts = int32(len(d.Partitions))
			return nil
		})
		if err != nil {
			return err
		}
		// A different partition per region, never 0, so "same partition"
		// is a real check.
		idx := 0
		for i, x := range regions {
			if x.name == r.name {
				idx = i
			}
		}
		p := int32(3+2*idx) % parts
		if p == 0 && parts > 1 {
			p = 1
		}
		value := fmt.Sprintf("mirror-check %d from %s", run, r.name)
		rec := &kgo.Record{
			Topic: topic, Partition: p, Key: []byte("georep-mirror-check"), Value: []byte(value),
			Headers: []kgo.RecordHeader{{Key: "georep-mirror-check", Value: []byte("1")}},
		}
		if _, err := cl.ProduceSync(ctx, rec).First(); err != nil {
			return fmt.Errorf("produce to %s[%d]: %w", topic, p, err)
		}
		mu.Lock()
		sentBy[r.name] = sent{p, value, time.Now(), parts}
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "%s: wrote test record to %s[%d] (%d partitions)\n", r.name, topic, p, parts)
		return nil
	})
	if err != nil {
		return err
	}

	// 2. Every other region must get it in src.topic, same partition.
	err = parallel(regions, func(dst region) error {
		cl, err := newClient(dst.addr)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		for _, src := range regions {
			if src.name == dst.name {
				continue
			}
			s := sentBy[src.name]
			remote := src.name + "." + topic
			err := retry(ctx, 10*time.Second, func(ctx context.Context) error {
				td, err := adm.ListTopics(ctx, remote)
				if err != nil {
					return err
				}
				d, ok := td[remote]
				if !ok || d.Err != nil || len(d.Partitions) == 0 {
					return fmt.Errorf("%s does not exist yet", remote)
				}
				if got := int32(len(d.Partitions)); got != s.parts {
					return fmt.Errorf("%s has %d partitions, source has %d", remote, got, s.parts)
				}
				return fetchValue(ctx, dst.addr, remote, s.partition, kgo.NewOffset().AtStart(), s.value)
			})
			if err != nil {
				return fmt.Errorf("%s -> %s: %w", src.name, dst.name, err)
			}
			fmt.Fprintf(os.Stderr, "mirrored %s -> %s: %s[%d] after %.1fs\n", src.name, dst.name, remote, s.partition, time.Since(s.at).Seconds())
		}
		return nil
	})
	if err != nil {
		return err
	}

	// 3. No cycles: nothing like "eu.us.georep.ops" anywhere.
	return parallel(regions, func(r region) error {
		cl, err := newClient(r.addr)
		if err != nil {
			return err
		}
		defer cl.Close()
		td, err := kadm.NewClient(cl).ListTopics(ctx)
		if err != nil {
			return err
		}
		var bad []string
		for _, t := range td.Names() {
			if strings.HasSuffix(t, "."+topic) && strings.Count(strings.TrimSuffix(t, topic), ".") > 1 {
				bad = append(bad, t)
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("records mirrored more than one hop: %v", bad)
		}
		return nil
	})
}
