package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadCmd is a small redis-benchmark: clients connections each send
// pipeline commands, wait for their replies, and repeat, until requests
// commands are done. It exists so the same load runs inside a Go benchmark
// (for profiles) and where redis-benchmark is not installed.
type LoadCmd struct {
	Addr     string   `help:"RESP address." default:"127.0.0.1:7001"`
	Tests    []string `help:"Commands: set, get, incr." default:"set,get,incr" sep:","`
	Clients  int      `help:"Connections (redis-benchmark -c)." default:"50" short:"c"`
	Pipeline int      `help:"Commands per round trip (redis-benchmark -P)." default:"16" short:"P"`
	Requests int      `help:"Commands per test (redis-benchmark -n)." default:"200000" short:"n"`
	Keyspace int      `help:"Random keys out of this many (redis-benchmark -r); 0 uses one key like redis-benchmark without -r." default:"0" short:"r"`
}

// LoadResult is one test's outcome.
type LoadResult struct {
	Test     string
	Requests int
	Errors   int64
	Elapsed  time.Duration
	Batch    Percentiles // round trip of one pipeline
}

// RPS is requests per second.
func (r LoadResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Run runs each test and prints one line per test.
func (c *LoadCmd) Run(ctx context.Context, out io.Writer) error {
	for _, t := range c.Tests {
		res, err := runLoad(ctx, c.Addr, t, c.Clients, c.Pipeline, c.Requests, c.Keyspace)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %.0f requests per second, pipeline round trip %s, errors %d\n",
			strings.ToUpper(res.Test), res.RPS(), res.Batch, res.Errors)
	}
	return nil
}

// runLoad runs one test. Keys and values follow redis-benchmark:
// "key:__rand_int__" for SET/GET (3-byte value "xxx"), "counter:__rand_int__"
// for INCR, or a random number below keyspace in place of __rand_int__.
func runLoad(ctx context.Context, addr, test string, clients, pipeline, requests, keyspace int) (LoadResult, error) {
	res := LoadResult{Test: strings.ToLower(test), Requests: requests}
	var name, prefix string
	switch res.Test {
	case "set":
		name, prefix = "SET", "key:"
	case "get":
		name, prefix = "GET", "key:"
	case "incr":
		name, prefix = "INCR", "counter:"
	default:
		return res, fmt.Errorf("unknown test %q (set, get, incr)", test)
	}
	conns := make([]*client, clients)
	for i := range conns {
		c, err := dial(addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return res, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()

	var left atomic.Int64
	left.Store(int64(requests))
	var errCount atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := uint64(ci)*0x9e3779b97f4a7c15 + 1
			var local []time.Duration
			args := [][]byte{[]byte(name), nil, []byte("xxx")}
			if name != "SET" {
				args = args[:2]
			}
			for {
				n := min(int64(pipeline), left.Add(-int64(pipeline))+int64(pipeline))
				if n <= 0 {
					break
				}
				t0 := time.Now()
				for j := int64(0); j < n; j++ {
					k := []byte(prefix + "__rand_int__")
					if keyspace > 0 {
						seed ^= seed << 13
						seed ^= seed >> 7
						seed ^= seed << 17
						k = strconv.AppendUint([]byte(prefix), seed%uint64(keyspace), 10)
					}
					args[1] = k
					c.append(args...)
				}
				err := c.flush()
				for j := int64(0); j < n && err == nil; j++ {
					var r reply
					r, err = c.read()
					if err == nil && r.kind == '-' {
						errCount.Add(1)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Errors = errCount.Load()
	res.Batch = percentiles(rtts)
	if firstErr != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, fmt.Errorf("%s: %w", test, firstErr)
	}
	if res.Errors > 0 && res.Errors == int64(requests) {
		return res, errors.New(test + ": every request failed")
	}
	return res, nil
}
