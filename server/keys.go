package server

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/georep/georep/crdt"
)

// Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RANDOMKEY,
// RENAME, RENAMENX, COPY, TOUCH, the EXPIRE family, TTL family, PERSIST.
func addKeyCommands(r *registry) {
	r.add(&command{name: "del", arity: -2, flags: flagWrite, run: cmdDel})
	r.add(&command{name: "unlink", arity: -2, flags: flagWrite | flagFast, run: cmdDel})
	r.add(&command{name: "exists", arity: -2, flags: flagRead | flagFast, run: cmdExists})
	r.add(&command{name: "touch", arity: -2, flags: flagRead | flagFast, run: cmdExists})
	r.add(&command{name: "type", arity: 2, flags: flagRead | flagFast, run: cmdType})
	r.add(&command{name: "keys", arity: 2, flags: flagRead, run: cmdKeys})
	r.add(&command{name: "scan", arity: -2, flags: flagRead, run: cmdScan})
	r.add(&command{name: "randomkey", arity: 1, flags: flagRead, run: cmdRandomKey})
	r.add(&command{name: "rename", arity: 3, flags: flagWrite, run: cmdRename})
	r.add(&command{name: "renamenx", arity: 3, flags: flagWrite | flagFast, run: cmdRename})
	r.add(&command{name: "copy", arity: -3, flags: flagWrite | flagDenyOOM, run: cmdCopy})
	for _, name := range []string{"expire", "pexpire", "expireat", "pexpireat"} {
		r.add(&command{name: name, arity: -3, flags: flagWrite | flagFast, run: cmdExpire})
	}
	for _, name := range []string{"ttl", "pttl", "expiretime", "pexpiretime"} {
		r.add(&command{name: name, arity: 2, flags: flagRead | flagFast, run: cmdTTL})
	}
	r.add(&command{name: "persist", arity: 2, flags: flagWrite | flagFast, run: cmdPersist})
}

// maxExpireMs is the largest absolute expiry georep replicates (2^49 ms).
const maxExpireMs = 1 << 49

// visible returns key's state and visible type at v.Now().
func visible(v View, key []byte) (*crdt.Key, crdt.Type, error) {
	k, err := v.Get(key)
	if err != nil {
		return nil, crdt.TypeNone, err
	}
	return k, k.Type(v.Now()), nil
}

// dedupKeys returns keys without repeats, in first-seen order.
func dedupKeys(keys [][]byte) [][]byte {
	seen := make(map[string]bool, len(keys))
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			out = append(out, k)
		}
	}
	return out
}

func cmdDel(cl *call) (Reply, error) {
	keys := cl.args[1:]
	var n int64
	err := cl.update(dedupKeys(keys), func(tx Tx) error {
		for _, key := range keys {
			_, t, err := visible(tx, key)
			if err != nil {
				return err
			}
			if t != crdt.TypeNone {
				emit(tx, key, crdt.Op{Kind: crdt.OpDelete})
				n++
			}
		}
		return nil
	})
	return integer(n), err
}

func cmdExists(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) error {
		for _, key := range cl.args[1:] {
			_, t, err := visible(v, key)
			if err != nil {
				return err
			}
			if t != crdt.TypeNone {
				n++
			}
		}
		return nil
	})
	return integer(n), err
}

func cmdType(cl *call) (Reply, error) {
	var t crdt.Type
	err := cl.view(func(v View) (err error) {
		_, t, err = visible(v, cl.args[1])
		return err
	})
	return simple(t.String()), err
}

func cmdKeys(cl *call) (Reply, error) {
	pat := cl.args[1]
	all := len(pat) == 1 && pat[0] == '*'
	var out []Reply
	err := cl.view(func(v View) error {
		now := v.Now()
		return v.Scan(nil, func(key []byte, k *crdt.Key) bool {
			if k.Type(now) != crdt.TypeNone && (all || stringMatch(pat, key, false)) {
				out = append(out, bulk(bytes.Clone(key)))
			}
			return cl.ctx.Err() == nil
		})
	})
	if err == nil {
		err = cl.ctx.Err()
	}
	return array(out...), err
}

func cmdRandomKey(cl *call) (Reply, error) {
	var key []byte
	err := cl.view(func(v View) (err error) {
		key, err = v.RandomKey()
		return err
	})
	return nullableBulk(bytes.Clone(key), key != nil), err
}

// SCAN cursors: a cursor names the last key a SCAN call visited. The table
// is shared by all connections (clients may continue a scan on another
// pooled connection) and bounded; the oldest cursors are forgotten first.
const maxScanCursors = 1 << 16

type cursorTable struct {
	mu    sync.Mutex
	next  uint64
	keys  map[uint64][]byte
	order []uint64 // ring of issued cursors, oldest at head
	head  int
}

func newCursorTable(size int) *cursorTable {
	return &cursorTable{
		// Start far from 0 and from the previous run's cursors.
		next:  uint64(time.Now().UnixNano()) & (1<<62 - 1),
		keys:  make(map[uint64][]byte, size),
		order: make([]uint64, 0, size),
	}
}

// put records key and returns its new cursor (never 0).
func (t *cursorTable) put(key []byte) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	if t.next == 0 {
		t.next = 1
	}
	id := t.next
	if len(t.order) < cap(t.order) {
		t.order = append(t.order, id)
	} else {
		delete(t.keys, t.order[t.head])
		t.order[t.head] = id
		t.head = (t.head + 1) % len(t.order)
	}
	t.keys[id] = bytes.Clone(key)
	return id
}

func (t *cursorTable) get(id uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.keys[id]
	return k, ok
}

// parseCursor parses a cursor like Redis (strtoull: "-1" wraps around).
func parseCursor(b []byte) (uint64, error) {
	s := string(b)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' {
		return 0, ErrInvalidCursor
	}
	if neg {
		v = -v
	}
	return v, nil
}

func cmdScan(cl *call) (Reply, error) {
	cursor, err := parseCursor(cl.args[1])
	if err != nil {
		return Reply{}, err
	}
	var pat []byte
	count := int64(10)
	typ := ""
	for i := 2; i < len(cl.args); i += 2 {
		if i+1 >= len(cl.args) {
			return Reply{}, ErrSyntax
		}
		val := cl.args[i+1]
		switch strings.ToLower(string(cl.args[i])) {
		case "match":
			pat = val
		case "count":
			n, ok := crdt.ParseInt(val)
			if !ok {
				return Reply{}, ErrNotInteger
			}
			if n < 1 {
				return Reply{}, ErrSyntax
			}
			count = n
		case "type":
			typ = strings.ToLower(string(val))
		default:
			return Reply{}, ErrSyntax
		}
	}
	var after []byte
	if cursor != 0 {
		k, ok := cl.s.cursors.get(cursor)
		if !ok {
			return Reply{}, ErrInvalidCursor
		}
		after = k
	}
	matchAll := pat == nil || (len(pat) == 1 && pat[0] == '*')
	// COUNT visible keys per call (before MATCH and TYPE, like Redis's
	// buckets), and at most maxVisit stored ones, tombstones included.
	maxVisit := count*10 + 100
	var out []Reply
	var last []byte
	var seen, visited int64
	more := false
	err = cl.view(func(v View) error {
		now := v.Now()
		return v.Scan(after, func(key []byte, k *crdt.Key) bool {
			if seen == count || visited == maxVisit {
				more = true
				return false
			}
			visited++
			last = append(last[:0], key...)
			t := k.Type(now)
			if t == crdt.TypeNone {
				return true
			}
			seen++
			if typ != "" && t.String() != typ {
				return true
			}
			if matchAll || stringMatch(pat, key, false) {
				out = append(out, bulk(bytes.Clone(key)))
			}
			return true
		})
	})
	if err != nil {
		return Reply{}, err
	}
	next := uint64(0)
	if more {
		next = cl.s.cursors.put(last)
	}
	return array(bulkString(strconv.FormatUint(next, 10)), array(out...)), nil
}

// renameOps returns the ops that make dst a copy of src's visible value
// and expiry: an observed delete of dst, the value, the expiry.
func (cl *call) copyOps(tx Tx, src *crdt.Key, t crdt.Type, srcKey, dstKey []byte) ([]crdt.Op, error) {
	cp := cl.s.reg.copies[t]
	if cp == nil {
		return nil, ErrWrongType
	}
	ops := []crdt.Op{{Kind: crdt.OpDelete}}
	content, err := cp(tx, src, srcKey, dstKey, tx.Now())
	if err != nil {
		return nil, err
	}
	ops = append(ops, content...)
	at, _ := src.Expiry()
	return append(ops, crdt.Op{Kind: crdt.OpExpire, At: at}), nil
}

func cmdRename(cl *call) (Reply, error) {
	nx := cl.cmd.name == "renamenx"
	src, dst := cl.args[1], cl.args[2]
	reply := replyOK
	err := cl.update(dedupKeys([][]byte{src, dst}), func(tx Tx) error {
		k, t, err := visible(tx, src)
		if err != nil {
			return err
		}
		if t == crdt.TypeNone {
			return ErrNoSuchKey
		}
		if bytes.Equal(src, dst) {
			if nx {
				reply = replyZero
			}
			return nil
		}
		if nx {
			_, dt, err := visible(tx, dst)
			if err != nil {
				return err
			}
			if dt != crdt.TypeNone {
				reply = replyZero
				return nil
			}
			reply = replyOne
		}
		ops, err := cl.copyOps(tx, k, t, src, dst)
		if err != nil {
			return err
		}
		emit(tx, dst, ops...)
		emit(tx, src, crdt.Op{Kind: crdt.OpDelete})
		return nil
	})
	return reply, err
}

func cmdCopy(cl *call) (Reply, error) {
	src, dst := cl.args[1], cl.args[2]
	replace := false
	for i := 3; i < len(cl.args); i++ {
		switch strings.ToLower(string(cl.args[i])) {
		case "replace":
			replace = true
		case "db":
			if i+1 >= len(cl.args) {
				return Reply{}, ErrSyntax
			}
			i++
			db, ok := crdt.ParseInt(cl.args[i])
			if !ok {
				return Reply{}, ErrNotInteger
			}
			if db != 0 {
				return Reply{}, ErrDBIndex
			}
		default:
			return Reply{}, ErrSyntax
		}
	}
	if bytes.Equal(src, dst) {
		return Reply{}, ErrSameObject
	}
	reply := replyZero
	err := cl.update([][]byte{src, dst}, func(tx Tx) error {
		k, t, err := visible(tx, src)
		if err != nil || t == crdt.TypeNone {
			return err
		}
		_, dt, err := visible(tx, dst)
		if err != nil {
			return err
		}
		if dt != crdt.TypeNone && !replace {
			return nil
		}
		ops, err := cl.copyOps(tx, k, t, src, dst)
		if err != nil {
			return err
		}
		emit(tx, dst, ops...)
		reply = replyOne
		return nil
	})
	return reply, err
}

// expireFlags are EXPIRE's NX, XX, GT, LT options.
type expireFlags struct{ nx, xx, gt, lt bool }

func parseExpireFlags(args [][]byte) (expireFlags, error) {
	var f expireFlags
	for _, a := range args {
		switch strings.ToLower(string(a)) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "gt":
			f.gt = true
		case "lt":
			f.lt = true
		default:
			return f, errorf("ERR Unsupported option %s", a)
		}
	}
	if f.nx && (f.xx || f.gt || f.lt) {
		return f, ErrExpireNXAndOther
	}
	if f.gt && f.lt {
		return f, ErrExpireGTAndLT
	}
	return f, nil
}

// allows reports whether the flags allow replacing expiry cur (0: none)
// by at.
func (f expireFlags) allows(cur, at int64) bool {
	switch {
	case f.nx:
		return cur == 0
	case f.xx:
		return cur != 0
	case f.gt:
		return cur != 0 && at > cur
	case f.lt:
		return cur == 0 || at < cur
	}
	return true
}

// expireAt converts a command's time argument n to absolute ms: n times
// unit (1 or 1000), plus base (now for relative commands). It fails like
// Redis on overflow, and beyond georep's 2^49 ms limit.
func expireAt(n, unit, base int64, cmd string) (int64, error) {
	if unit == 1000 && (n > math.MaxInt64/1000 || n < math.MinInt64/1000) {
		return 0, errInvalidExpire(cmd)
	}
	n *= unit
	if base > 0 && n > math.MaxInt64-base {
		return 0, errInvalidExpire(cmd)
	}
	n += base
	if n > maxExpireMs {
		return 0, errInvalidExpire(cmd)
	}
	return n, nil
}

func cmdExpire(cl *call) (Reply, error) {
	name := cl.cmd.name
	flags, err := parseExpireFlags(cl.args[3:])
	if err != nil {
		return Reply{}, err
	}
	n, ok := crdt.ParseInt(cl.args[2])
	if !ok {
		return Reply{}, ErrNotInteger
	}
	unit := int64(1000)
	if strings.HasPrefix(name, "p") {
		unit = 1
	}
	relative := !strings.HasSuffix(name, "at")
	key := cl.args[1]
	reply := replyZero
	err = cl.update([][]byte{key}, func(tx Tx) error {
		now := tx.Now()
		base := int64(0)
		if relative {
			base = now
		}
		at, err := expireAt(n, unit, base, name)
		if err != nil {
			return err
		}
		k, t, err := visible(tx, key)
		if err != nil || t == crdt.TypeNone {
			return err
		}
		cur, _ := k.Expiry()
		if !flags.allows(cur, at) {
			return nil
		}
		if at <= now {
			emit(tx, key, crdt.Op{Kind: crdt.OpDelete})
		} else {
			emit(tx, key, crdt.Op{Kind: crdt.OpExpire, At: at})
		}
		reply = replyOne
		return nil
	})
	return reply, err
}

func cmdTTL(cl *call) (Reply, error) {
	var r int64
	err := cl.view(func(v View) error {
		k, t, err := visible(v, cl.args[1])
		if err != nil {
			return err
		}
		if t == crdt.TypeNone {
			r = -2
			return nil
		}
		at, _ := k.Expiry()
		if at == 0 {
			r = -1
			return nil
		}
		switch cl.cmd.name {
		case "ttl":
			r = (max(at-v.Now(), 0) + 500) / 1000
		case "pttl":
			r = max(at-v.Now(), 0)
		case "expiretime":
			r = at / 1000
		default:
			r = at
		}
		return nil
	})
	return integer(r), err
}

func cmdPersist(cl *call) (Reply, error) {
	key := cl.args[1]
	reply := replyZero
	err := cl.update([][]byte{key}, func(tx Tx) error {
		k, t, err := visible(tx, key)
		if err != nil || t == crdt.TypeNone {
			return err
		}
		if at, _ := k.Expiry(); at != 0 {
			emit(tx, key, crdt.Op{Kind: crdt.OpExpire, At: 0})
			reply = replyOne
		}
		return nil
	})
	return reply, err
}
