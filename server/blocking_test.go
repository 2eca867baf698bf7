package server_test

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/server"
)

var blockedRE = regexp.MustCompile(`blocked_clients:(\d+)`)

// blocked returns INFO's blocked_clients, asked on c.
func blocked(t *testing.T, c *client) int {
	t.Helper()
	m := blockedRE.FindStringSubmatch(c.do("INFO", "clients"))
	if m == nil {
		t.Fatal("INFO clients has no blocked_clients")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitBlocked waits until n clients are blocked.
func waitBlocked(t *testing.T, ctl *client, n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" blocked clients", func() bool { return blocked(t, ctl) == n })
}

// blockedClient starts a server and a client blocked in the command args;
// ctl is another client.
func blockedClient(t *testing.T, args ...string) (e *env, ctl, w *client) {
	t.Helper()
	e = newEnv(t, server.Config{})
	ctl, w = e.dial(), e.dial()
	w.send(encode(args...))
	waitBlocked(t, ctl, 1)
	return e, ctl, w
}

// bulkPair is the RESP2 reply [a, b] of bulk strings.
func bulkPair(a, b string) string {
	return "*2\r\n$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n$" + strconv.Itoa(len(b)) + "\r\n" + b + "\r\n"
}

func TestBlocking_FIFO(t *testing.T) {
	e := newEnv(t, server.Config{})
	ctl := e.dial()
	var ws []*client
	for i := 0; i < 3; i++ {
		w := e.dial()
		w.send(encode("BLPOP", "q", "0"))
		waitBlocked(t, ctl, i+1)
		ws = append(ws, w)
	}
	// One element: the first to block gets it, the others keep waiting.
	if got := ctl.do("RPUSH", "q", "a"); got != ":1\r\n" {
		t.Fatalf("RPUSH: %q", got)
	}
	if got := ws[0].read(); got != bulkPair("q", "a") {
		t.Fatalf("first waiter: %q", got)
	}
	waitBlocked(t, ctl, 2)
	// A newcomer queues behind them.
	late := e.dial()
	late.send(encode("BRPOP", "other", "q", "0"))
	waitBlocked(t, ctl, 3)
	ctl.do("RPUSH", "q", "b", "c", "d")
	for i, want := range []string{bulkPair("q", "b"), bulkPair("q", "c")} {
		if got := ws[i+1].read(); got != want {
			t.Fatalf("waiter %d: %q, want %q", i+1, got, want)
		}
	}
	if got := late.read(); got != bulkPair("q", "d") {
		t.Fatalf("newcomer: %q", got)
	}
	waitBlocked(t, ctl, 0)
	if got := ctl.do("EXISTS", "q"); got != ":0\r\n" {
		t.Fatalf("EXISTS q: %q", got)
	}
}

func TestBlocking_WokenByReplication(t *testing.T) {
	e, _, w := blockedClient(t, "BLPOP", "a", "q", "0")
	e.store.RemotePush(2, "q", false, "from-eu")
	if got := w.read(); got != bulkPair("q", "from-eu") {
		t.Fatalf("BLPOP: %q", got)
	}
	// The pop is this region's event: the removal of eu's element.
	evs := e.store.Events()
	last := evs[len(evs)-1]
	if string(last.Key) != "q" || len(last.Ops) != 1 || last.Ops[0].Kind != crdt.OpLRem {
		t.Fatalf("pop event %+v", last)
	}
	if id, err := crdt.ParseElemID(last.Ops[0].Elem); err != nil || id.Origin != 2 {
		t.Fatalf("popped element %v (%v), want one of origin 2", id, err)
	}
}

func TestBlocking_Timeout(t *testing.T) {
	e := newEnv(t, server.Config{})
	ctl := e.dial()
	w := e.dial()
	if got := w.do("BRPOP", "q", "0.02"); got != "*-1\r\n" {
		t.Fatalf("BRPOP: %q", got)
	}
	if got := w.do("BLMOVE", "q", "d", "LEFT", "LEFT", "0.02"); got != "*-1\r\n" {
		t.Fatalf("BLMOVE: %q", got)
	}
	w.do("HELLO", "3")
	if got := w.do("BLMPOP", "0.02", "1", "q", "LEFT"); got != "_\r\n" {
		t.Fatalf("BLMPOP: %q", got)
	}
	if n := blocked(t, ctl); n != 0 {
		t.Fatalf("blocked_clients %d after the timeouts", n)
	}
	// A push after the timeout stays in the list.
	ctl.do("RPUSH", "q", "x")
	if got := ctl.do("LRANGE", "q", "0", "-1"); got != "*1\r\n$1\r\nx\r\n" {
		t.Fatalf("LRANGE: %q", got)
	}
}

func TestBlocking_DisconnectLosesNothing(t *testing.T) {
	e := newEnv(t, server.Config{})
	ctl := e.dial()
	gone := e.dial()
	gone.send(encode("BLPOP", "q", "0"))
	stays := e.dial()
	waitBlocked(t, ctl, 1)
	stays.send(encode("BLMOVE", "q", "d", "LEFT", "RIGHT", "0"))
	waitBlocked(t, ctl, 2)
	gone.nc.Close()
	waitBlocked(t, ctl, 1)
	ctl.do("RPUSH", "q", "x", "y")
	if got := stays.read(); got != "$1\r\nx\r\n" {
		t.Fatalf("BLMOVE: %q", got)
	}
	if got := ctl.do("LRANGE", "q", "0", "-1"); got != "*1\r\n$1\r\ny\r\n" {
		t.Fatalf("q: %q (an element popped for the client that left?)", got)
	}
	if got := ctl.do("LRANGE", "d", "0", "-1"); got != "*1\r\n$1\r\nx\r\n" {
		t.Fatalf("d: %q", got)
	}
	removed := 0
	for _, ev := range e.store.Events() {
		for _, op := range ev.Ops {
			if string(ev.Key) == "q" && op.Kind == crdt.OpLRem {
				removed++
			}
		}
	}
	if removed != 1 {
		t.Fatalf("%d elements removed from q, want BLMOVE's one", removed)
	}
}

func TestBlocking_BLMove(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		e, ctl, w := blockedClient(t, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
		ctl.do("RPUSH", "dst", "old")
		e.store.RemotePush(3, "src", false, "a", "b")
		if got := w.read(); got != "$1\r\nb\r\n" {
			t.Fatalf("BLMOVE: %q", got)
		}
		if got := ctl.do("LRANGE", "dst", "0", "-1"); got != "*2\r\n$1\r\nb\r\n$3\r\nold\r\n" {
			t.Fatalf("dst: %q", got)
		}
		if got := ctl.do("LRANGE", "src", "0", "-1"); got != "*1\r\n$1\r\na\r\n" {
			t.Fatalf("src: %q", got)
		}
	})
	t.Run("same list", func(t *testing.T) {
		e, ctl, w := blockedClient(t, "BRPOPLPUSH", "l", "l", "0")
		before := len(e.store.Events())
		e.store.RemotePush(2, "l", false, "a", "b")
		if got := w.read(); got != "$1\r\nb\r\n" {
			t.Fatalf("BRPOPLPUSH: %q", got)
		}
		if got := ctl.do("LRANGE", "l", "0", "-1"); got != "*2\r\n$1\r\nb\r\n$1\r\na\r\n" {
			t.Fatalf("l: %q", got)
		}
		if n := len(e.store.Events()) - before; n != 1 {
			t.Fatalf("%d events for a move within one list, want 1", n)
		}
	})
	t.Run("ErrWrongType destination when served", func(t *testing.T) {
		e := newEnv(t, server.Config{})
		ctl := e.dial()
		w := e.dial()
		ctl.do("SET", "dst", "v")
		w.send(encode("BLMOVE", "src", "dst", "LEFT", "LEFT", "0"))
		waitBlocked(t, ctl, 1)
		ctl.do("RPUSH", "src", "a")
		if got := w.read(); got != "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" {
			t.Fatalf("BLMOVE: %q", got)
		}
		if got := ctl.do("LRANGE", "src", "0", "-1"); got != "*1\r\n$1\r\na\r\n" {
			t.Fatalf("src: %q", got)
		}
	})
}

func TestBlocking_PipelineWaits(t *testing.T) {
	e := newEnv(t, server.Config{})
	ctl := e.dial()
	w := e.dial()
	w.send(append(append(encode("PING"), encode("BLPOP", "q", "0")...), encode("LLEN", "q")...))
	if got := w.read(); got != "+PONG\r\n" {
		t.Fatalf("PING before the blocking command: %q", got)
	}
	waitBlocked(t, ctl, 1)
	ctl.do("RPUSH", "q", "a", "b")
	if got := w.read() + w.read(); got != bulkPair("q", "a")+":1\r\n" {
		t.Fatalf("BLPOP, LLEN: %q", got)
	}
	// Commands sent while the client waits run after it, in order.
	w.send(encode("BLPOP", "q2", "0"))
	waitBlocked(t, ctl, 1)
	w.send(append(encode("LLEN", "q2"), encode("LPOP", "q2")...))
	ctl.do("RPUSH", "q2", "x", "y", "z")
	if got := w.read() + w.read() + w.read(); got != bulkPair("q2", "x")+":2\r\n$1\r\ny\r\n" {
		t.Fatalf("BLPOP, LLEN, LPOP: %q", got)
	}
}

func TestBlocking_ReplyAfterAck(t *testing.T) {
	e, _, w := blockedClient(t, "BLPOP", "q", "0")
	e.store.HoldAcks()
	e.store.RemotePush(2, "q", false, "a")
	waitFor(t, "the pop in flight", func() bool { return e.store.Held() == 1 })
	_ = w.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if b, err := w.rd.Peek(1); err == nil {
		t.Fatalf("reply %q before the ack", b)
	}
	e.store.ReleaseAcks()
	if got := w.read(); got != bulkPair("q", "a") {
		t.Fatalf("BLPOP: %q", got)
	}
}

func TestBlocking_AckFailure(t *testing.T) {
	e, _, w := blockedClient(t, "BLPOP", "q", "0")
	e.store.FailAcks(redisErr("READONLY region is not in sync"))
	e.store.RemotePush(2, "q", false, "a")
	if got := w.read(); got != "-READONLY region is not in sync\r\n" {
		t.Fatalf("BLPOP: %q", got)
	}
}

func TestBlocking_ShutdownUnblocks(t *testing.T) {
	e, ctl, w := blockedClient(t, "BLPOP", "q", "0")
	if got := ctl.do("CLIENT", "LIST"); !regexp.MustCompile(`flags=b .*cmd=blpop`).MatchString(got) {
		t.Fatalf("CLIENT LIST: %q", got)
	}
	// Run returns with w still connected and blocked (the test's cleanup
	// would close w first); w gets the shutdown error if the reply makes
	// it out before its connection is closed.
	e.stop()
	got, err := w.tryRead()
	switch {
	case err == nil && got != "-ERR server is shutting down\r\n":
		t.Fatalf("BLPOP at shutdown: %q", got)
	case err == nil:
		w.expectClosed()
	case !errors.Is(err, io.EOF):
		t.Fatalf("BLPOP at shutdown: %v", err)
	}
}
