package server

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/tidwall/redcon"
)

// oneByteReader feeds the guard one byte at a time, the hardest split.
func readAllCommands(t *testing.T, in []byte, oneByte bool) ([][][]byte, error) {
	var r io.Reader = bytes.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	rd := redcon.NewReader(newGuard(r))
	var out [][][]byte
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, cmd.Args)
	}
}

func FuzzGuard_RoundTrip(f *testing.F) {
	f.Add([]byte("SET"), []byte("k"), []byte("v"), uint8(1))
	f.Add([]byte("GET"), []byte("a\r\nb"), []byte(""), uint8(3))
	f.Add([]byte("*"), []byte("$"), []byte("\n"), uint8(2))
	f.Fuzz(func(t *testing.T, a, b, c []byte, n uint8) {
		args := [][]byte{a, b, c}[:1+n%3]
		var in []byte
		in = appendHeader(in, '*', len(args))
		for _, x := range args {
			in = appendBulk(in, x)
		}
		in = append(in, "*0\r\n"...) // ignored, like Redis
		in = append(in, in[:len(in)-4]...)
		for _, oneByte := range []bool{false, true} {
			cmds, err := readAllCommands(t, in, oneByte)
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if len(cmds) != 2 {
				t.Fatalf("%q: %d commands", in, len(cmds))
			}
			for _, cmd := range cmds {
				for i := range args {
					if !bytes.Equal(cmd[i], args[i]) {
						t.Fatalf("%q: arg %d = %q, want %q", in, i, cmd[i], args[i])
					}
				}
			}
		}
	})
}

// FuzzGuard_Any checks that arbitrary input never panics or hangs, and
// that errors are protocol errors or EOF.
func FuzzGuard_Any(f *testing.F) {
	for _, s := range []string{"PING\r\n", "*1\r\n$4\r\nPING\r\n", "*-1\r\n", "*1\r\n$-1\r\n", "\"a", "*2\r\n$1\r\na\r\nx", "$5\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := readAllCommands(t, in, false)
		if err != nil && asProtocolError(err) == nil {
			t.Fatalf("%q: %v", in, err)
		}
	})
}

func TestGuard_Limits(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"*1048577\r\n", "invalid multibulk length"},
		{"*1\r\n$536870913\r\n", "invalid bulk length"},
		{"*1\r\n$-1\r\n", "invalid bulk length"},
		{"*1\r\nx\r\n", "expected '$', got 'x'"},
		{"*1\r\n" + string(bytes.Repeat([]byte("$"), 70000)), "too big bulk count string"},
		{"*" + string(bytes.Repeat([]byte("1"), 70000)), "too big mbulk count string"},
		{string(bytes.Repeat([]byte("x"), 70000)), "too big inline request"},
	} {
		_, err := readAllCommands(t, []byte(tc.in), false)
		pe := asProtocolError(err)
		if pe == nil || pe.msg != tc.err {
			t.Errorf("%.20q: got %v, want %s", tc.in, err, tc.err)
		}
	}
	// Exactly at the limits: no error, waits for the payload.
	in := "*1\r\n$" + strconv.Itoa(maxBulkLen) + "\r\n"
	if _, err := readAllCommands(t, []byte(in), false); err != nil {
		t.Errorf("at the bulk limit: %v", err)
	}
}
