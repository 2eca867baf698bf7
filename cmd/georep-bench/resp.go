package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// client is a minimal pipelining RESP2 client: commands are appended to a
// buffered writer and sent by flush; replies are read in order by one
// reader. It is not safe for concurrent use except that one goroutine may
// write (append/flush) while another reads.
type client struct {
	nc net.Conn
	w  *bufio.Writer
	r  *bufio.Reader
}

func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &client{nc: nc, w: bufio.NewWriterSize(nc, 64<<10), r: bufio.NewReaderSize(nc, 64<<10)}, nil
}

func (c *client) Close() error { return c.nc.Close() }

// append encodes one command.
func (c *client) append(args ...[]byte) {
	c.w.WriteByte('*')
	c.w.WriteString(strconv.Itoa(len(args)))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.w.WriteByte('$')
		c.w.WriteString(strconv.Itoa(len(a)))
		c.w.WriteString("\r\n")
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
}

func (c *client) flush() error { return c.w.Flush() }

// reply is one decoded reply. Arrays hold their elements; a nil bulk
// string has null set.
type reply struct {
	kind  byte // '+', '-', ':', '$', '*'
	str   []byte
	num   int64
	null  bool
	elems []reply
}

// errServer is a RESP error reply.
type errServer struct{ msg string }

func (e *errServer) Error() string { return e.msg }

// read reads one reply. Bulk strings are copied.
func (c *client) read() (reply, error) {
	line, err := c.line()
	if err != nil {
		return reply{}, err
	}
	if len(line) == 0 {
		return reply{}, errors.New("resp: empty line")
	}
	r := reply{kind: line[0]}
	body := line[1:]
	switch line[0] {
	case '+', '-':
		r.str = append([]byte(nil), body...)
	case ':':
		r.num, err = strconv.ParseInt(string(body), 10, 64)
	case '$':
		n, perr := strconv.Atoi(string(body))
		if perr != nil {
			return r, fmt.Errorf("resp: bulk length %q", body)
		}
		if n < 0 {
			r.null = true
			return r, nil
		}
		r.str = make([]byte, n+2)
		if _, err = io.ReadFull(c.r, r.str); err != nil {
			return r, err
		}
		r.str = r.str[:n]
	case '*':
		n, perr := strconv.Atoi(string(body))
		if perr != nil {
			return r, fmt.Errorf("resp: array length %q", body)
		}
		if n < 0 {
			r.null = true
			return r, nil
		}
		r.elems = make([]reply, n)
		for i := range r.elems {
			if r.elems[i], err = c.read(); err != nil {
				return r, err
			}
		}
	default:
		return r, fmt.Errorf("resp: unexpected reply type %q", line[0])
	}
	return r, err
}

// line reads one CRLF-terminated line without the CRLF. The slice is only
// valid until the next read.
func (c *client) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("resp: bad line %q", line)
	}
	return line[:len(line)-2], nil
}

// do sends one command and reads its reply.
func (c *client) do(args ...string) (reply, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.append(bs...)
	if err := c.flush(); err != nil {
		return reply{}, err
	}
	r, err := c.read()
	if err == nil && r.kind == '-' {
		err = &errServer{msg: string(r.str)}
	}
	return r, err
}
