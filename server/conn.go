package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"
)

// Pipeline depth per connection: how many replies (and unacknowledged
// writes) may be queued before the reader stops reading.
const (
	maxQueuedReplies = 1024
	flushThreshold   = 64 << 10
)

// conn is one client connection. Three goroutines serve it:
//
//   - the reader (serve) parses requests and runs the commands in order.
//     A write returns as soon as Store.Update has enqueued its effects; its
//     reply is queued with the Ack. A read first waits until this
//     connection's queued Acks have resolved (read-your-writes).
//   - the acker waits for each queued Ack in order and records its result.
//   - the writer encodes replies in command order, waiting for each one's
//     Ack. It flushes before it waits for an Ack, and when the reader is
//     about to block with nothing queued after it (flushMarker): before a
//     socket read, so a pipeline's replies go out in one write, and before
//     a command that may block.
//
// The fields under "reader" are owned by the reader goroutine; mu guards
// what CLIENT LIST reads from other connections.
type conn struct {
	s       *Server
	nc      net.Conn
	id      int64
	created time.Time
	addr    string
	laddr   string

	replies chan *pending
	acks    chan *pending

	// reader
	proto     int
	authed    bool
	lastWrite *pending // latest reply waiting for an Ack
	stash     []byte   // bytes read by watchClose, before the socket's
	stashErr  error    // the read error watchClose met

	mu      sync.Mutex
	name    string
	libName string
	libVer  string
	lastCmd string
	active  time.Time
	resp    int
	blocked bool // in a blocking command (CLIENT LIST flag b)
}

// pending is one queued reply.
type pending struct {
	reply Reply
	proto int
	cmd   string
	quit  bool // close the connection after writing it

	ack      Ack           // nil: reply is ready
	deadline time.Time     // for ack
	done     chan struct{} // closed by the acker once err is set
	err      error
}

func newConn(s *Server, nc net.Conn, id int64) *conn {
	now := time.Now()
	return &conn{
		s:       s,
		nc:      nc,
		id:      id,
		created: now,
		active:  now,
		addr:    nc.RemoteAddr().String(),
		laddr:   nc.LocalAddr().String(),
		replies: make(chan *pending, maxQueuedReplies),
		acks:    make(chan *pending, maxQueuedReplies),
		proto:   2,
		resp:    2,
		authed:  s.cfg.RequirePass == "",
	}
}

// serve runs the connection until the client leaves, a protocol error, or
// ctx ends.
func (c *conn) serve(ctx context.Context) {
	defer c.s.removeConn(c)
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.ackLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	c.readLoop(ctx)
	close(c.acks)
	close(c.replies)
	wg.Wait()
	c.nc.Close()
}

func (c *conn) readLoop(ctx context.Context) {
	rd := redcon.NewReader(newGuard(socketReader{c}))
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			if perr := asProtocolError(err); perr != nil {
				c.queue(&pending{reply: c.s.errorReply("", perr), proto: c.proto, quit: true})
			}
			return
		}
		if len(cmd.Args) == 0 {
			continue
		}
		if !c.execute(ctx, cmd.Args) {
			return
		}
	}
}

// socketReader reads the client's socket for the reader goroutine. Every
// request received before a read has run, so it lets the writer flush.
type socketReader struct{ c *conn }

func (r socketReader) Read(b []byte) (int, error) {
	c := r.c
	if len(c.stash) > 0 {
		n := copy(b, c.stash)
		c.stash = c.stash[n:]
		if len(c.stash) == 0 {
			c.stash = nil
		}
		return n, nil
	}
	if c.stashErr != nil {
		return 0, c.stashErr
	}
	c.replies <- flushMarker
	return c.nc.Read(b)
}

// maxStash bounds what watchClose reads ahead (pipelined commands behind a
// blocking one); beyond it, it stops watching.
const maxStash = 4 << 20

// watchClose reads the socket while the reader goroutine waits in a
// blocking command, so that a client that leaves is noticed at once (as
// Redis does). gone is closed when the socket fails or the client closed
// it; what arrives meanwhile (pipelined commands) is kept for the reader.
// stop ends the watch and must be called before the reader reads again.
func (c *conn) watchClose() (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	if c.stashErr != nil {
		close(ch) // the socket failed during an earlier watch
		return ch, func() {}
	}
	done := make(chan struct{})
	var stopping sync.Mutex // held by stop: a read error is then not the client's
	stopped := false
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for len(c.stash) < maxStash {
			n, err := c.nc.Read(buf)
			c.stash = append(c.stash, buf[:n]...)
			if err != nil {
				stopping.Lock()
				ours := stopped
				stopping.Unlock()
				if !ours {
					c.stashErr = err
					close(ch)
				}
				return
			}
		}
	}()
	return ch, func() {
		stopping.Lock()
		stopped = true
		stopping.Unlock()
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// setBlocked records for CLIENT LIST whether c waits in a blocking
// command.
func (c *conn) setBlocked(b bool) {
	c.mu.Lock()
	c.blocked = b
	c.mu.Unlock()
}

// flushMarker in the reply queue tells the writer that the reader may block
// from here on: flush unless more replies are queued behind it (the reader
// moved on, and queues another marker before it blocks again).
var flushMarker = &pending{}

// mayBlock reports whether running cmd may keep the reader waiting (a
// write on a partition locked by a Kafka transaction, GEOREP SYNC, ...), so
// replies queued before it should go out first. Plain reads are served from
// local state at once.
func mayBlock(cmd *command) bool {
	return cmd.flags&flagRead == 0 || cmd.flags&(flagAdmin|flagWait) != 0
}

// asProtocolError returns err as a protocol error: ours (from the guard)
// or redcon's, which is unexported and recognized by its text.
func asProtocolError(err error) *protocolError {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	if msg, ok := strings.CutPrefix(err.Error(), "Protocol error: "); ok {
		return &protocolError{msg: msg}
	}
	return nil
}

// execute runs one command and queues its reply. It returns false when
// the connection must stop reading (QUIT, shutdown).
func (c *conn) execute(ctx context.Context, args [][]byte) bool {
	c.s.totalCmds.Add(1)
	p := &pending{}
	cl, err := c.prepare(ctx, args)
	if err == nil {
		start := time.Now()
		cctx := newCmdContext(ctx, start.Add(c.s.cfg.WriteTimeout))
		cl.ctx, cl.base = cctx, ctx
		if mayBlock(cl.cmd) {
			c.replies <- flushMarker
		}
		p.reply, err = cl.run()
		cctx.end()
		p.cmd = cl.cmd.name
		p.quit = cl.quit
		if err == nil && cl.ack != nil {
			// cl.ctx, not cctx: a served blocking command's write ran
			// under the context of its attempt.
			p.ack, p.done = cl.ack, make(chan struct{})
			p.deadline, _ = cl.ctx.Deadline()
		}
	}
	if err != nil {
		p.reply = c.s.errorReply(p.cmd, err)
	}
	p.proto = c.proto
	c.queue(p)
	return !p.quit && ctx.Err() == nil
}

// prepare finds the command, checks arity and authentication, and waits
// for outstanding writes before a read.
func (c *conn) prepare(ctx context.Context, args [][]byte) (*call, error) {
	cmd, err := c.s.reg.lookup(args)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.lastCmd, c.active = cmd.name, time.Now()
	c.mu.Unlock()
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		return nil, ErrNoAuth
	}
	if cmd.flags&(flagRead|flagWait) != 0 {
		if err := c.waitWrites(ctx); err != nil {
			return nil, err
		}
	}
	return &call{c: c, s: c.s, cmd: cmd, args: args}, nil
}

// waitWrites waits until every write this connection has queued is
// acknowledged (or failed).
func (c *conn) waitWrites(ctx context.Context) error {
	p := c.lastWrite
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
	default:
		t := time.NewTimer(c.s.cfg.WriteTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			return ErrTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.lastWrite = nil
	return nil
}

// queue hands p to the writer (and to the acker when it waits for an Ack).
func (c *conn) queue(p *pending) {
	if p.ack != nil {
		c.acks <- p
		c.lastWrite = p
	}
	c.replies <- p
}

// ackLoop resolves queued Acks in order, each under its deadline.
func (c *conn) ackLoop(ctx context.Context) {
	for p := range c.acks {
		actx := newCmdContext(ctx, p.deadline)
		err := p.ack.Wait(actx)
		if err != nil && actx.Err() != nil && errors.Is(err, actx.Err()) {
			if ctx.Err() != nil {
				err = ErrShutdown
			} else {
				err = ErrAckTimeout
			}
		}
		actx.end()
		p.err = err
		close(p.done)
	}
}

// writeLoop writes replies in order. After a write error or a quit it keeps
// draining the queue (so the reader never blocks) without writing.
func (c *conn) writeLoop() {
	buf := make([]byte, 0, 4096)
	broken := false
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if !broken {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if _, err := c.nc.Write(buf); err != nil {
				broken = true
				c.nc.Close() // unblocks the reader
			}
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 4096)
		}
		buf = buf[:0]
	}
	for p := range c.replies {
		if p == flushMarker {
			if len(c.replies) == 0 {
				flush()
			}
			continue
		}
		if p.done != nil {
			select {
			case <-p.done:
			default:
				flush()
				<-p.done
			}
		}
		if !broken {
			r := p.reply
			if p.err != nil {
				r = c.s.errorReply(p.cmd, p.err)
			}
			buf = appendReply(buf, r, p.proto)
		}
		if p.quit {
			flush()
			broken = true
			c.nc.Close()
			continue
		}
		if len(buf) >= flushThreshold {
			flush()
		}
	}
	flush()
}

// setResp records the protocol version for CLIENT LIST.
func (c *conn) setProto(v int) {
	c.proto = v
	c.mu.Lock()
	c.resp = v
	c.mu.Unlock()
}
