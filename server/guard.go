package server

import (
	"bytes"
	"fmt"
	"io"

	"github.com/georep/georep/crdt"
)

// Protocol limits, as in Redis (proto-max-bulk-len 512mb; inline and
// header lines at most 64 KB). The multibulk count is bounded lower than
// Redis's INT_MAX, so a header alone cannot make us allocate much.
const (
	maxBulkLen      = 512 << 20
	maxMultibulkLen = 1 << 20
	maxInlineLen    = 64 << 10
)

// guard sits between the connection and the redcon reader. It follows the
// RESP framing byte by byte and fails with a protocolError as soon as a
// header announces more than the limits allow (before redcon buffers the
// payload), or an inline request grows too long. It passes the bytes of the
// requests before the bad header through first, so they still run. Empty
// and negative multibulk headers (*0, *-1), which Redis ignores, are dropped.
//
// Header lines are held back until complete so that they can be checked
// and dropped whole; payloads and inline requests stream through.
type guard struct {
	r     io.Reader
	in    []byte
	out   []byte // checked bytes; out[pos:] not yet returned
	pos   int
	err   error // sticky error, returned once out is drained
	state int
	hdr   []byte // the header line being read
	nargs int    // bulk strings left in the current multibulk request
	body  int    // payload bytes left in the current bulk string (+ CRLF)
	line  int    // bytes of the current inline request so far
}

const (
	gStart = iota // at a request boundary
	gMultiHeader
	gBulkHeader
	gBulkBody
	gInline
)

func newGuard(r io.Reader) *guard { return &guard{r: r, in: make([]byte, 16<<10)} }

// Read implements io.Reader.
func (g *guard) Read(p []byte) (int, error) {
	for {
		if g.pos < len(g.out) {
			n := copy(p, g.out[g.pos:])
			g.pos += n
			return n, nil
		}
		g.out, g.pos = g.out[:0], 0
		if g.err != nil {
			return 0, g.err
		}
		n, err := g.r.Read(g.in)
		if n > 0 {
			g.feed(g.in[:n])
		}
		if err != nil && g.err == nil {
			g.err = err
		}
	}
}

func (g *guard) fail(format string, args ...any) {
	g.err = &protocolError{msg: fmt.Sprintf(format, args...)}
}

// feed checks b and appends what may pass to g.out.
func (g *guard) feed(b []byte) {
	for len(b) > 0 && g.err == nil {
		switch g.state {
		case gStart:
			if b[0] == '*' {
				g.state = gMultiHeader
			} else {
				g.state, g.line = gInline, 0
			}
		case gInline:
			i := bytes.IndexByte(b, '\n')
			n, lineLen := len(b), g.line+len(b)
			if i >= 0 {
				n, lineLen = i+1, g.line+i
			}
			if lineLen > maxInlineLen {
				g.fail("too big inline request")
				return
			}
			g.out = append(g.out, b[:n]...)
			g.line += n
			b = b[n:]
			if i >= 0 {
				g.state = gStart
			}
		case gMultiHeader, gBulkHeader:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				g.hdr = append(g.hdr, b...)
				b = nil
				if len(g.hdr) > maxInlineLen {
					if g.state == gMultiHeader {
						g.fail("too big mbulk count string")
					} else {
						g.fail("too big bulk count string")
					}
				} else if g.state == gBulkHeader && g.hdr[0] != '$' {
					g.fail("expected '$', got '%c'", g.hdr[0])
				}
				continue
			}
			g.hdr = append(g.hdr, b[:i+1]...)
			b = b[i+1:]
			g.header()
			g.hdr = g.hdr[:0]
		case gBulkBody:
			n := min(len(b), g.body)
			g.out = append(g.out, b[:n]...)
			b = b[n:]
			g.body -= n
			if g.body == 0 {
				g.nargs--
				if g.nargs == 0 {
					g.state = gStart
				} else {
					g.state = gBulkHeader
				}
			}
		}
	}
}

// header checks the complete header line in g.hdr (ending in '\n').
func (g *guard) header() {
	h := g.hdr
	var num []byte
	okLine := len(h) >= 3 && h[len(h)-2] == '\r'
	if okLine {
		num = h[1 : len(h)-2]
	}
	n, ok := crdt.ParseInt(num)
	if g.state == gMultiHeader {
		if !okLine || !ok || n > maxMultibulkLen {
			g.fail("invalid multibulk length")
			return
		}
		if n <= 0 {
			g.state = gStart // Redis ignores empty requests
			return
		}
		g.out = append(g.out, h...)
		g.nargs, g.state = int(n), gBulkHeader
		return
	}
	if h[0] != '$' {
		g.fail("expected '$', got '%c'", h[0])
		return
	}
	if !okLine || !ok || n < 0 || n > maxBulkLen {
		g.fail("invalid bulk length")
		return
	}
	g.out = append(g.out, h...)
	g.body, g.state = int(n)+2, gBulkBody
}
