package server

import (
	"bytes"
	"math"
	"strings"

	"github.com/georep/georep/crdt"
)

// Hash commands. A hash is an observed-remove set of fields, each field an
// LWW register (HSET) or a counter (HINCRBY, HINCRBYFLOAT): see
// aa-semantics.md, Hashes.
func addHashCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "hset", arity: -4, flags: w | flagFast, run: cmdHSet})
	r.add(&command{name: "hmset", arity: -4, flags: w | flagFast, run: cmdHSet})
	r.add(&command{name: "hsetnx", arity: 4, flags: w | flagFast, run: cmdHSetNX})
	r.add(&command{name: "hget", arity: 3, flags: flagRead | flagFast, run: cmdHGet})
	r.add(&command{name: "hmget", arity: -3, flags: flagRead | flagFast, run: cmdHMGet})
	r.add(&command{name: "hgetall", arity: 2, flags: flagRead, run: cmdHGetAll})
	r.add(&command{name: "hkeys", arity: 2, flags: flagRead, run: cmdHGetAll})
	r.add(&command{name: "hvals", arity: 2, flags: flagRead, run: cmdHGetAll})
	r.add(&command{name: "hdel", arity: -3, flags: flagWrite | flagFast, run: cmdHDel})
	r.add(&command{name: "hexists", arity: 3, flags: flagRead | flagFast, run: cmdHExists})
	r.add(&command{name: "hlen", arity: 2, flags: flagRead | flagFast, run: cmdHLen})
	r.add(&command{name: "hstrlen", arity: 3, flags: flagRead | flagFast, run: cmdHStrlen})
	r.add(&command{name: "hincrby", arity: 4, flags: w | flagFast, run: cmdHIncrBy})
	r.add(&command{name: "hincrbyfloat", arity: 4, flags: w | flagFast, run: cmdHIncrByFloat})
	r.add(&command{name: "hrandfield", arity: -2, flags: flagRead, run: cmdHRandField})
	r.add(&command{name: "hscan", arity: -3, flags: flagRead, run: cmdHScan})

	r.copies[crdt.TypeHash] = copyHash
}

// maxElemOps bounds the element ops of one event: each becomes a few
// entries of one Badger transaction where it is applied.
const maxElemOps = 8192

// copyHash is RENAME/COPY's content of a hash: every field's visible
// value, as registers.
func copyHash(tx Tx, src *crdt.Key, srcKey, _ []byte, _ int64) ([]crdt.Op, error) {
	var ops []crdt.Op
	err := tx.ScanElems(srcKey, crdt.TypeHash, nil, func(f []byte, c *crdt.Cell) bool {
		v, _ := c.Value()
		ops = append(ops, crdt.Op{Kind: crdt.OpHSet, Elem: f, Value: bytes.Clone(v)})
		return len(ops) <= maxElemOps
	})
	if len(ops) > maxElemOps {
		return nil, ErrTooManyElems
	}
	return ops, err
}

// hashField returns a field's visible value (ok false when the field or
// the key does not exist).
func hashField(v View, key, field []byte) (val []byte, ok bool, err error) {
	_, exists, err := collection(v, key, crdt.TypeHash)
	if err != nil || !exists {
		return nil, false, err
	}
	c, err := v.Elem(key, crdt.TypeHash, field)
	if err != nil || c == nil {
		return nil, false, err
	}
	val, ok = c.Value()
	return val, ok, nil
}

func cmdHSet(cl *call) (Reply, error) {
	if len(cl.args)%2 != 0 {
		return Reply{}, errArity(cl.cmd.name)
	}
	key := cl.args[1]
	// The last value of a field given twice wins, as in Redis.
	last := make(map[string]int, len(cl.args)/2)
	for i := 2; i < len(cl.args); i += 2 {
		last[string(cl.args[i])] = i
	}
	if len(last) > maxElemOps {
		return Reply{}, ErrTooManyElems
	}
	var added int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		if _, _, err := collection(tx, key, crdt.TypeHash); err != nil {
			return err
		}
		ops := make([]crdt.Op, 0, len(last))
		for i := 2; i < len(cl.args); i += 2 {
			f := cl.args[i]
			if last[string(f)] != i {
				continue
			}
			c, err := tx.Elem(key, crdt.TypeHash, f)
			if err != nil {
				return err
			}
			if c == nil {
				added++
			}
			ops = append(ops, crdt.Op{Kind: crdt.OpHSet, Elem: f, Value: cl.args[i+1]})
		}
		emit(tx, key, ops...)
		return nil
	})
	if cl.cmd.name == "hmset" {
		return replyOK, err
	}
	return integer(added), err
}

func cmdHSetNX(cl *call) (Reply, error) {
	key, f := cl.args[1], cl.args[2]
	reply := replyZero
	err := cl.update([][]byte{key}, func(tx Tx) error {
		_, ok, err := hashField(tx, key, f)
		if err != nil || ok {
			return err
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpHSet, Elem: f, Value: cl.args[3]})
		reply = replyOne
		return nil
	})
	return reply, err
}

func cmdHGet(cl *call) (Reply, error) {
	var r Reply
	err := cl.view(func(v View) error {
		val, ok, err := hashField(v, cl.args[1], cl.args[2])
		r = nullableBulk(bytes.Clone(val), ok)
		return err
	})
	return r, err
}

func cmdHMGet(cl *call) (Reply, error) {
	key := cl.args[1]
	out := make([]Reply, 0, len(cl.args)-2)
	err := cl.view(func(v View) error {
		if _, _, err := collection(v, key, crdt.TypeHash); err != nil {
			return err
		}
		for _, f := range cl.args[2:] {
			val, ok, err := hashField(v, key, f)
			if err != nil {
				return err
			}
			out = append(out, nullableBulk(bytes.Clone(val), ok))
		}
		return nil
	})
	return array(out...), err
}

// cmdHGetAll is HGETALL, HKEYS and HVALS.
func cmdHGetAll(cl *call) (Reply, error) {
	key := cl.args[1]
	var out []Reply
	err := cl.view(func(v View) error {
		if _, ok, err := collection(v, key, crdt.TypeHash); err != nil || !ok {
			return err
		}
		return v.ScanElems(key, crdt.TypeHash, nil, func(f []byte, c *crdt.Cell) bool {
			val, _ := c.Value()
			switch cl.cmd.name {
			case "hkeys":
				out = append(out, bulk(f))
			case "hvals":
				out = append(out, bulk(bytes.Clone(val)))
			default:
				out = append(out, bulk(f), bulk(bytes.Clone(val)))
			}
			return true
		})
	})
	if cl.cmd.name == "hgetall" {
		return mapReply(out...), err
	}
	return array(out...), err
}

func cmdHDel(cl *call) (Reply, error) {
	return cmdRemoveElems(cl, crdt.TypeHash, crdt.OpHDel, func(v View, key, f []byte) (bool, error) {
		c, err := v.Elem(key, crdt.TypeHash, f)
		return c != nil, err
	})
}

func cmdHExists(cl *call) (Reply, error) {
	var ok bool
	err := cl.view(func(v View) (err error) {
		_, ok, err = hashField(v, cl.args[1], cl.args[2])
		return err
	})
	if ok {
		return replyOne, err
	}
	return replyZero, err
}

func cmdHLen(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) (err error) {
		n, err = collLen(v, cl.args[1], crdt.TypeHash)
		return err
	})
	return integer(n), err
}

func cmdHStrlen(cl *call) (Reply, error) {
	var n int
	err := cl.view(func(v View) error {
		val, _, err := hashField(v, cl.args[1], cl.args[2])
		n = len(val)
		return err
	})
	return integer(int64(n)), err
}

func cmdHIncrBy(cl *call) (Reply, error) {
	key, f := cl.args[1], cl.args[2]
	d, ok := crdt.ParseInt(cl.args[3])
	if !ok {
		return Reply{}, ErrNotInteger
	}
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, exists, err := hashField(tx, key, f)
		if err != nil {
			return err
		}
		cur := int64(0)
		if exists {
			if cur, ok = crdt.ParseInt(old); !ok {
				return ErrHashNotInteger
			}
		}
		if (d < 0 && cur < 0 && d < math.MinInt64-cur) || (d > 0 && cur > 0 && d > math.MaxInt64-cur) {
			return ErrOverflow
		}
		n = cur + d
		if n < crdt.CounterMin || n > crdt.CounterMax || d < crdt.CounterMin || d > crdt.CounterMax {
			return ErrOverflow
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpHIncr, Elem: f, Int: d})
		return nil
	})
	return integer(n), err
}

func cmdHIncrByFloat(cl *call) (Reply, error) {
	key, f := cl.args[1], cl.args[2]
	incr, ok := crdt.ParseFloat(cl.args[3])
	if !ok {
		if isInf(cl.args[3]) {
			return Reply{}, ErrIncrNaN
		}
		return Reply{}, ErrNotFloat
	}
	var reply []byte
	err := cl.update([][]byte{key}, func(tx Tx) error {
		old, exists, err := hashField(tx, key, f)
		if err != nil {
			return err
		}
		var cur crdt.Float
		if exists {
			if cur, ok = crdt.ParseFloat(old); !ok {
				return ErrHashNotFloat
			}
		}
		if crdt.FloatOverflows(crdt.AddFloat(cur, incr)) {
			return ErrNaN
		}
		emit(tx, key, crdt.Op{Kind: crdt.OpHIncrFloat, Elem: f, Float: incr})
		val, _, err := hashField(tx, key, f)
		reply = bytes.Clone(val)
		return err
	})
	return bulk(reply), err
}

func cmdHRandField(cl *call) (Reply, error) {
	return cmdRandPick(cl, crdt.TypeHash, "withvalues", func(c *crdt.Cell) Reply {
		val, _ := c.Value()
		return bulk(bytes.Clone(val))
	})
}

// parseRandCount parses HRANDFIELD/ZRANDMEMBER's count [WITHVALUES |
// WITHSCORES].
func parseRandCount(args [][]byte, withName string) (count int64, with bool, err error) {
	count, ok := crdt.ParseInt(args[0])
	if !ok {
		return 0, false, ErrNotInteger
	}
	switch {
	case len(args) == 2 && strings.EqualFold(string(args[1]), withName):
		with = true
	case len(args) > 1:
		return 0, false, ErrSyntax
	}
	if count == math.MinInt64 {
		return 0, false, ErrRandCount
	}
	if with && (count > math.MaxInt64/2 || count < -math.MaxInt64/2) {
		return 0, false, ErrValueRange
	}
	return count, with, nil
}

// pairReply is one (element, value) pair of a random pick or a range with
// scores: a two-element array, which RESP2 flattens into the outer array.
func pairReply(a, b Reply) Reply { return Reply{kind: kindPair, elems: []Reply{a, b}} }

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func cmdHScan(cl *call) (Reply, error) {
	return cmdElemScan(cl, crdt.TypeHash, func(f []byte, c *crdt.Cell) []Reply {
		val, _ := c.Value()
		return []Reply{bulk(f), bulk(bytes.Clone(val))}
	}, nil)
}
