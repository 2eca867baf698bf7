package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/georep/georep/server"
)

// A write changes at most 8192 elements of a list; pops return at most
// that many.
func TestLists_ElementLimit(t *testing.T) {
	e := newEnv(t, server.Config{})
	c := e.dial()
	const limit = 8192
	args := []string{"RPUSH", "l"}
	for i := 0; i <= limit; i++ {
		args = append(args, strconv.Itoa(i))
	}
	tooMany := "-ERR georep: a write may change at most 8192 elements of a collection at once\r\n"
	if got := c.do(args...); got != tooMany {
		t.Fatalf("RPUSH of %d values: %q", limit+1, got)
	}
	if got := c.do(args[:len(args)-1]...); got != ":8192\r\n" {
		t.Fatalf("RPUSH of %d values: %q", limit, got)
	}
	if got := c.do("RPUSH", "l", "x", "y"); got != ":8194\r\n" {
		t.Fatalf("RPUSH: %q", got)
	}
	if got := c.do("LTRIM", "l", "0", "0"); got != tooMany {
		t.Fatalf("LTRIM removing 8193: %q", got)
	}
	if got := c.do("LTRIM", "l", "1", "-1"); got != "+OK\r\n" {
		t.Fatalf("LTRIM removing 1: %q", got)
	}
	if got := c.do("RPOP", "l", "10000"); !strings.HasPrefix(got, "*8192\r\n$1\r\ny\r\n$1\r\nx\r\n$4\r\n8191\r\n") {
		t.Fatalf("RPOP 10000: %.40q", got)
	}
	if got := c.do("LRANGE", "l", "0", "-1"); got != "*1\r\n$1\r\n1\r\n" {
		t.Fatalf("left after the pop: %q", got)
	}
}
