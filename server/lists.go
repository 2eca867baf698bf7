package server

import (
	"bytes"
	"strings"

	"github.com/georep/georep/crdt"
)

// List commands. A list is a sequence CRDT (crdt/LISTS.md): concurrent
// inserts are all kept, LSET is last-writer-wins on its element, and every
// removal (pops, LREM, LTRIM, LMOVE's source) removes the element
// instances it saw, so two regions may pop the same element concurrently
// and both return it (at-least-once): see aa-semantics.md, Lists. The
// blocking commands are in blocking.go.
func addListCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "lpush", arity: -3, flags: w | flagFast, run: cmdPush})
	r.add(&command{name: "rpush", arity: -3, flags: w | flagFast, run: cmdPush})
	r.add(&command{name: "lpushx", arity: -3, flags: w | flagFast, run: cmdPush})
	r.add(&command{name: "rpushx", arity: -3, flags: w | flagFast, run: cmdPush})
	r.add(&command{name: "linsert", arity: 5, flags: w, run: cmdLInsert})
	r.add(&command{name: "lpop", arity: -2, flags: flagWrite | flagFast, run: cmdPop})
	r.add(&command{name: "rpop", arity: -2, flags: flagWrite | flagFast, run: cmdPop})
	r.add(&command{name: "llen", arity: 2, flags: flagRead | flagFast, run: cmdLLen})
	r.add(&command{name: "lindex", arity: 3, flags: flagRead, run: cmdLIndex})
	r.add(&command{name: "lrange", arity: 4, flags: flagRead, run: cmdLRange})
	r.add(&command{name: "lpos", arity: -3, flags: flagRead, run: cmdLPos})
	r.add(&command{name: "lset", arity: 4, flags: w, run: cmdLSet})
	r.add(&command{name: "lrem", arity: 4, flags: flagWrite, run: cmdLRem})
	r.add(&command{name: "ltrim", arity: 4, flags: flagWrite, run: cmdLTrim})
	r.add(&command{name: "lmove", arity: 5, flags: w, run: cmdLMove})
	r.add(&command{name: "rpoplpush", arity: 3, flags: w, run: cmdLMove})
	r.add(&command{name: "lmpop", arity: -4, flags: flagWrite, run: cmdLMPop})

	r.copies[crdt.TypeList] = copyList
}

// copyList is RENAME/COPY's content of a list: its values pushed in order,
// planned on the destination's list (which the event first deletes).
func copyList(tx Tx, _ *crdt.Key, srcKey, dstKey []byte, _ int64) ([]crdt.Op, error) {
	src, err := tx.List(srcKey)
	if err != nil {
		return nil, err
	}
	if src.Len() > maxElemOps {
		return nil, ErrTooManyElems
	}
	values, err := listValues(src, 0, src.Len(), false)
	if err != nil {
		return nil, err
	}
	dst, err := tx.List(dstKey)
	if err != nil {
		return nil, err
	}
	return dst.AppendPush(nil, false, values...)
}

// listOf opens key's list when key holds one (nil when it does not
// exist), ErrWrongType when it holds another type.
func listOf(v View, key []byte) (*crdt.List, error) {
	_, ok, err := collection(v, key, crdt.TypeList)
	if err != nil || !ok {
		return nil, err
	}
	l, err := v.List(key)
	if err != nil || l.Len() == 0 {
		return nil, err
	}
	return l, nil
}

// listRange calls fn with up to n elements from index i toward the tail
// (the head when reverse); the values are copies.
func listRange(l *crdt.List, i, n int64, reverse bool, fn func(id crdt.ElemID, v []byte)) error {
	if n <= 0 || i < 0 || i >= l.Len() {
		return nil
	}
	seen := int64(0)
	return l.Range(i, reverse, func(id crdt.ElemID, v []byte) bool {
		fn(id, bytes.Clone(v))
		seen++
		return seen < n
	})
}

// listValues returns copies of up to n values from index i on.
func listValues(l *crdt.List, i, n int64, reverse bool) ([][]byte, error) {
	var out [][]byte
	err := listRange(l, i, n, reverse, func(_ crdt.ElemID, v []byte) { out = append(out, v) })
	return out, err
}

// popEnd removes up to count elements from one end of l, key's list
// opened by listOf, and returns them. At most maxElemOps elements are
// popped at once.
func popEnd(tx Tx, key []byte, l *crdt.List, left bool, count int64) ([][]byte, error) {
	start := int64(0)
	if !left {
		start = l.Len() - 1
	}
	var ops []crdt.Op
	var out [][]byte
	err := listRange(l, start, min(count, maxElemOps), !left, func(id crdt.ElemID, v []byte) {
		ops = append(ops, crdt.ListRemOp(id))
		out = append(out, v)
	})
	if err != nil {
		return nil, err
	}
	emit(tx, key, ops...)
	return out, nil
}

// moveEnd pops one element from an end of src and pushes it to an end of
// dst (LMOVE); ok is false when src does not exist. The same key gets one
// event, removal and insert together.
func moveEnd(tx Tx, src, dst []byte, fromLeft, toLeft bool) (value []byte, ok bool, err error) {
	sl, err := listOf(tx, src)
	if err != nil || sl == nil {
		return nil, false, err
	}
	if _, _, err := collection(tx, dst, crdt.TypeList); err != nil {
		return nil, false, err
	}
	i := int64(0)
	if !fromLeft {
		i = sl.Len() - 1
	}
	id, value, _, err := sl.At(i)
	if err != nil {
		return nil, false, err
	}
	value = bytes.Clone(value)
	rem := []crdt.Op{crdt.ListRemOp(id)}
	if bytes.Equal(src, dst) {
		ops, err := sl.AppendPush(rem, toLeft, value)
		if err != nil {
			return nil, false, err
		}
		emit(tx, src, ops...)
		return value, true, nil
	}
	emit(tx, src, rem...)
	dl, err := tx.List(dst)
	if err != nil {
		return nil, false, err
	}
	ops, err := dl.AppendPush(nil, toLeft, value)
	if err != nil {
		return nil, false, err
	}
	emit(tx, dst, ops...)
	return value, true, nil
}

// parseWhere parses LEFT or RIGHT.
func parseWhere(b []byte) (left bool, err error) {
	switch strings.ToLower(string(b)) {
	case "left":
		return true, nil
	case "right":
		return false, nil
	}
	return false, ErrSyntax
}

// parseIndex parses a list index or range bound.
func parseIndex(b []byte) (int64, error) {
	n, ok := crdt.ParseInt(b)
	if !ok {
		return 0, ErrNotInteger
	}
	return n, nil
}

// listAt returns the element at index arg (negative: from the tail), ok
// false when there is none.
func listAt(l *crdt.List, arg []byte) (id crdt.ElemID, value []byte, ok bool, err error) {
	i, err := parseIndex(arg)
	if err != nil {
		return id, nil, false, err
	}
	if i < 0 {
		i += l.Len()
	}
	return l.At(i)
}

// moveEnds parses the ends of LMOVE and BLMOVE (args[3] and args[4]),
// or returns RPOPLPUSH's (right to left) when not named.
func moveEnds(args [][]byte, named bool) (fromLeft, toLeft bool, err error) {
	if !named {
		return false, true, nil
	}
	if fromLeft, err = parseWhere(args[3]); err != nil {
		return false, false, err
	}
	toLeft, err = parseWhere(args[4])
	return fromLeft, toLeft, err
}

// parseNonNegative parses an integer that must not be negative; bad is
// the error for anything else.
func parseNonNegative(b []byte, bad error) (int64, error) {
	n, ok := crdt.ParseInt(b)
	if !ok || n < 0 {
		return 0, bad
	}
	return n, nil
}

// listBounds normalizes a Redis [start, stop] range over n elements (as
// LRANGE and LTRIM do); ok is false when it is empty.
func listBounds(start, stop, n int64) (lo, hi int64, ok bool) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	start = max(start, 0)
	if start > stop || start >= n {
		return 0, 0, false
	}
	return start, min(stop, n-1), true
}

func bulks(vs [][]byte) Reply {
	out := make([]Reply, len(vs))
	for i, v := range vs {
		out[i] = bulk(v)
	}
	return array(out...)
}

// cmdPush is LPUSH, RPUSH, LPUSHX and RPUSHX.
func cmdPush(cl *call) (Reply, error) {
	key, values := cl.args[1], cl.args[2:]
	left := cl.cmd.name[0] == 'l'
	onlyExisting := strings.HasSuffix(cl.cmd.name, "x")
	if len(values) > maxElemOps {
		return Reply{}, ErrTooManyElems
	}
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		_, ok, err := collection(tx, key, crdt.TypeList)
		if err != nil || (onlyExisting && !ok) {
			return err
		}
		l, err := tx.List(key)
		if err != nil {
			return err
		}
		if ok {
			n = l.Len()
		}
		ops, err := l.AppendPush(nil, left, values...)
		if err != nil {
			return err
		}
		n += int64(len(values))
		emit(tx, key, ops...)
		return nil
	})
	return integer(n), err
}

func cmdLInsert(cl *call) (Reply, error) {
	key, pivot, value := cl.args[1], cl.args[3], cl.args[4]
	var after bool
	switch strings.ToLower(string(cl.args[2])) {
	case "after":
		after = true
	case "before":
	default:
		return Reply{}, ErrSyntax
	}
	n := int64(0)
	err := cl.update([][]byte{key}, func(tx Tx) error {
		l, err := listOf(tx, key)
		if err != nil || l == nil {
			return err
		}
		var at crdt.ElemID
		found := false
		err = l.Range(0, false, func(id crdt.ElemID, v []byte) bool {
			found = bytes.Equal(v, pivot)
			at = id
			return !found
		})
		if err != nil {
			return err
		}
		if !found {
			n = -1
			return nil
		}
		ops, err := l.AppendInsertAt(nil, at, after, value)
		if err != nil {
			return err
		}
		n = l.Len() + 1
		emit(tx, key, ops...)
		return nil
	})
	return integer(n), err
}

// cmdPop is LPOP and RPOP: key [count].
func cmdPop(cl *call) (Reply, error) {
	key := cl.args[1]
	withCount := len(cl.args) == 3
	count := int64(1)
	switch {
	case len(cl.args) > 3:
		return Reply{}, errArity(cl.cmd.name)
	case withCount:
		var err error
		if count, err = parseNonNegative(cl.args[2], ErrNotPositive); err != nil {
			return Reply{}, err
		}
	}
	var popped [][]byte
	exists := false
	err := cl.update([][]byte{key}, func(tx Tx) error {
		l, err := listOf(tx, key)
		if err != nil || l == nil || count == 0 {
			exists = l != nil
			return err
		}
		exists = true
		popped, err = popEnd(tx, key, l, cl.cmd.name == "lpop", count)
		return err
	})
	switch {
	case err != nil:
		return Reply{}, err
	case !exists && withCount:
		return replyNullArray, nil
	case !exists:
		return replyNull, nil
	case withCount:
		return bulks(popped), nil
	}
	return bulk(popped[0]), nil
}

func cmdLLen(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) (err error) {
		n, err = collLen(v, cl.args[1], crdt.TypeList)
		return err
	})
	return integer(n), err
}

func cmdLIndex(cl *call) (Reply, error) {
	r := replyNull
	err := cl.view(func(v View) error {
		l, err := listOf(v, cl.args[1])
		if err != nil || l == nil {
			return err
		}
		_, val, ok, err := listAt(l, cl.args[2])
		if ok {
			r = bulk(bytes.Clone(val))
		}
		return err
	})
	return r, err
}

func cmdLRange(cl *call) (Reply, error) {
	start, err := parseIndex(cl.args[2])
	if err != nil {
		return Reply{}, err
	}
	stop, err := parseIndex(cl.args[3])
	if err != nil {
		return Reply{}, err
	}
	var out [][]byte
	err = cl.view(func(v View) error {
		l, err := listOf(v, cl.args[1])
		if err != nil || l == nil {
			return err
		}
		lo, hi, ok := listBounds(start, stop, l.Len())
		if !ok {
			return nil
		}
		out, err = listValues(l, lo, hi-lo+1, false)
		return err
	})
	return bulks(out), err
}

// lposOptions are LPOS's RANK, COUNT (-1: not given) and MAXLEN.
type lposOptions struct{ rank, count, maxLen int64 }

func parseLPos(args [][]byte) (o lposOptions, err error) {
	o = lposOptions{rank: 1, count: -1}
	for j := 0; j < len(args); j++ {
		more := j+1 < len(args)
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "rank" && more:
			j++
			n, ok := crdt.ParseInt(args[j])
			switch {
			case !ok:
				return o, ErrNotInteger
			case n == -1<<63:
				return o, ErrRandCount
			case n == 0:
				return o, ErrRankZero
			}
			o.rank = n
		case opt == "count" && more:
			j++
			if o.count, err = parseNonNegative(args[j], ErrCountNegative); err != nil {
				return o, err
			}
		case opt == "maxlen" && more:
			j++
			if o.maxLen, err = parseNonNegative(args[j], ErrMaxLenNegative); err != nil {
				return o, err
			}
		default:
			return o, ErrSyntax
		}
	}
	return o, nil
}

func cmdLPos(cl *call) (Reply, error) {
	key, elem := cl.args[1], cl.args[2]
	o, err := parseLPos(cl.args[3:])
	if err != nil {
		return Reply{}, err
	}
	reverse := o.rank < 0
	rank := o.rank
	if reverse {
		rank = -rank
	}
	var found []Reply
	err = cl.view(func(v View) error {
		l, err := listOf(v, key)
		if err != nil || l == nil {
			return err
		}
		n := l.Len()
		start := int64(0)
		if reverse {
			start = n - 1
		}
		var i, matches int64
		return l.Range(start, reverse, func(_ crdt.ElemID, val []byte) bool {
			if o.maxLen != 0 && i >= o.maxLen {
				return false
			}
			at := i
			if reverse {
				at = n - 1 - i
			}
			i++
			if !bytes.Equal(val, elem) {
				return true
			}
			matches++
			if matches < rank {
				return true
			}
			found = append(found, integer(at))
			return o.count != -1 && (o.count == 0 || matches-rank+1 < o.count)
		})
	})
	switch {
	case err != nil:
		return Reply{}, err
	case o.count != -1:
		return array(found...), nil
	case len(found) == 0:
		return replyNull, nil
	}
	return found[0], nil
}

func cmdLSet(cl *call) (Reply, error) {
	key, value := cl.args[1], cl.args[3]
	err := cl.update([][]byte{key}, func(tx Tx) error {
		l, err := listOf(tx, key)
		if err != nil {
			return err
		}
		if l == nil {
			return ErrNoSuchKey
		}
		id, _, ok, err := listAt(l, cl.args[2])
		if err != nil {
			return err
		}
		if !ok {
			return ErrIndexRange
		}
		emit(tx, key, crdt.ListSetOp(id, value))
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	return replyOK, nil
}

func cmdLRem(cl *call) (Reply, error) {
	key, elem := cl.args[1], cl.args[3]
	count, err := parseIndex(cl.args[2])
	if err != nil {
		return Reply{}, err
	}
	var n int64
	err = cl.update([][]byte{key}, func(tx Tx) error {
		l, err := listOf(tx, key)
		if err != nil || l == nil {
			return err
		}
		start, reverse, limit := int64(0), false, count
		if count < 0 {
			start, reverse, limit = l.Len()-1, true, -count
		}
		var ops []crdt.Op
		err = l.Range(start, reverse, func(id crdt.ElemID, v []byte) bool {
			if bytes.Equal(v, elem) {
				ops = append(ops, crdt.ListRemOp(id))
			}
			return (limit == 0 || int64(len(ops)) < limit) && len(ops) <= maxElemOps
		})
		if err != nil {
			return err
		}
		if len(ops) > maxElemOps {
			return ErrTooManyElems
		}
		n = int64(len(ops))
		emit(tx, key, ops...)
		return nil
	})
	return integer(n), err
}

func cmdLTrim(cl *call) (Reply, error) {
	key := cl.args[1]
	start, err := parseIndex(cl.args[2])
	if err != nil {
		return Reply{}, err
	}
	stop, err := parseIndex(cl.args[3])
	if err != nil {
		return Reply{}, err
	}
	err = cl.update([][]byte{key}, func(tx Tx) error {
		l, err := listOf(tx, key)
		if err != nil || l == nil {
			return err
		}
		n := l.Len()
		lo, hi, ok := listBounds(start, stop, n)
		if !ok {
			lo, hi = n, n-1 // remove everything
		}
		if lo+(n-1-hi) > maxElemOps {
			return ErrTooManyElems
		}
		var ops []crdt.Op
		rem := func(id crdt.ElemID, _ []byte) { ops = append(ops, crdt.ListRemOp(id)) }
		if err := listRange(l, 0, lo, false, rem); err != nil {
			return err
		}
		if err := listRange(l, n-1, n-1-hi, true, rem); err != nil {
			return err
		}
		emit(tx, key, ops...)
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	return replyOK, nil
}

// cmdLMove is LMOVE and RPOPLPUSH.
func cmdLMove(cl *call) (Reply, error) {
	src, dst := cl.args[1], cl.args[2]
	fromLeft, toLeft, err := moveEnds(cl.args, cl.cmd.name == "lmove")
	if err != nil {
		return Reply{}, err
	}
	var value []byte
	var ok bool
	err = cl.update(dedupKeys([][]byte{src, dst}), func(tx Tx) (err error) {
		value, ok, err = moveEnd(tx, src, dst, fromLeft, toLeft)
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	return nullableBulk(value, ok), nil
}

// mpopArgs are LMPOP's (and BLMPOP's) arguments after the timeout.
type mpopArgs struct {
	keys  [][]byte
	left  bool
	count int64
}

// parseMPop parses numkeys key [key ...] LEFT|RIGHT [COUNT count].
func parseMPop(args [][]byte) (mpopArgs, error) {
	var m mpopArgs
	numKeys, ok := crdt.ParseInt(args[0])
	if !ok || numKeys <= 0 {
		return m, ErrNumKeys
	}
	if numKeys >= int64(len(args)-1) {
		return m, ErrSyntax
	}
	m.keys = args[1 : 1+numKeys]
	rest := args[1+numKeys:]
	var err error
	if m.left, err = parseWhere(rest[0]); err != nil {
		return m, err
	}
	m.count = -1
	for j := 1; j < len(rest); j++ {
		if m.count != -1 || !strings.EqualFold(string(rest[j]), "count") || j+1 >= len(rest) {
			return m, ErrSyntax
		}
		j++
		n, ok := crdt.ParseInt(rest[j])
		if !ok || n <= 0 {
			return m, ErrCountPositive
		}
		m.count = n
	}
	if m.count == -1 {
		m.count = 1
	}
	return m, nil
}

// mpop pops from the first non-empty list of keys; from is nil when every
// key is empty.
func mpop(tx Tx, m mpopArgs) (from []byte, popped [][]byte, err error) {
	for _, key := range m.keys {
		l, err := listOf(tx, key)
		if err != nil {
			return nil, nil, err
		}
		if l == nil {
			continue
		}
		popped, err = popEnd(tx, key, l, m.left, m.count)
		return bytes.Clone(key), popped, err
	}
	return nil, nil, nil
}

// keyValues is the [key, [values...]] reply of LMPOP and BLMPOP.
func keyValues(key []byte, values [][]byte) Reply {
	return array(bulk(key), bulks(values))
}

func cmdLMPop(cl *call) (Reply, error) {
	m, err := parseMPop(cl.args[1:])
	if err != nil {
		return Reply{}, err
	}
	var from []byte
	var popped [][]byte
	err = cl.update(dedupKeys(m.keys), func(tx Tx) (err error) {
		from, popped, err = mpop(tx, m)
		return err
	})
	switch {
	case err != nil:
		return Reply{}, err
	case from == nil:
		return replyNullArray, nil
	}
	return keyValues(from, popped), nil
}
