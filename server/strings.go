package server

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/georep/georep/crdt"
	"github.com/rs/zerolog"
)

// String and counter commands.
func addStringCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "get", arity: 2, flags: flagRead | flagFast, run: cmdGet})
	r.add(&command{name: "set", arity: -3, flags: w, run: cmdSet})
	r.add(&command{name: "setnx", arity: 3, flags: w | flagFast, run: cmdSetNX})
	r.add(&command{name: "setex", arity: 4, flags: w, run: cmdSetEx})
	r.add(&command{name: "psetex", arity: 4, flags: w, run: cmdSetEx})
	r.add(&command{name: "getset", arity: 3, flags: w | flagFast, run: cmdGetSet})
	r.add(&command{name: "getdel", arity: 2, flags: flagWrite | flagFast, run: cmdGetDel})
	r.add(&command{name: "getex", arity: -2, flags: flagWrite | flagFast, run: cmdGetEx})
	r.add(&command{name: "mget", arity: -2, flags: flagRead | flagFast, run: cmdMGet})
	r.add(&command{name: "mset", arity: -3, flags: w, run: cmdMSet})
	r.add(&command{name: "msetnx", arity: -3, flags: w, run: cmdMSet})
	r.add(&command{name: "append", arity: 3, flags: w | flagFast, run: cmdAppend})
	r.add(&command{name: "strlen", arity: 2, flags: flagRead | flagFast, run: cmdStrlen})
	r.add(&command{name: "getrange", arity: 4, flags: flagRead, run: cmdGetRange})
	r.add(&command{name: "setrange", arity: 4, flags: w, run: cmdSetRange})
	r.add(&command{name: "incr", arity: 2, flags: w | flagFast, run: cmdIncr})
	r.add(&command{name: "decr", arity: 2, flags: w | flagFast, run: cmdIncr})
	r.add(&command{name: "incrby", arity: 3, flags: w | flagFast, run: cmdIncr})
	r.add(&command{name: "decrby", arity: 3, flags: w | flagFast, run: cmdIncr})
	r.add(&command{name: "incrbyfloat", arity: 3, flags: w | flagFast, run: cmdIncrByFloat})

	r.copies[crdt.TypeString] = copyString
}

// copyString is RENAME/COPY's content of a string: its visible value.
func copyString(_ Tx, src *crdt.Key, _, _ []byte, now int64) ([]crdt.Op, error) {
	v, _ := src.String(now)
	return []crdt.Op{{Kind: crdt.OpSet, Value: v}}, nil
}

// getString returns key's visible string value; ok is false when the key
// does not exist; a key of another type is ErrWrongType.
func getString(v View, key []byte) (val []byte, ok bool, err error) {
	k, t, err := visible(v, key)
	switch {
	case err != nil:
		return nil, false, err
	case t == crdt.TypeNone:
		return nil, false, nil
	case t != crdt.TypeString:
		return nil, false, ErrWrongType
	}
	val, ok = k.String(v.Now())
	return val, ok, nil
}

func cmdGet(cl *call) (Reply, error) {
	var r Reply
	err := cl.view(func(v View) error {
		val, ok, err := getString(v, cl.args[1])
		r = nullableBulk(bytes.Clone(val), ok)
		return err
	})
	return r, err
}

// expiry is a parsed expiry option of SET or GETEX: n in unit ms, relative
// to now or absolute.
type expiry struct {
	set      bool
	n        int64
	unit     int64
	relative bool
}

// parseExpiryOption handles EX, PX, EXAT, PXAT at args[i]; it reports
// whether args[i] was one (consuming args[i+1]).
func parseExpiryOption(opt string, e *expiry) bool {
	switch opt {
	case "ex":
		*e = expiry{set: true, unit: 1000, relative: true}
	case "px":
		*e = expiry{set: true, unit: 1, relative: true}
	case "exat":
		*e = expiry{set: true, unit: 1000}
	case "pxat":
		*e = expiry{set: true, unit: 1}
	default:
		return false
	}
	return true
}

// at returns the absolute expiry in ms, validating like Redis (the value
// must be positive) plus georep's 2^49 ms limit.
func (e expiry) at(now int64, cmd string) (int64, error) {
	if e.n <= 0 {
		return 0, errInvalidExpire(cmd)
	}
	base := int64(0)
	if e.relative {
		base = now
	}
	return expireAt(e.n, e.unit, base, cmd)
}

func cmdSet(cl *call) (Reply, error) {
	key, val := cl.args[1], cl.args[2]
	var nx, xx, get, keepTTL bool
	var exp expiry
	var expArg []byte
	for i := 3; i < len(cl.args); i++ {
		opt := strings.ToLower(string(cl.args[i]))
		switch {
		case opt == "nx" && !xx:
			nx = true
		case opt == "xx" && !nx:
			xx = true
		case opt == "get":
			get = true
		case opt == "keepttl" && !exp.set:
			keepTTL = true
		case !exp.set && !keepTTL && i+1 < len(cl.args) && parseExpiryOption(opt, &exp):
			i++
			expArg = cl.args[i]
		default:
			return Reply{}, ErrSyntax
		}
	}
	if exp.set {
		n, ok := crdt.ParseInt(expArg)
		if !ok {
			return Reply{}, ErrNotInteger
		}
		exp.n = n
	}
	reply := replyOK
	err := cl.update([][]byte{key}, func(tx Tx) error {
		at := int64(0)
		if exp.set {
			var err error
			if at, err = exp.at(tx.Now(), "set"); err != nil {
				return err
			}
		}
		var exists bool
		if get {
			old, ok, err := getString(tx, key)
			if err != nil {
				return err
			}
			exists, reply = ok, nullableBulk(bytes.Clone(old), ok)
		} else if nx || xx {
			_, t, err := visible(tx, key)
			if err != nil {
				return err
			}
			exists = t != crdt.TypeNone
		}
		if (nx && exists) || (xx && !exists) {
			if !get {
				reply = replyNull
			}
			return nil
		}
		ops := []crdt.Op{{Kind: crdt.OpSet, Value: val}}
		if !keepTTL {
			ops = append(ops, crdt.Op{Kind: crdt.OpExpire, At: at})
		}
		emit(tx, key, ops...)
		return nil
	})
	return reply, err
}

func cmdSetNX(cl *call) (Reply, error) {
	key := cl.args[1]
	reply := replyZero
	err := cl.update([][]byte{key}, func(tx Tx) error {
		_, t, err := visible(tx, key)
		if err != nil || t != crdt.TypeNone {
			return err
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpSet, Value: cl.args[2]}, crdt.Op{Kind: crdt.OpExpire})
		reply = replyOne
		return nil
	})
	return reply, err
}

func cmdSetEx(cl *call) (Reply, error) {
	key := cl.args[1]
	n, ok := crdt.ParseInt(cl.args[2])
	if !ok {
		return Reply{}, ErrNotInteger
	}
	exp := expiry{set: true, n: n, unit: 1000, relative: true}
	if cl.cmd.name == "psetex" {
		exp.unit = 1
	}
	err := cl.update([][]byte{key}, func(tx Tx) error {
		at, err := exp.at(tx.Now(), cl.cmd.name)
		if err != nil {
			return err
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpSet, Value: cl.args[3]}, crdt.Op{Kind: crdt.OpExpire, At: at})
		return nil
	})
	return replyOK, err
}

func cmdGetSet(cl *call) (Reply, error) {
	key := cl.args[1]
	var reply Reply
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, ok, err := getString(tx, key)
		if err != nil {
			return err
		}
		reply = nullableBulk(bytes.Clone(old), ok)
		emit(tx, key, crdt.Op{Kind: crdt.OpSet, Value: cl.args[2]}, crdt.Op{Kind: crdt.OpExpire})
		return nil
	})
	return reply, err
}

func cmdGetDel(cl *call) (Reply, error) {
	key := cl.args[1]
	reply := replyNull
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, ok, err := getString(tx, key)
		if err != nil || !ok {
			return err
		}
		reply = bulk(bytes.Clone(old))
		emit(tx, key, crdt.Op{Kind: crdt.OpDelete})
		return nil
	})
	return reply, err
}

func cmdGetEx(cl *call) (Reply, error) {
	key := cl.args[1]
	var exp expiry
	persist := false
	for i := 2; i < len(cl.args); i++ {
		opt := strings.ToLower(string(cl.args[i]))
		switch {
		case opt == "persist" && !exp.set && !persist:
			persist = true
		case !exp.set && !persist && i+1 < len(cl.args) && parseExpiryOption(opt, &exp):
			i++
			n, ok := crdt.ParseInt(cl.args[i])
			if !ok {
				return Reply{}, ErrNotInteger
			}
			exp.n = n
		default:
			return Reply{}, ErrSyntax
		}
	}
	reply := replyNull
	err := cl.update([][]byte{key}, func(tx Tx) error {
		now := tx.Now()
		at := int64(0)
		if exp.set {
			var err error
			if at, err = exp.at(now, "getex"); err != nil {
				return err
			}
		}
		k, t, err := visible(tx, key)
		if err != nil || t == crdt.TypeNone {
			return err
		}
		if t != crdt.TypeString {
			return ErrWrongType
		}
		old, _ := k.String(now)
		reply = bulk(bytes.Clone(old))
		cur, _ := k.Expiry()
		switch {
		case exp.set && at <= now:
			emit(tx, key, crdt.Op{Kind: crdt.OpDelete})
		case exp.set:
			emit(tx, key, crdt.Op{Kind: crdt.OpExpire, At: at})
		case persist && cur != 0:
			emit(tx, key, crdt.Op{Kind: crdt.OpExpire})
		}
		return nil
	})
	return reply, err
}

func cmdMGet(cl *call) (Reply, error) {
	out := make([]Reply, len(cl.args)-1)
	err := cl.view(func(v View) error {
		for i, key := range cl.args[1:] {
			val, ok, err := getString(v, key)
			if err == ErrWrongType {
				ok, err = false, nil
			}
			if err != nil {
				return err
			}
			out[i] = nullableBulk(bytes.Clone(val), ok)
		}
		return nil
	})
	return array(out...), err
}

func cmdMSet(cl *call) (Reply, error) {
	if len(cl.args)%2 != 1 {
		return Reply{}, errArity(cl.cmd.name)
	}
	nx := cl.cmd.name == "msetnx"
	keys := make([][]byte, 0, len(cl.args)/2)
	for i := 1; i < len(cl.args); i += 2 {
		keys = append(keys, cl.args[i])
	}
	reply := replyOK
	if nx {
		reply = replyZero
	}
	err := cl.update(dedupKeys(keys), func(tx Tx) error {
		if nx {
			for _, key := range keys {
				_, t, err := visible(tx, key)
				if err != nil || t != crdt.TypeNone {
					return err
				}
			}
			reply = replyOne
		}
		for i := 1; i < len(cl.args); i += 2 {
			emit(tx, cl.args[i], crdt.Op{Kind: crdt.OpSet, Value: cl.args[i+1]}, crdt.Op{Kind: crdt.OpExpire})
		}
		return nil
	})
	return reply, err
}

func cmdAppend(cl *call) (Reply, error) {
	key := cl.args[1]
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, _, err := getString(tx, key)
		if err != nil {
			return err
		}
		if len(old)+len(cl.args[2]) > maxBulkLen {
			return ErrTooLarge
		}
		val := make([]byte, 0, len(old)+len(cl.args[2]))
		val = append(append(val, old...), cl.args[2]...)
		emit(tx, key, crdt.Op{Kind: crdt.OpSet, Value: val})
		n = int64(len(val))
		return nil
	})
	return integer(n), err
}

func cmdStrlen(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) error {
		val, _, err := getString(v, cl.args[1])
		n = int64(len(val))
		return err
	})
	return integer(n), err
}

func cmdGetRange(cl *call) (Reply, error) {
	start, ok1 := crdt.ParseInt(cl.args[2])
	end, ok2 := crdt.ParseInt(cl.args[3])
	if !ok1 || !ok2 {
		return Reply{}, ErrNotInteger
	}
	var r Reply
	err := cl.view(func(v View) error {
		val, _, err := getString(v, cl.args[1])
		if err != nil {
			return err
		}
		r = bulk(bytes.Clone(getRange(val, start, end)))
		return nil
	})
	return r, err
}

// getRange is Redis 7's GETRANGE index arithmetic.
func getRange(val []byte, start, end int64) []byte {
	n := int64(len(val))
	if start < 0 && end < 0 && start > end {
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return nil
	}
	return val[start : end+1]
}

func cmdSetRange(cl *call) (Reply, error) {
	key, part := cl.args[1], cl.args[3]
	off, ok := crdt.ParseInt(cl.args[2])
	if !ok {
		return Reply{}, ErrNotInteger
	}
	if off < 0 {
		return Reply{}, ErrOffsetRange
	}
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, _, err := getString(tx, key)
		if err != nil {
			return err
		}
		n = int64(len(old))
		if len(part) == 0 {
			return nil
		}
		if off+int64(len(part)) > maxBulkLen {
			return ErrTooLarge
		}
		size := max(int64(len(old)), off+int64(len(part)))
		val := make([]byte, size)
		copy(val, old)
		copy(val[off:], part)
		emit(tx, key, crdt.Op{Kind: crdt.OpSet, Value: val})
		n = size
		return nil
	})
	return integer(n), err
}

func cmdIncr(cl *call) (Reply, error) {
	key := cl.args[1]
	var d int64
	switch cl.cmd.name {
	case "incr":
		d = 1
	case "decr":
		d = -1
	default:
		v, ok := crdt.ParseInt(cl.args[2])
		if !ok {
			return Reply{}, ErrNotInteger
		}
		if cl.cmd.name == "decrby" {
			if v == math.MinInt64 {
				return Reply{}, ErrDecrOverflow
			}
			v = -v
		}
		d = v
	}
	if d < crdt.CounterMin || d > crdt.CounterMax {
		return Reply{}, ErrOverflow
	}
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, exists, err := getString(tx, key)
		if err != nil {
			return err
		}
		cur := int64(0)
		if exists {
			if cur, exists = crdt.ParseInt(old); !exists {
				return ErrNotInteger
			}
		}
		if (d < 0 && cur < 0 && d < math.MinInt64-cur) || (d > 0 && cur > 0 && d > math.MaxInt64-cur) {
			return ErrOverflow
		}
		n = cur + d
		if n < crdt.CounterMin || n > crdt.CounterMax {
			return ErrOverflow
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpIncr, Int: d})
		// The reply must be what the key now shows; a difference is a
		// broken invariant of the store or crdt, and cancels the write.
		after, _, err := getString(tx, key)
		if err != nil {
			return err
		}
		if got, ok := crdt.ParseInt(after); !ok || got != n {
			return fmt.Errorf("server: %s %q: key shows %q after the increment, want %d", cl.cmd.name, key, after, n)
		}
		return nil
	})
	return integer(n), err
}

func cmdIncrByFloat(cl *call) (Reply, error) {
	key := cl.args[1]
	incr, ok := crdt.ParseFloat(cl.args[2])
	if !ok {
		if isInf(cl.args[2]) {
			return Reply{}, ErrNaN
		}
		return Reply{}, ErrNotFloat
	}
	var reply []byte
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, exists, err := getString(tx, key)
		if err != nil {
			return err
		}
		var cur crdt.Float
		if exists {
			if cur, ok = crdt.ParseFloat(old); !ok {
				if isInf(old) {
					return ErrNaN
				}
				return ErrNotFloat
			}
		}
		sum := crdt.AddFloat(cur, incr)
		if crdt.FloatOverflows(sum) {
			return ErrNaN
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpIncrFloat, Float: incr})
		after, _, err := getString(tx, key)
		if err != nil {
			return err
		}
		reply = bytes.Clone(after)
		if want := crdt.FormatFloat(sum); string(after) != want {
			// Rounding of merged shares may differ in the last digit from
			// old+incr; the key's value is the truth clients will read.
			cl.s.errs.once("incrbyfloat-mismatch", func(l zerolog.Logger) {
				l.Warn().Str("shows", string(after)).Str("computed", want).Msg("incrbyfloat reply differs from old+incr")
			})
		}
		return nil
	})
	return bulk(reply), err
}

// isInf reports whether b is an infinity as strtold reads it ("inf",
// "-Infinity", ...), which Redis parses and then refuses as a result.
func isInf(b []byte) bool {
	s := strings.ToLower(string(b))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	return s == "inf" || s == "infinity"
}
