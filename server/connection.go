package server

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/georep/georep/crdt"
)

// Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.
func addConnectionCommands(r *registry) {
	r.add(&command{name: "ping", arity: -1, flags: flagFast, run: cmdPing})
	r.add(&command{name: "echo", arity: 2, flags: flagFast, run: cmdEcho})
	r.add(&command{name: "hello", arity: -1, flags: flagNoAuth | flagFast | flagNoScript | flagLoading | flagStale, run: cmdHello})
	r.add(&command{name: "auth", arity: -2, flags: flagNoAuth | flagFast | flagNoScript | flagLoading | flagStale, run: cmdAuth})
	r.add(&command{name: "select", arity: 2, flags: flagFast | flagLoading | flagStale, run: cmdSelect})
	r.add(&command{name: "quit", arity: -1, flags: flagNoAuth | flagFast | flagNoScript | flagLoading | flagStale, run: cmdQuit})
	r.add(&command{name: "reset", arity: 1, flags: flagNoAuth | flagFast | flagNoScript | flagLoading | flagStale, run: cmdReset})

	r.add(&command{name: "client", arity: -2})
	cf := flagNoScript | flagLoading | flagStale
	r.add(&command{name: "client|id", arity: 2, flags: cf, run: cmdClientID})
	r.add(&command{name: "client|setname", arity: 3, flags: cf, run: cmdClientSetName})
	r.add(&command{name: "client|getname", arity: 2, flags: cf, run: cmdClientGetName})
	r.add(&command{name: "client|info", arity: 2, flags: cf, run: cmdClientInfo})
	r.add(&command{name: "client|list", arity: -2, flags: flagAdmin | cf, run: cmdClientList})
	r.add(&command{name: "client|setinfo", arity: 4, flags: cf, run: cmdClientSetInfo,
		acl: []string{"slow", "connection"}, summary: "Sets information specific to the client or connection.", group: "connection"})
}

func cmdPing(cl *call) (Reply, error) {
	switch len(cl.args) {
	case 1:
		return simple("PONG"), nil
	case 2:
		return bulk(cl.args[1]), nil
	}
	return Reply{}, errArity(cl.cmd.name)
}

func cmdEcho(cl *call) (Reply, error) { return bulk(cl.args[1]), nil }

func cmdHello(cl *call) (Reply, error) {
	c := cl.c
	proto := c.proto
	var user, pass, name []byte
	authGiven, nameGiven := false, false
	if len(cl.args) >= 2 {
		v, ok := crdt.ParseInt(cl.args[1])
		if !ok {
			return Reply{}, ErrProtoNotInteger
		}
		if v < 2 || v > 3 {
			return Reply{}, ErrNoProto
		}
		proto = int(v)
		for i := 2; i < len(cl.args); i++ {
			more := len(cl.args) - i - 1
			opt := strings.ToLower(string(cl.args[i]))
			switch {
			case opt == "auth" && more >= 2:
				user, pass, authGiven = cl.args[i+1], cl.args[i+2], true
				i += 2
			case opt == "setname" && more >= 1:
				name, nameGiven = cl.args[i+1], true
				i++
			default:
				return Reply{}, errorf("ERR Syntax error in HELLO option '%s'", cl.args[i])
			}
		}
	}
	if !c.authed && !authGiven {
		return Reply{}, ErrHelloNoAuth
	}
	if authGiven {
		if err := c.authenticate(user, pass); err != nil {
			return Reply{}, err
		}
	}
	if nameGiven {
		if err := validName(name); err != nil {
			return Reply{}, err
		}
		c.mu.Lock()
		c.name = string(name)
		c.mu.Unlock()
	}
	c.setProto(proto)
	return mapReply(
		bulkString("server"), bulkString("redis"),
		bulkString("version"), bulkString(Version),
		bulkString("proto"), integer(int64(proto)),
		bulkString("id"), integer(c.id),
		bulkString("mode"), bulkString("standalone"),
		bulkString("role"), bulkString("master"),
		bulkString("modules"), array(),
	), nil
}

// authenticate checks user and password against Config.RequirePass. The
// only user is "default"; without a password it accepts any password.
func (c *conn) authenticate(user, pass []byte) error {
	if string(user) != "default" {
		return ErrWrongPass
	}
	want := c.s.cfg.RequirePass
	if want != "" && subtle.ConstantTimeCompare(pass, []byte(want)) != 1 {
		return ErrWrongPass
	}
	c.authed = true
	return nil
}

func cmdAuth(cl *call) (Reply, error) {
	switch len(cl.args) {
	case 2:
		if cl.s.cfg.RequirePass == "" {
			return Reply{}, ErrNoPassword
		}
		if err := cl.c.authenticate([]byte("default"), cl.args[1]); err != nil {
			return Reply{}, err
		}
	case 3:
		if err := cl.c.authenticate(cl.args[1], cl.args[2]); err != nil {
			return Reply{}, err
		}
	default:
		return Reply{}, ErrSyntax
	}
	return replyOK, nil
}

func cmdSelect(cl *call) (Reply, error) {
	v, ok := crdt.ParseInt(cl.args[1])
	if !ok {
		return Reply{}, ErrNotInteger
	}
	if v != 0 {
		return Reply{}, ErrDBIndex
	}
	return replyOK, nil
}

func cmdQuit(cl *call) (Reply, error) {
	cl.quit = true
	return replyOK, nil
}

func cmdReset(cl *call) (Reply, error) {
	c := cl.c
	c.setProto(2)
	c.authed = cl.s.cfg.RequirePass == ""
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	return simple("RESET"), nil
}

func cmdClientID(cl *call) (Reply, error) { return integer(cl.c.id), nil }

// validName checks a client name like Redis: printable ASCII, no spaces.
func validName(b []byte) error {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return ErrBadClientName
		}
	}
	return nil
}

func cmdClientSetName(cl *call) (Reply, error) {
	if err := validName(cl.args[2]); err != nil {
		return Reply{}, err
	}
	cl.c.mu.Lock()
	cl.c.name = string(cl.args[2])
	cl.c.mu.Unlock()
	return replyOK, nil
}

func cmdClientGetName(cl *call) (Reply, error) {
	cl.c.mu.Lock()
	name := cl.c.name
	cl.c.mu.Unlock()
	if name == "" {
		return replyNull, nil
	}
	return bulkString(name), nil
}

func cmdClientSetInfo(cl *call) (Reply, error) {
	attr := strings.ToLower(string(cl.args[2]))
	if attr != "lib-name" && attr != "lib-ver" {
		return Reply{}, errorf("ERR Unrecognized option '%s'", cl.args[2])
	}
	for _, ch := range cl.args[3] {
		if ch < '!' || ch > '~' {
			return Reply{}, errorf("ERR %s cannot contain spaces, newlines or special characters.", cl.args[2])
		}
	}
	cl.c.mu.Lock()
	if attr == "lib-name" {
		cl.c.libName = string(cl.args[3])
	} else {
		cl.c.libVer = string(cl.args[3])
	}
	cl.c.mu.Unlock()
	return replyOK, nil
}

// clientLine formats c like Redis's CLIENT LIST line (fields we do not
// track have Redis's idle values).
func (c *conn) clientLine(cur string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := c.lastCmd
	if cur != "" {
		cmd = cur
	}
	now := time.Now()
	flags := "N"
	if c.blocked {
		flags = "b"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, c.id+7, c.name, int64(now.Sub(c.created)/time.Second), int64(now.Sub(c.active)/time.Second),
		flags, cmd, c.resp, c.libName, c.libVer)
}

func cmdClientInfo(cl *call) (Reply, error) {
	return verbatim("txt", cl.c.clientLine(cl.cmd.name)), nil
}

func cmdClientList(cl *call) (Reply, error) {
	var filter map[int64]bool
	for i := 2; i < len(cl.args); i++ {
		opt := strings.ToLower(string(cl.args[i]))
		switch {
		case opt == "type" && i+1 < len(cl.args):
			t := strings.ToLower(string(cl.args[i+1]))
			if t != "normal" && t != "master" && t != "replica" && t != "pubsub" {
				return Reply{}, errorf("ERR Unknown client type '%s'", cl.args[i+1])
			}
			if t != "normal" {
				filter = map[int64]bool{}
			}
			i++
		case opt == "id" && i+1 < len(cl.args):
			if filter == nil {
				filter = map[int64]bool{}
			}
			for i++; i < len(cl.args); i++ {
				id, ok := crdt.ParseInt(cl.args[i])
				if !ok || id <= 0 {
					return Reply{}, errorf("ERR Invalid client ID")
				}
				filter[id] = true
			}
		default:
			return Reply{}, ErrSyntax
		}
	}
	var b strings.Builder
	for _, c := range cl.s.clients() {
		if filter != nil && !filter[c.id] {
			continue
		}
		cur := ""
		if c == cl.c {
			cur = cl.cmd.name
		}
		b.WriteString(c.clientLine(cur))
	}
	return verbatim("txt", b.String()), nil
}
