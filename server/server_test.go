package server_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/georep/georep/server"
)

// redisErr is an error with its own reply, like the store's READONLY.
type redisErr string

func (e redisErr) Error() string      { return string(e) }
func (e redisErr) RedisError() string { return string(e) }

func TestServer_PipelinedWrites(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	e.store.HoldAcks()
	var req []byte
	for i := 0; i < 16; i++ {
		req = append(req, encode("SET", "k"+strconv.Itoa(i), "v")...)
	}
	req = append(req, encode("GET", "k15")...)
	c.send(req)
	// All 16 writes are in flight at once, waiting for their acks.
	waitFor(t, "16 writes in flight", func() bool { return e.store.Held() == 16 })
	_ = c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.rd.Peek(1); err == nil {
		t.Fatalf("reply %q before the acks", n)
	}
	e.store.ReleaseAcks()
	for i := 0; i < 16; i++ {
		if got := c.read(); got != "+OK\r\n" {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	if got := c.read(); got != "$1\r\nv\r\n" {
		t.Fatalf("GET after the writes: %q", got)
	}
}

func TestServer_ReadWaitsForOwnWrites(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	e.store.HoldAcks()
	c.send(append(encode("INCR", "n"), encode("GET", "n")...))
	waitFor(t, "incr in flight", func() bool { return e.store.Held() == 1 })
	// Another connection is not held up by c's pending write.
	if got := e.dial().do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	e.store.ReleaseAcks()
	if got := c.read() + c.read(); got != ":1\r\n$1\r\n1\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestServer_AckErrors(t *testing.T) {
	t.Run("failed ack", func(t *testing.T) {
		e := newEnv(t, server.Config{})
		c := e.dial()
		e.store.FailAcks(redisErr("READONLY region is not in sync"))
		if got := c.do("SET", "k", "v"); got != "-READONLY region is not in sync\r\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("refused update", func(t *testing.T) {
		e := newEnv(t, server.Config{})
		c := e.dial()
		e.store.Refuse(redisErr("READONLY region is not in sync: bootstrapping"))
		if got := c.do("INCR", "k"); got != "-READONLY region is not in sync: bootstrapping\r\n" {
			t.Fatalf("got %q", got)
		}
		if got := c.do("GET", "k"); got != "$-1\r\n" {
			t.Fatalf("reads still work: %q", got)
		}
	})
	t.Run("unknown error", func(t *testing.T) {
		e := newEnv(t, server.Config{})
		c := e.dial()
		e.store.Refuse(errors.New("kafka: broker on fire"))
		if got := c.do("SET", "k", "v"); got != "-ERR internal error\r\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("ack timeout", func(t *testing.T) {
		e := newEnv(t, server.Config{WriteTimeout: 100 * time.Millisecond})
		c := e.dial()
		e.store.HoldAcks()
		if got := c.do("SET", "k", "v"); !strings.HasPrefix(got, "-ERR timed out waiting for the write") {
			t.Fatalf("got %q", got)
		}
		e.store.ReleaseAcks()
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("connection still serves: %q", got)
		}
	})
}

func TestServer_PanicRecovered(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	e.store.PanicOnGet("boom")
	for i := 0; i < 2; i++ {
		if got := c.do("GET", "boom"); got != "-ERR internal error\r\n" {
			t.Fatalf("GET: %q", got)
		}
		if got := c.do("SET", "boom", "x", "GET"); got != "-ERR internal error\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	if got := c.do("SET", "ok", "x"); got != "+OK\r\n" {
		t.Fatalf("keeps serving: %q", got)
	}
}

func TestServer_ProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	e := newEnv(t, server.Config{})
	good, bad := e.dial(), e.dial()
	good.do("SET", "k", "v")
	// The header announces 1 GB: rejected before any payload is sent.
	bad.send([]byte("*2\r\n$3\r\nGET\r\n$1073741824\r\n"))
	if got := bad.read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
	bad.expectClosed()
	if got := good.do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Fatalf("other connection: %q", got)
	}
}

func TestServer_TooBigInline(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	c.send([]byte("PING\r\nECHO " + strings.Repeat("x", 64<<10)))
	if got := c.read(); got != "+PONG\r\n" {
		t.Fatalf("got %q", got)
	}
	if got := c.read(); got != "-ERR Protocol error: too big inline request\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectClosed()
}

func TestServer_LargeValue(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	v := strings.Repeat("abcdefgh", 1<<17) // 1 MB
	if got := c.do("SET", "big", v); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := c.do("GET", "big"); got != "$"+strconv.Itoa(len(v))+"\r\n"+v+"\r\n" {
		t.Fatalf("GET: %d bytes", len(got))
	}
	if got := c.do("APPEND", "big", "x"); got != ":"+strconv.Itoa(len(v)+1)+"\r\n" {
		t.Fatalf("APPEND: %q", got)
	}
}

// TestServer_WrongArity sends every command (and subcommand) of COMMAND's
// table with one argument too few or too many.
func TestServer_WrongArity(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	raw := c.do("COMMAND")
	infos := parseInfos(t, raw)
	if len(infos) < 60 {
		t.Fatalf("only %d commands", len(infos))
	}
	for _, in := range infos {
		words := strings.Split(in.name, "|")
		var args []string
		if in.arity > 0 {
			args = words
			for len(args) < in.arity+1 {
				args = append(args, "x")
			}
		} else {
			if -in.arity-1 < len(words) {
				continue // nothing shorter to send
			}
			args = words
			for len(args) < -in.arity-1 {
				args = append(args, "x")
			}
		}
		if len(words) == 1 && in.hasSubs && len(args) == 1 {
			continue
		}
		want := fmt.Sprintf("-ERR wrong number of arguments for '%s' command\r\n", in.name)
		if got := c.do(args...); got != want {
			t.Errorf("%v: got %q, want %q", args, got, want)
		}
	}
}

type cmdInfo struct {
	name    string
	arity   int
	hasSubs bool
}

// parseInfos extracts names and arities (subcommands too) from a raw
// RESP2 COMMAND reply.
func parseInfos(t *testing.T, raw string) []cmdInfo {
	lines := strings.Split(raw, "\r\n")
	var out []cmdInfo
	for i := 0; i+2 < len(lines); i++ {
		// An entry starts "*10", "$len", name, ":arity".
		if lines[i] == "*10" && strings.HasPrefix(lines[i+1], "$") && strings.HasPrefix(lines[i+3], ":") {
			arity, err := strconv.Atoi(lines[i+3][1:])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, cmdInfo{name: lines[i+2], arity: arity})
		}
	}
	for i := range out {
		for _, o := range out {
			if strings.HasPrefix(o.name, out[i].name+"|") {
				out[i].hasSubs = true
			}
		}
	}
	return out
}

func TestServer_ScanAcrossCalls(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	want := map[string]bool{}
	for i := 0; i < 95; i++ {
		k := fmt.Sprintf("key:%03d", i)
		want[k] = true
		c.do("SET", k, "v")
	}
	c.do("DEL", "key:050")
	delete(want, "key:050")
	got := map[string]bool{}
	cursor := "0"
	calls := 0
	for {
		calls++
		raw := c.do("SCAN", cursor, "COUNT", "7")
		lines := strings.Split(raw, "\r\n")
		cursor = lines[2]
		for i := 5; i+1 < len(lines); i += 2 {
			if got[lines[i]] {
				t.Fatalf("%s returned twice", lines[i])
			}
			got[lines[i]] = true
		}
		if cursor == "0" {
			break
		}
		// Another connection continues the same scan.
		c = e.dial()
	}
	if len(got) != len(want) || calls < 10 {
		t.Fatalf("got %d keys in %d calls, want %d", len(got), calls, len(want))
	}
	if r := c.do("SCAN", "12345"); r != "-ERR invalid cursor\r\n" {
		t.Fatalf("unknown cursor: %q", r)
	}
}

func TestServer_MaxClients(t *testing.T) {
	e := newEnv(t, server.Config{MaxClients: 2})
	a, b := e.dial(), e.dial()
	a.do("PING")
	b.do("PING")
	c := e.dial()
	if got := c.read(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectClosed()
	a.do("QUIT")
	a.expectClosed()
	waitFor(t, "a slot", func() bool {
		d := e.dial()
		d.send(encode("PING"))
		r, err := d.tryRead()
		return err == nil && r == "+PONG\r\n"
	})
}

func TestServer_RunReturnsWithOpenConnections(t *testing.T) {
	store := newEnv(t, server.Config{}).store
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0"}, zlog(t), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	c := dialAddr(t, srv.Addr())
	c.do("PING")
	store.HoldAcks()
	c.send(encode("SET", "k", "v")) // its ack never comes
	waitFor(t, "held write", func() bool { return store.Held() == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	store.ReleaseAcks()
}

func TestServer_ConcurrentClients(t *testing.T) {
	e := newEnv(t, server.Config{})
	var wg sync.WaitGroup
	const clients, incrs = 8, 200
	for i := 0; i < clients; i++ {
		c := e.dial()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req []byte
			for j := 0; j < incrs; j++ {
				req = append(req, encode("INCR", "n")...)
			}
			c.send(req)
			for j := 0; j < incrs; j++ {
				if _, err := c.tryRead(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := strconv.Itoa(clients * incrs)
	if got := e.dial().do("GET", "n"); got != "$"+strconv.Itoa(len(want))+"\r\n"+want+"\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		cfg server.Config
		ok  bool
	}{
		{server.Config{}, true},
		{server.Config{Addr: "nope"}, false},
		{server.Config{WriteTimeout: -1}, false},
		{server.Config{MaxClients: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

func TestServer_GeorepSyncTimeout(t *testing.T) {
	e := newEnv(t, server.Config{WriteTimeout: 50 * time.Millisecond})
	var got time.Duration
	e.op.SyncFunc = func(ctx context.Context, timeout time.Duration) error {
		got = timeout
		<-ctx.Done() // longer than WriteTimeout: SYNC is bounded by its own timeout
		return fmt.Errorf("sync: %w", context.DeadlineExceeded)
	}
	c := e.dial()
	if r := c.do("GEOREP", "SYNC", "200"); r != "-ERR georep sync timed out after 200 ms\r\n" {
		t.Fatalf("got %q", r)
	}
	if got != 200*time.Millisecond {
		t.Fatalf("timeout %v", got)
	}
	e.op.SyncFunc = func(ctx context.Context, timeout time.Duration) error {
		got = timeout
		return nil
	}
	if r := c.do("GEOREP", "SYNC"); r != "+OK\r\n" || got != server.DefaultSyncTimeout {
		t.Fatalf("got %q, timeout %v", r, got)
	}
}

func TestServer_ClientList(t *testing.T) {
	e := newEnv(t, server.Config{})
	a, b := e.dial(), e.dial()
	a.do("CLIENT", "SETNAME", "alpha")
	b.do("HELLO", "3")
	b.do("CLIENT", "SETINFO", "LIB-NAME", "go-redis(,go1.22)")
	raw := a.do("CLIENT", "LIST")
	if !strings.HasPrefix(raw, "$") || !strings.Contains(raw, "name=alpha ") ||
		!strings.Contains(raw, "cmd=client|list ") || !strings.Contains(raw, "resp=3 lib-name=go-redis(,go1.22) ") {
		t.Fatalf("CLIENT LIST: %q", raw)
	}
	if raw := b.do("CLIENT", "INFO"); !strings.HasPrefix(raw, "=") || !strings.Contains(raw, "txt:id=2 ") {
		t.Fatalf("CLIENT INFO (RESP3): %q", raw)
	}
}
