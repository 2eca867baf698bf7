package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/georep/georep/server"
)

// Replies of a pipeline are written together, but a reply never waits for a
// later command that blocks: here GET's reply arrives while GEOREP SYNC,
// sent in the same write, is still waiting.
func TestServer_RepliesBeforeBlockingCommandAreFlushed(t *testing.T) {
	e := newEnv(t, server.Config{})
	release := make(chan struct{})
	e.op.SyncFunc = func(ctx context.Context, timeout time.Duration) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	c := e.dial()
	c.do("SET", "a", "1")
	c.send(append(append(encode("GET", "a"), encode("PING")...), encode("GEOREP", "SYNC", "10000")...))
	got := make(chan string, 1)
	go func() {
		r1, err := c.tryRead()
		if err == nil {
			var r2 string
			r2, err = c.tryRead()
			r1 += r2
		}
		if err != nil {
			r1 = err.Error()
		}
		got <- r1
	}()
	select {
	case r := <-got:
		if r != "$1\r\n1\r\n+PONG\r\n" {
			t.Fatalf("got %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replies before GEOREP SYNC not flushed while it blocks")
	}
	close(release)
	if r := c.read(); r != "+OK\r\n" {
		t.Fatalf("SYNC: %q", r)
	}
}
