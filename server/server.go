package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Log field names.
const (
	fieldComponent = "component"
	fieldCommand   = "command"
	fieldRemote    = "remote"
	fieldAddr      = "addr"
)

// Config configures a Server. The zero value of each field means its
// default.
type Config struct {
	// Addr is the TCP address to listen on. Default 127.0.0.1:6379. Port 0
	// picks a free port; Server.Addr reports the bound address.
	Addr string `help:"RESP listen address." default:"127.0.0.1:6379" env:"ADDR"`
	// RequirePass, when set, requires clients to authenticate (AUTH, or
	// HELLO with AUTH) as user "default" with this password.
	RequirePass string `help:"Password clients must AUTH with (empty: none)." name:"requirepass" env:"REQUIREPASS"`
	// WriteTimeout bounds every blocking wait of a command: store locks,
	// write acknowledgements, reads, and writing replies to the socket.
	// Default 5s.
	WriteTimeout time.Duration `help:"Deadline for a command's waits and reply writes (at least the node's --write-timeout)." default:"5s" name:"command-timeout" env:"COMMAND_TIMEOUT"`
	// MaxClients bounds concurrent client connections; more are refused
	// with "ERR max number of clients reached". Default 10000.
	MaxClients int `help:"Maximum number of client connections." default:"10000" name:"maxclients" env:"MAXCLIENTS"`
}

// Defaults.
const (
	DefaultAddr         = "127.0.0.1:6379"
	DefaultWriteTimeout = 5 * time.Second
	DefaultMaxClients   = 10000
)

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	return cfg
}

// Validate reports whether cfg (after defaults) is usable.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("server: addr %q: %w", cfg.Addr, err)
	}
	if cfg.WriteTimeout < 0 {
		return fmt.Errorf("server: write timeout %v is negative", cfg.WriteTimeout)
	}
	if cfg.MaxClients < 0 {
		return fmt.Errorf("server: max clients %d is negative", cfg.MaxClients)
	}
	return nil
}

// Version is the Redis version the server reports (HELLO, INFO).
const Version = "7.2.0"

// Server is the RESP front end of a node. Create it with New, then call
// Run (optionally Listen first to learn the address).
type Server struct {
	cfg     Config
	log     zerolog.Logger
	store   Store
	op      Operator
	reg     *registry
	errs    errorLog
	cursors *cursorTable
	blk     *blockers
	started time.Time

	listenOnce sync.Once
	listenErr  error
	ln         net.Listener
	ready      chan struct{}

	mu    sync.Mutex
	conns map[int64]*conn

	nextID       atomic.Int64
	totalConns   atomic.Int64
	totalCmds    atomic.Int64
	rejectedConn atomic.Int64
}

// New returns a server for store and op. It starts nothing.
func New(cfg Config, log zerolog.Logger, store Store, op Operator) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With().Str(fieldComponent, "server").Logger()
	s := &Server{
		cfg:     cfg.withDefaults(),
		log:     log,
		store:   store,
		op:      op,
		reg:     newRegistry(),
		errs:    errorLog{log: log},
		cursors: newCursorTable(maxScanCursors),
		blk:     newBlockers(),
		ready:   make(chan struct{}),
		conns:   make(map[int64]*conn),
	}
	return s, nil
}

// Listen binds the listener (Run calls it if needed). After it returns nil,
// Addr reports the bound address and Ready is closed.
func (s *Server) Listen() error {
	s.listenOnce.Do(func() {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			s.listenErr = fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
			return
		}
		s.ln = ln
		s.started = time.Now()
		close(s.ready)
	})
	return s.listenErr
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the bound address once listening, else the configured one.
func (s *Server) Addr() string {
	select {
	case <-s.ready:
		return s.ln.Addr().String()
	default:
		return s.cfg.Addr
	}
}

// Run serves connections until ctx ends, then closes the listener and
// every connection and returns after all its goroutines have exited.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	s.log.Info().Str(fieldAddr, s.ln.Addr().String()).Msg("listening")

	s.store.WatchLists(s.blk.signal)
	defer s.blk.close() // after every connection has gone
	var wg sync.WaitGroup
	defer wg.Wait()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait and retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Dur("retry", backoff).Msg("accept")
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		backoff = 0
		c := s.newConn(nc)
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serve(ctx)
		}()
	}
}

// newConn registers a connection, or refuses it when MaxClients are
// connected (nil).
func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	full := len(s.conns) >= s.cfg.MaxClients
	var c *conn
	if !full {
		c = newConn(s, nc, s.nextID.Add(1))
		s.conns[c.id] = c
	}
	s.mu.Unlock()
	if full {
		s.rejectedConn.Add(1)
		_ = nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		_, _ = nc.Write(appendReply(nil, s.errorReply("", ErrMaxClients), 2))
		_ = nc.Close()
		return nil
	}
	s.totalConns.Add(1)
	return c
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// clients returns the connected clients ordered by id.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
