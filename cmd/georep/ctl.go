package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// CtlCmd sends a GEOREP operator command to a node.
type CtlCmd struct {
	Addr     string        `help:"Node RESP address." default:"127.0.0.1:7001"`
	Password string        `help:"AUTH password, if the node requires one." env:"GEOREP_REQUIREPASS"`
	Timeout  time.Duration `help:"How long to wait for the reply (and for sync)." default:"30s"`
	Command  string        `arg:"" enum:"status,pause,resume,sync,digest" help:"status, pause, resume, sync or digest."`
}

// Run sends the command and prints the reply.
func (c *CtlCmd) Run(ctx context.Context, _ zerolog.Logger) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.Timeout + 5*time.Second))
	rd := bufio.NewReader(conn)
	if c.Password != "" {
		if _, err := roundTrip(conn, rd, "AUTH", c.Password); err != nil {
			return err
		}
	}
	args := []string{"GEOREP", strings.ToUpper(c.Command)}
	if c.Command == "sync" {
		args = append(args, strconv.FormatInt(c.Timeout.Milliseconds(), 10))
	}
	v, err := roundTrip(conn, rd, args...)
	if err != nil {
		return err
	}
	fmt.Print(render(v, ""))
	return nil
}

// roundTrip sends one command and reads one reply.
func roundTrip(w io.Writer, rd *bufio.Reader, args ...string) (any, error) {
	if err := writeCommand(w, args...); err != nil {
		return nil, err
	}
	return readReply(rd)
}

// writeCommand sends one command without reading its reply (pipelining).
func writeCommand(w io.Writer, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// replyError is an error reply.
type replyError string

func (e replyError) Error() string { return string(e) }

// readReply reads one RESP2/RESP3 reply into strings, ints, []any and
// map-as-pairs ([]any of [2]any).
func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+', '(', ',', '#':
		return body, nil
	case '-', '!':
		return nil, replyError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '$', '=':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*', '~', '>', '%':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '%' {
			n *= 2
		}
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := readReply(rd)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// render prints a reply as indented text; arrays of even length whose even
// elements are strings print as key: value lines.
func render(v any, indent string) string {
	switch x := v.(type) {
	case nil:
		return indent + "(nil)\n"
	case []any:
		var b strings.Builder
		if isPairs(x) {
			for i := 0; i < len(x); i += 2 {
				k := x[i].(string)
				switch val := x[i+1].(type) {
				case []any:
					fmt.Fprintf(&b, "%s%s:\n%s", indent, k, render(val, indent+"  "))
				default:
					fmt.Fprintf(&b, "%s%s: %v\n", indent, k, val)
				}
			}
			return b.String()
		}
		for _, e := range x {
			if l, ok := e.([]any); ok && isPairs(l) {
				fmt.Fprintf(&b, "%s-\n%s", indent, render(l, indent+"  "))
				continue
			}
			b.WriteString(render(e, indent+"- "))
		}
		return b.String()
	default:
		return fmt.Sprintf("%s%v\n", indent, x)
	}
}

func isPairs(x []any) bool {
	if len(x) == 0 || len(x)%2 != 0 {
		return false
	}
	for i := 0; i < len(x); i += 2 {
		s, ok := x[i].(string)
		if !ok || s == "" || strings.ContainsAny(s, " \n") {
			return false
		}
	}
	return true
}
