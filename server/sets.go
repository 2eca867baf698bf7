package server

import (
	"bytes"
	"sort"
	"strings"

	"github.com/georep/georep/crdt"
)

// Set commands. A set is an add-wins observed-remove set: a remove (SREM,
// SPOP, SMOVE, DEL) removes the member versions its region had seen, an
// add (SADD, even of a member already there) is a new version that a
// concurrent remove does not see. See aa-semantics.md, Sets.
func addSetCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "sadd", arity: -3, flags: w | flagFast, run: cmdSAdd})
	r.add(&command{name: "srem", arity: -3, flags: flagWrite | flagFast, run: cmdSRem})
	r.add(&command{name: "smembers", arity: 2, flags: flagRead, run: cmdSMembers})
	r.add(&command{name: "sismember", arity: 3, flags: flagRead | flagFast, run: cmdSIsMember})
	r.add(&command{name: "smismember", arity: -3, flags: flagRead | flagFast, run: cmdSMIsMember})
	r.add(&command{name: "scard", arity: 2, flags: flagRead | flagFast, run: cmdSCard})
	r.add(&command{name: "spop", arity: -2, flags: flagWrite | flagFast, run: cmdSPop})
	r.add(&command{name: "srandmember", arity: -2, flags: flagRead, run: cmdSRandMember})
	r.add(&command{name: "smove", arity: 4, flags: flagWrite | flagFast, run: cmdSMove})
	r.add(&command{name: "sinter", arity: -2, flags: flagRead, run: cmdSetAlgebra})
	r.add(&command{name: "sunion", arity: -2, flags: flagRead, run: cmdSetAlgebra})
	r.add(&command{name: "sdiff", arity: -2, flags: flagRead, run: cmdSetAlgebra})
	r.add(&command{name: "sinterstore", arity: -3, flags: w, run: cmdSetAlgebraStore})
	r.add(&command{name: "sunionstore", arity: -3, flags: w, run: cmdSetAlgebraStore})
	r.add(&command{name: "sdiffstore", arity: -3, flags: w, run: cmdSetAlgebraStore})
	r.add(&command{name: "sintercard", arity: -3, flags: flagRead, run: cmdSInterCard})
	r.add(&command{name: "sscan", arity: -3, flags: flagRead, run: cmdSScan})

	r.copies[crdt.TypeSet] = copySet
}

// copySet is RENAME/COPY's content of a set: an add of every member.
func copySet(tx Tx, _ *crdt.Key, srcKey, _ []byte, _ int64) ([]crdt.Op, error) {
	var ops []crdt.Op
	err := tx.ScanElems(srcKey, crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool {
		ops = append(ops, crdt.Op{Kind: crdt.OpSAdd, Elem: m})
		return len(ops) <= maxElemOps
	})
	if len(ops) > maxElemOps {
		return nil, ErrTooManyElems
	}
	return ops, err
}

// isMember reports whether member is in the set at key (which the caller
// checked is a set or does not exist).
func isMember(v View, key, member []byte) (bool, error) {
	c, err := v.Elem(key, crdt.TypeSet, member)
	return c != nil, err
}

// distinct returns args without repeats, in first-seen order.
func distinct(args [][]byte) [][]byte {
	seen := make(map[string]bool, len(args))
	out := make([][]byte, 0, len(args))
	for _, a := range args {
		if !seen[string(a)] {
			seen[string(a)] = true
			out = append(out, a)
		}
	}
	return out
}

func cmdSAdd(cl *call) (Reply, error) {
	key := cl.args[1]
	members := distinct(cl.args[2:])
	if len(members) > maxElemOps {
		return Reply{}, ErrTooManyElems
	}
	var added int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		if _, _, err := collection(tx, key, crdt.TypeSet); err != nil {
			return err
		}
		ops := make([]crdt.Op, 0, len(members))
		for _, m := range members {
			in, err := isMember(tx, key, m)
			if err != nil {
				return err
			}
			if !in {
				added++
			}
			// Members already there are added again: an add wins over
			// a concurrent remove that did not see it.
			ops = append(ops, crdt.Op{Kind: crdt.OpSAdd, Elem: m})
		}
		emit(tx, key, ops...)
		return nil
	})
	return integer(added), err
}

func cmdSRem(cl *call) (Reply, error) {
	return cmdRemoveElems(cl, crdt.TypeSet, crdt.OpSRem, isMember)
}

func cmdSMembers(cl *call) (Reply, error) {
	key := cl.args[1]
	var out []Reply
	err := cl.view(func(v View) error {
		if _, ok, err := collection(v, key, crdt.TypeSet); err != nil || !ok {
			return err
		}
		return v.ScanElems(key, crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool {
			out = append(out, bulk(m))
			return true
		})
	})
	return setReply(out...), err
}

func cmdSIsMember(cl *call) (Reply, error) {
	var in bool
	err := cl.view(func(v View) error {
		_, ok, err := collection(v, cl.args[1], crdt.TypeSet)
		if err != nil || !ok {
			return err
		}
		in, err = isMember(v, cl.args[1], cl.args[2])
		return err
	})
	if in {
		return replyOne, err
	}
	return replyZero, err
}

func cmdSMIsMember(cl *call) (Reply, error) {
	key := cl.args[1]
	out := make([]Reply, 0, len(cl.args)-2)
	err := cl.view(func(v View) error {
		_, ok, err := collection(v, key, crdt.TypeSet)
		if err != nil {
			return err
		}
		for _, m := range cl.args[2:] {
			in := false
			if ok {
				if in, err = isMember(v, key, m); err != nil {
					return err
				}
			}
			if in {
				out = append(out, replyOne)
			} else {
				out = append(out, replyZero)
			}
		}
		return nil
	})
	return array(out...), err
}

func cmdSCard(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) (err error) {
		n, err = collLen(v, cl.args[1], crdt.TypeSet)
		return err
	})
	return integer(n), err
}

// cmdSPop removes random members: observed removes, so two regions may pop
// the same member concurrently and both return it (at-least-once).
func cmdSPop(cl *call) (Reply, error) {
	key := cl.args[1]
	withCount := len(cl.args) > 2
	count := int64(1)
	switch {
	case len(cl.args) > 3:
		return Reply{}, ErrSyntax
	case withCount:
		n, ok := crdt.ParseInt(cl.args[2])
		if !ok || n < 0 {
			return Reply{}, ErrNotPositive
		}
		count = n
	}
	var popped [][]byte
	err := cl.update([][]byte{key}, func(tx Tx) error {
		k, ok, err := collection(tx, key, crdt.TypeSet)
		if err != nil || !ok || count == 0 {
			return err
		}
		ms, _, err := randomElems(tx, key, crdt.TypeSet, k.Len(crdt.TypeSet), min(count, maxElemOps), true)
		if err != nil {
			return err
		}
		ops := make([]crdt.Op, 0, len(ms))
		for _, m := range ms {
			ops = append(ops, crdt.Op{Kind: crdt.OpSRem, Elem: m})
		}
		popped = ms
		emit(tx, key, ops...)
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	if !withCount {
		if len(popped) == 0 {
			return replyNull, nil
		}
		return bulk(popped[0]), nil
	}
	out := make([]Reply, len(popped))
	for i, m := range popped {
		out[i] = bulk(m)
	}
	return setReply(out...), nil
}

func cmdSRandMember(cl *call) (Reply, error) {
	key := cl.args[1]
	if len(cl.args) > 3 {
		return Reply{}, ErrSyntax
	}
	withCount := len(cl.args) == 3
	count := int64(1)
	if withCount {
		n, ok := crdt.ParseInt(cl.args[2])
		if !ok {
			return Reply{}, ErrNotInteger
		}
		if n == -1<<63 {
			return Reply{}, ErrRandCount
		}
		count = n
	}
	var picked [][]byte
	err := cl.view(func(v View) error {
		k, ok, err := collection(v, key, crdt.TypeSet)
		if err != nil || !ok || count == 0 {
			return err
		}
		picked, _, err = randomElems(v, key, crdt.TypeSet, k.Len(crdt.TypeSet), abs64(count), count > 0)
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	if !withCount {
		if len(picked) == 0 {
			return replyNull, nil
		}
		return bulk(picked[0]), nil
	}
	out := make([]Reply, len(picked))
	for i, m := range picked {
		out[i] = bulk(m)
	}
	return array(out...), nil
}

func cmdSMove(cl *call) (Reply, error) {
	src, dst, m := cl.args[1], cl.args[2], cl.args[3]
	reply := replyZero
	err := cl.update(dedupKeys([][]byte{src, dst}), func(tx Tx) error {
		_, ok, err := collection(tx, src, crdt.TypeSet)
		if err != nil || !ok {
			return err
		}
		if _, _, err := collection(tx, dst, crdt.TypeSet); err != nil {
			return err
		}
		in, err := isMember(tx, src, m)
		if err != nil || !in {
			return err
		}
		reply = replyOne
		if bytes.Equal(src, dst) {
			return nil
		}
		emit(tx, src, crdt.Op{Kind: crdt.OpSRem, Elem: m})
		emit(tx, dst, crdt.Op{Kind: crdt.OpSAdd, Elem: m})
		return nil
	})
	return reply, err
}

// setAlgebra computes SINTER, SUNION or SDIFF of keys (sorted members).
// Every key must be a set or not exist.
func setAlgebra(v View, op string, keys [][]byte) ([][]byte, error) {
	lens := make([]int64, len(keys))
	exists := make([]bool, len(keys))
	for i, key := range keys {
		k, ok, err := collection(v, key, crdt.TypeSet)
		if err != nil {
			return nil, err
		}
		if ok {
			lens[i], exists[i] = k.Len(crdt.TypeSet), true
		}
	}
	var out [][]byte
	switch op {
	case "inter":
		order := make([]int, len(keys))
		for i := range order {
			if !exists[i] {
				return nil, nil
			}
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return lens[order[a]] < lens[order[b]] })
		var err error
		scanErr := v.ScanElems(keys[order[0]], crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool {
			for _, j := range order[1:] {
				var in bool
				if in, err = isMember(v, keys[j], m); err != nil || !in {
					return err == nil
				}
			}
			out = append(out, m)
			return true
		})
		if err == nil {
			err = scanErr
		}
		return out, err
	case "union":
		all := make(map[string]bool)
		for i, key := range keys {
			if !exists[i] {
				continue
			}
			err := v.ScanElems(key, crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool {
				all[string(m)] = true
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		for m := range all {
			out = append(out, []byte(m))
		}
		sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
		return out, nil
	default: // diff
		if !exists[0] {
			return nil, nil
		}
		var err error
		scanErr := v.ScanElems(keys[0], crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool {
			for j := 1; j < len(keys); j++ {
				if !exists[j] {
					continue
				}
				var in bool
				if in, err = isMember(v, keys[j], m); err != nil || in {
					return err == nil
				}
			}
			out = append(out, m)
			return true
		})
		if err == nil {
			err = scanErr
		}
		return out, err
	}
}

func cmdSetAlgebra(cl *call) (Reply, error) {
	op := strings.TrimPrefix(cl.cmd.name, "s")
	var ms [][]byte
	err := cl.view(func(v View) (err error) {
		ms, err = setAlgebra(v, op, cl.args[1:])
		return err
	})
	out := make([]Reply, len(ms))
	for i, m := range ms {
		out[i] = bulk(m)
	}
	return setReply(out...), err
}

// cmdSetAlgebraStore is S*STORE: the destination gets an observed delete
// of what it held plus an add of each member of the result, in one event.
func cmdSetAlgebraStore(cl *call) (Reply, error) {
	op := strings.TrimSuffix(strings.TrimPrefix(cl.cmd.name, "s"), "store")
	dst := cl.args[1]
	var n int64
	err := cl.update(dedupKeys(cl.args[1:]), func(tx Tx) error {
		ms, err := setAlgebra(tx, op, cl.args[2:])
		if err != nil {
			return err
		}
		if len(ms) > maxElemOps {
			return ErrTooManyElems
		}
		n = int64(len(ms))
		return storeMembers(tx, dst, crdt.OpSAdd, ms, nil)
	})
	return integer(n), err
}

// storeMembers makes dst hold exactly members (as a set, or a sorted set
// with scores): an observed delete of what dst held, then the adds; an
// empty result deletes dst.
func storeMembers(tx Tx, dst []byte, kind crdt.OpKind, members [][]byte, scores []float64) error {
	_, t, err := visible(tx, dst)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		if t != crdt.TypeNone {
			emit(tx, dst, crdt.Op{Kind: crdt.OpDelete})
		}
		return nil
	}
	ops := make([]crdt.Op, 0, len(members)+1)
	ops = append(ops, crdt.Op{Kind: crdt.OpDelete})
	for i, m := range members {
		op := crdt.Op{Kind: kind, Elem: m}
		if scores != nil {
			op.Value = crdt.ScoreBytes(scores[i])
		}
		ops = append(ops, op)
	}
	emit(tx, dst, ops...)
	return nil
}

func cmdSInterCard(cl *call) (Reply, error) {
	numKeys, ok := crdt.ParseInt(cl.args[1])
	if !ok || numKeys <= 0 {
		return Reply{}, ErrNumKeys
	}
	if numKeys > int64(len(cl.args)-2) {
		return Reply{}, ErrNumKeysArgs
	}
	keys := cl.args[2 : 2+numKeys]
	limit := int64(0)
	for i := 2 + int(numKeys); i < len(cl.args); i += 2 {
		if !strings.EqualFold(string(cl.args[i]), "limit") || i+1 >= len(cl.args) {
			return Reply{}, ErrSyntax
		}
		l, ok := crdt.ParseInt(cl.args[i+1])
		if !ok || l < 0 {
			return Reply{}, ErrLimitNegative
		}
		limit = l
	}
	var n int64
	err := cl.view(func(v View) error {
		ms, err := setAlgebra(v, "inter", keys)
		n = int64(len(ms))
		if limit > 0 && n > limit {
			n = limit
		}
		return err
	})
	return integer(n), err
}

func cmdSScan(cl *call) (Reply, error) {
	return cmdElemScan(cl, crdt.TypeSet, func(m []byte, _ *crdt.Cell) []Reply {
		return []Reply{bulk(m)}
	}, nil)
}
