package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/georep/georep/oplog"
)

// LatencyCmd measures cross-region visibility: it writes SET <prefix><i> at
// a steady rate to one region (pipelined, recording when each is
// acknowledged) and polls another region with MGET of the keys not yet
// seen there, recording when each becomes visible.
type LatencyCmd struct {
	WriteAddr   string        `help:"RESP address of the region written to." default:"127.0.0.1:7001" name:"write-addr"`
	ReadAddr    string        `help:"RESP address of the region polled." default:"127.0.0.1:7002" name:"read-addr"`
	Rate        float64       `help:"Writes per second." default:"5000"`
	Duration    time.Duration `help:"How long to write (after the warmup)." default:"20s"`
	Warmup      time.Duration `help:"Writes during this first period are made but not measured." default:"2s"`
	Drain       time.Duration `help:"How long to wait for the last writes to become visible." default:"10s"`
	Prefix      string        `help:"Key prefix." default:"lat:"`
	MaxInflight int           `help:"Most unacknowledged writes before the writer stalls." default:"20000" name:"max-inflight"`
	MaxPoll     int           `help:"Most keys per MGET." default:"256" name:"max-poll"`
	PollEvery   time.Duration `help:"Start an MGET this often (0: back to back). Polling flat out on a small machine takes CPU from the deployment measured." default:"1ms" name:"poll-every"`
	Partitions  int           `help:"Partitions of the georep topics (georep dev: 8). The reader applies a partition's events in write order, so the poller probes each partition's oldest unseen key and a few later ones and infers the keys in between; 0 polls every unseen key instead." default:"8"`
}

type probe struct{ q, pos int }

type probeResult struct {
	pos  int
	seen bool
}

// LatencyResult is what a latency run measured.
type LatencyResult struct {
	Written, Measured, Errors, Unseen, Negative int
	Stalls                                      int // times the writer waited for acks (max in-flight)
	Violations                                  int // keys seen after a later key of their partition (inference off for them)
	Achieved                                    float64
	Ack, Visible                                Percentiles
	Polls                                       int
	PollRTT                                     time.Duration // mean
	KeysPerPoll                                 float64
}

// Percentiles of a latency sample.
type Percentiles struct {
	N                        int
	P50, P90, P99, P999, Max time.Duration
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q * float64(len(ds)-1))
		return ds[i]
	}
	return Percentiles{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: ds[len(ds)-1]}
}

func (p Percentiles) String() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	return fmt.Sprintf("p50=%sms p90=%sms p99=%sms p99.9=%sms max=%sms (n=%d)", ms(p.P50), ms(p.P90), ms(p.P99), ms(p.P999), ms(p.Max), p.N)
}

// Run runs the measurement and prints the result.
func (c *LatencyCmd) Run(ctx context.Context, out io.Writer) error {
	res, err := c.run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "latency: %d SETs to %s at %.0f/s target (%.0f/s achieved), %d measured after %s warmup, eu polled at %s\n",
		res.Written, c.WriteAddr, c.Rate, res.Achieved, res.Measured, c.Warmup, c.ReadAddr)
	fmt.Fprintf(out, "  write ack (sent -> +OK):        %s\n", res.Ack)
	fmt.Fprintf(out, "  visible at reader - acked:      %s\n", res.Visible)
	fmt.Fprintf(out, "  seen before own ack: %d; never seen within %s: %d; write errors: %d; writer stalls: %d\n",
		res.Negative, c.Drain, res.Unseen, res.Errors, res.Stalls)
	fmt.Fprintf(out, "  polls: %d (one per %s at most), mean MGET round trip %.2fms, %.1f keys per MGET; out-of-order sightings: %d\n",
		res.Polls, c.PollEvery, float64(res.PollRTT)/1e6, res.KeysPerPoll, res.Violations)
	fmt.Fprintf(out, "  (a key is stamped visible when the MGET reply showing it arrives: late by up to one poll period plus a round trip)\n")
	fmt.Fprintf(out, "RESULT latency ack_p50_ms=%.2f ack_p99_ms=%.2f vis_p50_ms=%.2f vis_p90_ms=%.2f vis_p99_ms=%.2f vis_max_ms=%.2f achieved=%.0f unseen=%d errors=%d\n",
		ms(res.Ack.P50), ms(res.Ack.P99), ms(res.Visible.P50), ms(res.Visible.P90), ms(res.Visible.P99), ms(res.Visible.Max), res.Achieved, res.Unseen, res.Errors)
	if res.Unseen > 0 || res.Errors > 0 {
		return fmt.Errorf("%d writes failed and %d were never seen at %s", res.Errors, res.Unseen, c.ReadAddr)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (c *LatencyCmd) run(ctx context.Context) (LatencyResult, error) {
	var res LatencyResult
	if c.Rate <= 0 || c.Duration <= 0 {
		return res, errors.New("--rate and --duration must be positive")
	}
	wc, err := dial(c.WriteAddr)
	if err != nil {
		return res, fmt.Errorf("writer: %w", err)
	}
	defer wc.Close()
	rc, err := dial(c.ReadAddr)
	if err != nil {
		return res, fmt.Errorf("reader: %w", err)
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { wc.Close(); rc.Close() })
	defer stop()

	var nb [8]byte
	_, _ = rand.Read(nb[:])
	nonce := []byte(hex.EncodeToString(nb[:]))
	total := int((c.Warmup + c.Duration).Seconds() * c.Rate)
	warm := int(c.Warmup.Seconds() * c.Rate)
	key := func(i int) []byte { return strconv.AppendInt([]byte(c.Prefix), int64(i), 10) }

	var (
		sent    = make([]int64, total) // ns since base, written before nsent covers it
		acked   = make([]int64, total) // by the ack reader
		visible = make([]int64, total) // by the poller
		okAck   = make([]bool, total)
		nsent   atomic.Int64
		nacked  atomic.Int64
		base    = time.Now()
		since   = func() int64 { return int64(time.Since(base)) }
		wg      sync.WaitGroup
		errs    = make(chan error, 3)
	)

	// Ack reader: replies arrive in command order.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			r, err := wc.read()
			if err != nil {
				errs <- fmt.Errorf("read ack %d: %w", i, err)
				return
			}
			acked[i] = since()
			okAck[i] = r.kind == '+'
			nacked.Store(int64(i + 1))
		}
	}()

	// Writer: steady rate, pipelined.
	var stalls int
	var writeEnd int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		args := [][]byte{[]byte("SET"), nil, nonce}
		i := 0
		for i < total {
			due := min(int(time.Since(base).Seconds()*c.Rate)+1, total)
			if inflight := i - int(nacked.Load()); inflight >= c.MaxInflight {
				stalls++
				time.Sleep(100 * time.Microsecond)
				continue
			}
			due = min(due, int(nacked.Load())+c.MaxInflight)
			if due > i {
				t := since()
				for ; i < due; i++ {
					args[1] = key(i)
					wc.append(args...)
					sent[i] = t
				}
				nsent.Store(int64(i))
				if err := wc.flush(); err != nil {
					errs <- fmt.Errorf("write: %w", err)
					return
				}
			}
			if i < total {
				next := base.Add(time.Duration(float64(i) / c.Rate * float64(time.Second)))
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
			}
		}
		writeEnd = since()
	}()

	// Poller: MGET of keys not yet seen, as fast as it can.
	var polls, polledKeys, violations int
	var pollTime time.Duration
	var unseenLeft int
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Keys not yet seen, in write order, per partition (one queue
		// when inference is off).
		queues := make([][]int, max(c.Partitions, 1))
		queueOf := func(i int) int {
			if c.Partitions <= 0 {
				return 0
			}
			return int(oplog.Partition(key(i), int32(c.Partitions)))
		}
		var probes []probe
		next := 0
		var drainUntil, lastPoll time.Time
		args := [][]byte{[]byte("MGET")}
		for {
			for n := int(nsent.Load()); next < n; next++ {
				q := queueOf(next)
				queues[q] = append(queues[q], next)
			}
			if next == total && drainUntil.IsZero() {
				drainUntil = time.Now().Add(c.Drain)
			}
			left := 0
			for _, q := range queues {
				left += len(q)
			}
			unseenLeft = left
			if left == 0 {
				if next == total {
					return
				}
				time.Sleep(50 * time.Microsecond)
				continue
			}
			if !drainUntil.IsZero() && time.Now().After(drainUntil) {
				return
			}
			if d := time.Until(lastPoll.Add(c.PollEvery)); d > 0 {
				time.Sleep(d)
				continue // pick up the keys sent meanwhile
			}
			lastPoll = time.Now()
			// Probe each queue's oldest key first, then (with inference)
			// positions 1, 2, 4, 8, ... and its newest; without, the oldest
			// keys in order.
			probes = probes[:0]
			for qi, q := range queues {
				if len(q) > 0 {
					probes = append(probes, probe{qi, 0})
				}
			}
			for qi, q := range queues {
				for pos := 1; pos < len(q) && len(probes) < c.MaxPoll; {
					probes = append(probes, probe{qi, pos})
					switch {
					case c.Partitions <= 0:
						pos++
					case pos*2 < len(q)-1:
						pos *= 2
					case pos < len(q)-1:
						pos = len(q) - 1
					default:
						pos = len(q)
					}
				}
			}
			args = args[:1]
			for _, p := range probes {
				args = append(args, key(queues[p.q][p.pos]))
			}
			t0 := time.Now()
			rc.append(args...)
			if err := rc.flush(); err != nil {
				errs <- fmt.Errorf("poll: %w", err)
				return
			}
			r, err := rc.read()
			if err != nil {
				errs <- fmt.Errorf("poll: %w", err)
				return
			}
			if r.kind != '*' || len(r.elems) != len(probes) {
				errs <- fmt.Errorf("poll: unexpected MGET reply %q", r.str)
				return
			}
			t := since()
			pollTime += time.Since(t0)
			polls++
			polledKeys += len(probes)
			// Results per queue, in ascending position.
			seenAt := make([][]probeResult, len(queues))
			for j, p := range probes {
				ok := !r.elems[j].null && string(r.elems[j].str) == string(nonce)
				seenAt[p.q] = append(seenAt[p.q], probeResult{pos: p.pos, seen: ok})
			}
			for qi, res := range seenAt {
				if len(res) == 0 {
					continue
				}
				slices.SortFunc(res, func(a, b probeResult) int { return a.pos - b.pos })
				q := queues[qi]
				if c.Partitions <= 0 {
					// No inference: the probed keys (a prefix of the queue).
					var keep []int
					for _, x := range res {
						if x.seen {
							visible[q[x.pos]] = t
						} else {
							keep = append(keep, q[x.pos])
						}
					}
					queues[qi] = append(keep, q[len(res):]...)
					continue
				}
				// A partition is applied in write order, so every key up to
				// the last of the leading seen probes is visible.
				upTo := -1
				for _, x := range res {
					if !x.seen {
						break
					}
					upTo = x.pos
				}
				for _, i := range q[:upTo+1] {
					visible[i] = t
				}
				// A seen probe after an unseen one breaks that order: count
				// it and take only what was seen.
				var late []int
				for _, x := range res {
					if x.pos > upTo && x.seen {
						visible[q[x.pos]] = t
						late = append(late, x.pos)
						violations++
					}
				}
				keep := q[upTo+1:]
				if len(late) > 0 {
					keep = nil
					for pos := upTo + 1; pos < len(q); pos++ {
						if !slices.Contains(late, pos) {
							keep = append(keep, q[pos])
						}
					}
				}
				queues[qi] = keep
			}
		}
	}()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		wc.Close()
		rc.Close()
		<-done
		return res, err
	case <-ctx.Done():
		<-done
		return res, ctx.Err()
	}
	select {
	case err := <-errs:
		return res, err
	default:
	}

	res.Written = total
	res.Stalls = stalls
	if writeEnd > 0 {
		res.Achieved = float64(total) / (float64(writeEnd) / 1e9)
	}
	res.Polls, res.Unseen, res.Violations = polls, unseenLeft, violations
	if polls > 0 {
		res.PollRTT = pollTime / time.Duration(polls)
		res.KeysPerPoll = float64(polledKeys) / float64(polls)
	}
	var ackD, visD []time.Duration
	for i := warm; i < total; i++ {
		if !okAck[i] {
			res.Errors++
			continue
		}
		res.Measured++
		ackD = append(ackD, time.Duration(acked[i]-sent[i]))
		if visible[i] != 0 {
			d := time.Duration(visible[i] - acked[i])
			if d < 0 {
				res.Negative++
			}
			visD = append(visD, d)
		}
	}
	res.Ack, res.Visible = percentiles(ackD), percentiles(visD)
	return res, nil
}
