package server

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/georep/georep/crdt"
	"github.com/rs/zerolog"
)

// cmdFlag says how the dispatcher treats a command.
type cmdFlag uint16

const (
	// flagWrite: the command writes through Store.Update; its reply waits
	// for the Ack. Shown as "write" by COMMAND INFO.
	flagWrite cmdFlag = 1 << iota
	// flagRead: the command reads the keyspace; it first waits for this
	// connection's outstanding writes (read-your-writes).
	flagRead
	// flagNoAuth: allowed before AUTH.
	flagNoAuth
	// flagFast, flagAdmin, flagDenyOOM, flagLoading, flagStale,
	// flagNoScript: shown by COMMAND INFO only.
	flagFast
	flagAdmin
	flagDenyOOM
	flagLoading
	flagStale
	flagNoScript
	// flagWait: not a read, but waits for outstanding writes (FLUSHALL,
	// INFO keyspace).
	flagWait
)

var flagNames = []struct {
	f    cmdFlag
	name string
}{
	{flagWrite, "write"}, {flagRead, "readonly"}, {flagDenyOOM, "denyoom"}, {flagAdmin, "admin"},
	{flagNoScript, "noscript"}, {flagLoading, "loading"}, {flagStale, "stale"}, {flagFast, "fast"},
	{flagNoAuth, "no_auth"},
}

// handler runs one command. Its error becomes the reply through
// errorReply.
type handler func(cl *call) (Reply, error)

// command is one entry of the command table. Subcommand containers
// (CLIENT, COMMAND, CONFIG, GEOREP) have subs and no run.
type command struct {
	name  string // lower case; subcommands as "client|id"
	arity int    // Redis arity: n exact, -n at least n (including the name)
	flags cmdFlag
	run   handler
	subs  map[string]*command

	// For COMMAND INFO/DOCS: from the embedded Redis specs when present,
	// else built from the fields above and these.
	acl      []string // ACL categories without '@'
	keys     [3]int   // first key, last key, step
	summary  string
	group    string
	info     Reply
	docs     Reply
	hasSpecs bool
}

// copyFunc returns the ops that recreate src's visible value (of the type
// it is registered for) on another key, for RENAME and COPY. They follow
// an OpDelete of the destination in the same event; the expiry is added
// by the caller. Each data type registers one.
type copyFunc func(tx Tx, src *crdt.Key, srcKey, dstKey []byte, now int64) ([]crdt.Op, error)

// registry is the command table and the per-type hooks. It is built once in
// New and read-only afterwards.
type registry struct {
	cmds   map[string]*command
	copies map[crdt.Type]copyFunc
}

func newRegistry() *registry {
	r := &registry{cmds: make(map[string]*command), copies: make(map[crdt.Type]copyFunc)}
	addConnectionCommands(r)
	addServerCommands(r)
	addGeorepCommands(r)
	addKeyCommands(r)
	addStringCommands(r)
	addHashCommands(r)
	addSetCommands(r)
	addZSetCommands(r)
	addListCommands(r)
	addBlockingCommands(r)
	addGeoCommands(r)
	r.loadSpecs()
	return r
}

// add registers a command or, for names "parent|sub", a subcommand (the
// parent must be added first).
func (r *registry) add(c *command) {
	if parent, sub, ok := strings.Cut(c.name, "|"); ok {
		p := r.cmds[parent]
		if p == nil {
			panic("server: subcommand " + c.name + " before its parent")
		}
		if p.subs == nil {
			p.subs = make(map[string]*command)
		}
		p.subs[sub] = c
		return
	}
	if _, dup := r.cmds[c.name]; dup {
		panic("server: command " + c.name + " registered twice")
	}
	r.cmds[c.name] = c
}

// lookup finds the command for args (the name, and the subcommand for
// containers) and checks its arity.
func (r *registry) lookup(args [][]byte) (*command, error) {
	c := findLower(r.cmds, args[0])
	if c == nil {
		return nil, errUnknownCommand(args)
	}
	if !arityOK(c.arity, len(args)) {
		return nil, errArity(c.name)
	}
	if c.subs != nil && (len(args) > 1 || c.run == nil) {
		sc := findLower(c.subs, args[1])
		if sc == nil {
			return nil, errUnknownSubcommand(string(args[1]), c.name)
		}
		if !arityOK(sc.arity, len(args)) {
			return nil, errArity(sc.name)
		}
		c = sc
	}
	return c, nil
}

func arityOK(arity, n int) bool {
	if arity >= 0 {
		return n == arity
	}
	return n >= -arity
}

// findLower returns m's entry for name lower-cased, without allocating for
// ASCII names of up to 32 bytes.
func findLower(m map[string]*command, name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return m[string(bytes.ToLower(name))]
	}
	for i, c := range name {
		switch {
		case c >= 0x80:
			return m[string(bytes.ToLower(name))]
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return m[string(buf[:len(name)])]
}

// call is one command being run on a connection. It lives on the
// connection's reader goroutine.
type call struct {
	ctx  context.Context // bounded by Config.WriteTimeout; its deadline bounds the Ack
	base context.Context // the server's: for waits the client bounds itself
	c    *conn
	s    *Server
	cmd  *command
	args [][]byte
	ack  Ack  // set by update
	quit bool // close the connection after the reply
}

// view runs fn against a snapshot of the keyspace.
func (cl *call) view(fn func(v View) error) error {
	return cl.s.store.View(cl.ctx, fn)
}

// update runs fn in Store.Update over keys; the reply waits for the Ack.
// A panic in fn becomes an error, so the store can abort cleanly.
func (cl *call) update(keys [][]byte, fn func(tx Tx) error) error {
	owned := make([][]byte, len(keys))
	for i, k := range keys {
		owned[i] = bytes.Clone(k)
	}
	ack, err := cl.s.store.Update(cl.ctx, owned, func(tx Tx) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = cl.s.panicked(cl.cmd.name, p)
			}
		}()
		return fn(tx)
	})
	if err != nil {
		return err
	}
	cl.ack = ack
	return nil
}

// emit appends one event to key with copies of the key and of op values,
// since the store keeps them after the command.
func emit(tx Tx, key []byte, ops ...crdt.Op) {
	for i := range ops {
		if ops[i].Value != nil {
			ops[i].Value = bytes.Clone(ops[i].Value)
		}
		if ops[i].Elem != nil {
			ops[i].Elem = bytes.Clone(ops[i].Elem)
		}
	}
	tx.Emit(bytes.Clone(key), ops...)
}

// run executes cl's handler, turning a panic into ERR internal error.
func (cl *call) run() (r Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = cl.s.panicked(cl.cmd.name, p)
		}
	}()
	return cl.cmd.run(cl)
}

// panicked logs a recovered handler panic (once per distinct value) and
// returns the error whose reply is "ERR internal error".
func (s *Server) panicked(cmd string, p any) error {
	msg := fmt.Sprint(p)
	stack := debug.Stack()
	s.errs.once("panic "+cmd+": "+msg, func(l zerolog.Logger) {
		l.Error().Str(fieldCommand, cmd).Str("panic", msg).Bytes("stack", stack).Msg("command handler panicked")
	})
	return ErrInternal
}

// commandSpecs holds Redis 7's COMMAND INFO and COMMAND DOCS entries of the
// commands we implement, as RESP3: for each command an array
// [name, info, docs]. Generated from a real redis-server by
// TestGenerateCommandSpecs (see commands_gen_test.go). The command
// documentation is Redis's (BSD-3-Clause).
//
//go:embed commands.resp
var commandSpecs []byte

// loadSpecs fills info and docs of every command from commandSpecs, or
// builds them from the Go fields for commands Redis does not have.
func (r *registry) loadSpecs() {
	specs := make(map[string][2]Reply)
	rest := commandSpecs
	for len(rest) > 0 {
		v, n, err := parseReply(rest)
		if err != nil {
			panic("server: commands.resp: " + err.Error())
		}
		rest = rest[n:]
		specs[string(v.elems[0].bulk)] = [2]Reply{v.elems[1], v.elems[2]}
	}
	var fill func(c *command)
	fill = func(c *command) {
		for _, sc := range c.subs {
			fill(sc)
		}
		sp, ok := specs[c.name]
		if !ok {
			c.info, c.docs = c.builtInfo(), c.builtDocs()
			return
		}
		c.info, c.docs, c.hasSpecs = sp[0], sp[1], true
		if c.subs == nil {
			return
		}
		// Only the subcommands we implement, with their own entries.
		c.info.elems = append([]Reply(nil), c.info.elems...)
		c.info.elems[9] = array(c.subInfos()...)
		c.docs.elems = append([]Reply(nil), c.docs.elems...)
		for i := 0; i+1 < len(c.docs.elems); i += 2 {
			if string(c.docs.elems[i].bulk) == "subcommands" {
				c.docs.elems[i+1] = c.subDocs()
			}
		}
	}
	for _, c := range r.cmds {
		fill(c)
	}
}

// builtInfo is the COMMAND INFO entry of a command without Redis specs.
func (c *command) builtInfo() Reply {
	var flags []Reply
	for _, fn := range flagNames {
		if c.flags&fn.f != 0 {
			flags = append(flags, simple(fn.name))
		}
	}
	var acl []Reply
	for _, a := range c.acl {
		acl = append(acl, simple("@"+a))
	}
	return array(
		bulkString(c.name), integer(int64(c.arity)), setReply(flags...),
		integer(int64(c.keys[0])), integer(int64(c.keys[1])), integer(int64(c.keys[2])),
		setReply(acl...), setReply(), array(), array(c.subInfos()...),
	)
}

func (c *command) subInfos() []Reply {
	var out []Reply
	for _, name := range sortedKeys(c.subs) {
		out = append(out, c.subs[name].info)
	}
	return out
}

func (c *command) builtDocs() Reply {
	kv := []Reply{
		bulkString("summary"), bulkString(c.summary),
		bulkString("since"), bulkString("1.0.0"),
		bulkString("group"), bulkString(c.group),
		bulkString("complexity"), bulkString("O(1)"),
	}
	if c.subs != nil {
		kv = append(kv, bulkString("subcommands"), c.subDocs())
	}
	return mapReply(kv...)
}

func (c *command) subDocs() Reply {
	var subs []Reply
	for _, name := range sortedKeys(c.subs) {
		subs = append(subs, bulkString(c.subs[name].name), c.subs[name].docs)
	}
	return mapReply(subs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
