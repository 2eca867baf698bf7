package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/server"
	"github.com/georep/georep/server/servertest"
	"github.com/rs/zerolog"
)

// env is a server on 127.0.0.1:0 over the fake store and operator.
type env struct {
	t     testing.TB
	srv   *server.Server
	store *servertest.Store
	op    *servertest.Operator
	addr  string
	stop  func() // cancels Run and checks that it returns (idempotent)
}

func testStatus() server.Status {
	return server.Status{
		Region: "us", InstanceID: 1, Writable: true,
		Peers:      []server.PeerStatus{{Region: "eu", InstanceID: 2, LagEvents: 3, LagMillis: 40, Reachable: true}},
		Applied:    crdt.Clock{{Origin: 1, Seq: 10}, {Origin: 2, Seq: 7}},
		BadRecords: 1, Tombstones: 2, EventsTotal: 17,
	}
}

func newEnv(t testing.TB, cfg server.Config) *env {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	store := servertest.NewStore()
	op := servertest.NewOperator(testStatus())
	log := zerolog.New(zerolog.NewTestWriter(t))
	srv, err := server.New(cfg, log, store, op)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return &env{t: t, srv: srv, store: store, op: op, addr: srv.Addr(), stop: stop}
}

// client is a raw RESP connection.
type client struct {
	t  testing.TB
	nc net.Conn
	rd *bufio.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	return dialAddr(e.t, e.addr)
}

func dialAddr(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

func encode(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

func (c *client) send(raw []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(raw); err != nil {
		c.t.Fatal(err)
	}
}

// do sends one command and returns its raw reply.
func (c *client) do(args ...string) string {
	c.t.Helper()
	c.send(encode(args...))
	return c.read()
}

// read returns the raw bytes of the next reply.
func (c *client) read() string {
	c.t.Helper()
	s, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return s
}

func (c *client) tryRead() (string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	err := readRaw(c.rd, &b)
	return b.String(), err
}

// expectClosed checks that the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	n, err := c.rd.Read(buf)
	if !errors.Is(err, io.EOF) {
		c.t.Fatalf("connection not closed: read %q, %v", buf[:n], err)
	}
}

// readRaw copies one RESP2/RESP3 value from rd to b.
func readRaw(rd *bufio.Reader, b *strings.Builder) error {
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	b.WriteString(line)
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return fmt.Errorf("bad reply line %q", line)
	}
	n, _ := strconv.Atoi(line[1 : len(line)-2])
	switch line[0] {
	case '$', '=', '!':
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return err
		}
		b.Write(buf)
	case '*', '~', '>', '%', '|':
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readRaw(rd, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func zlog(t testing.TB) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }
