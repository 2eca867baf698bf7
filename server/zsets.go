package server

import (
	"bytes"
	"math"
	"sort"
	"strings"

	"github.com/georep/georep/crdt"
)

// Sorted-set commands. Membership is an add-wins observed-remove set; a
// member's score is the last ZADD's (LWW, ties to the smaller instance ID)
// plus the ZINCRBY increments that ZADD had not seen. Pops and range
// removals are observed removes (at-least-once across regions). See
// aa-semantics.md, Sorted sets.
//
// Complexity: reads by score (ZRANGEBYSCORE, ZCOUNT, ZRANGE BYSCORE, the
// lex ranges of a set whose members share one score) seek into the score
// index: O(log N + M). Ranks count from the nearer end they are asked
// from: ZRANGE by rank is O(start + M), ZRANK O(rank), ZREVRANK O(N -
// rank), ZCOUNT O(M). ZCARD is O(1).
func addZSetCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "zadd", arity: -4, flags: w | flagFast, run: cmdZAdd})
	r.add(&command{name: "zincrby", arity: 4, flags: w | flagFast, run: cmdZIncrBy})
	r.add(&command{name: "zrem", arity: -3, flags: flagWrite | flagFast, run: cmdZRem})
	r.add(&command{name: "zscore", arity: 3, flags: flagRead | flagFast, run: cmdZScore})
	r.add(&command{name: "zmscore", arity: -3, flags: flagRead | flagFast, run: cmdZMScore})
	r.add(&command{name: "zcard", arity: 2, flags: flagRead | flagFast, run: cmdZCard})
	r.add(&command{name: "zcount", arity: 4, flags: flagRead | flagFast, run: cmdZCount})
	r.add(&command{name: "zlexcount", arity: 4, flags: flagRead | flagFast, run: cmdZLexCount})
	r.add(&command{name: "zrange", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrangebyscore", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrevrangebyscore", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrangebylex", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrevrangebylex", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrevrange", arity: -4, flags: flagRead, run: cmdZRange})
	r.add(&command{name: "zrangestore", arity: -5, flags: w, run: cmdZRange})
	r.add(&command{name: "zrank", arity: -3, flags: flagRead | flagFast, run: cmdZRank})
	r.add(&command{name: "zrevrank", arity: -3, flags: flagRead | flagFast, run: cmdZRank})
	r.add(&command{name: "zpopmin", arity: -2, flags: flagWrite | flagFast, run: cmdZPop})
	r.add(&command{name: "zpopmax", arity: -2, flags: flagWrite | flagFast, run: cmdZPop})
	r.add(&command{name: "zmpop", arity: -4, flags: flagWrite, run: cmdZMPop})
	r.add(&command{name: "zrandmember", arity: -2, flags: flagRead, run: cmdZRandMember})
	r.add(&command{name: "zunion", arity: -3, flags: flagRead, run: cmdZSetAlgebra})
	r.add(&command{name: "zinter", arity: -3, flags: flagRead, run: cmdZSetAlgebra})
	r.add(&command{name: "zdiff", arity: -3, flags: flagRead, run: cmdZSetAlgebra})
	r.add(&command{name: "zunionstore", arity: -4, flags: w, run: cmdZSetAlgebra})
	r.add(&command{name: "zinterstore", arity: -4, flags: w, run: cmdZSetAlgebra})
	r.add(&command{name: "zdiffstore", arity: -4, flags: w, run: cmdZSetAlgebra})
	r.add(&command{name: "zintercard", arity: -3, flags: flagRead, run: cmdZSetAlgebra})
	r.add(&command{name: "zremrangebyrank", arity: 4, flags: flagWrite, run: cmdZRemRange})
	r.add(&command{name: "zremrangebyscore", arity: 4, flags: flagWrite, run: cmdZRemRange})
	r.add(&command{name: "zremrangebylex", arity: 4, flags: flagWrite, run: cmdZRemRange})
	r.add(&command{name: "zscan", arity: -3, flags: flagRead, run: cmdZScan})

	r.copies[crdt.TypeZSet] = copyZSet
}

// copyZSet is RENAME/COPY's content of a sorted set: a ZADD of every
// member's visible score.
func copyZSet(tx Tx, _ *crdt.Key, srcKey, _ []byte, _ int64) ([]crdt.Op, error) {
	var ops []crdt.Op
	err := tx.ScanElems(srcKey, crdt.TypeZSet, nil, func(m []byte, c *crdt.Cell) bool {
		s, _ := c.Score()
		ops = append(ops, crdt.Op{Kind: crdt.OpZAdd, Elem: m, Value: crdt.ScoreBytes(s)})
		return len(ops) <= maxElemOps
	})
	if len(ops) > maxElemOps {
		return nil, ErrTooManyElems
	}
	return ops, err
}

// zscore returns member's score in the sorted set at key (which the caller
// checked is a sorted set or does not exist).
func zscore(v View, key, member []byte) (float64, bool, error) {
	c, err := v.Elem(key, crdt.TypeZSet, member)
	if err != nil || c == nil {
		return 0, false, err
	}
	s, ok := c.Score()
	return s, ok, nil
}

// zaddFlags are ZADD's options.
type zaddFlags struct{ nx, xx, gt, lt, ch, incr bool }

// zincrOps returns the effect of moving member from score cur (exists) to
// updated by an increment: the exact difference as a counter increment,
// so concurrent increments add up; a ZADD of the result when it is
// infinite (an infinite score absorbs increments anyway).
func zincrOp(member []byte, cur float64, exists bool, updated float64) crdt.Op {
	if !exists {
		cur = 0
	}
	if math.IsInf(updated, 0) || math.IsInf(cur, 0) {
		return crdt.Op{Kind: crdt.OpZAdd, Elem: member, Value: crdt.ScoreBytes(updated)}
	}
	return crdt.Op{Kind: crdt.OpZIncr, Elem: member, Float: crdt.ScoreDelta(cur, updated)}
}

// zadd applies ZADD's rules to pairs in tx, emitting the effects; it
// returns the counts for the reply and, for INCR, the new score.
func zadd(tx Tx, key []byte, f zaddFlags, scores []float64, members [][]byte) (added, updated int64, score float64, processed bool, err error) {
	if _, _, err := collection(tx, key, crdt.TypeZSet); err != nil {
		return 0, 0, 0, false, err
	}
	type state struct {
		score  float64
		exists bool
		op     *crdt.Op
	}
	cur := make(map[string]*state)
	var order []string
	for i, m := range members {
		st := cur[string(m)]
		if st == nil {
			s, ok, err := zscore(tx, key, m)
			if err != nil {
				return 0, 0, 0, false, err
			}
			st = &state{score: s, exists: ok}
			cur[string(m)] = st
			order = append(order, string(m))
		}
		s := scores[i]
		if st.exists {
			if f.nx {
				continue
			}
			if f.incr {
				s += st.score
				if math.IsNaN(s) {
					return 0, 0, 0, false, ErrScoreNaN
				}
			}
			if (f.lt && s >= st.score) || (f.gt && s <= st.score) {
				continue
			}
			processed = true
			score = s
			if s != st.score {
				updated++
			}
			var op crdt.Op
			if f.incr {
				op = zincrOp(m, st.score, true, s)
			} else {
				op = crdt.Op{Kind: crdt.OpZAdd, Elem: m, Value: crdt.ScoreBytes(s)}
			}
			st.score, st.op = s, &op
			continue
		}
		if f.xx {
			continue
		}
		processed = true
		score = s
		added++
		var op crdt.Op
		if f.incr {
			op = zincrOp(m, 0, false, s)
		} else {
			op = crdt.Op{Kind: crdt.OpZAdd, Elem: m, Value: crdt.ScoreBytes(s)}
		}
		st.score, st.exists, st.op = s, true, &op
	}
	var ops []crdt.Op
	for _, m := range order {
		if op := cur[m].op; op != nil {
			ops = append(ops, *op)
		}
	}
	if len(ops) > maxElemOps {
		return 0, 0, 0, false, ErrTooManyElems
	}
	emit(tx, key, ops...)
	return added, updated, score, processed, nil
}

func cmdZAdd(cl *call) (Reply, error) {
	key := cl.args[1]
	var f zaddFlags
	i := 2
opts:
	for ; i < len(cl.args); i++ {
		switch strings.ToLower(string(cl.args[i])) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "gt":
			f.gt = true
		case "lt":
			f.lt = true
		case "ch":
			f.ch = true
		case "incr":
			f.incr = true
		default:
			break opts
		}
	}
	pairs := cl.args[i:]
	switch {
	case len(pairs) == 0 || len(pairs)%2 != 0:
		return Reply{}, ErrSyntax
	case f.nx && f.xx:
		return Reply{}, ErrZAddXXNX
	case (f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt):
		return Reply{}, ErrZAddGTLTNX
	case f.incr && len(pairs) > 2:
		return Reply{}, ErrZAddIncr
	}
	scores := make([]float64, 0, len(pairs)/2)
	members := make([][]byte, 0, len(pairs)/2)
	for j := 0; j < len(pairs); j += 2 {
		s, ok := parseScore(pairs[j])
		if !ok {
			return Reply{}, ErrNotFloat
		}
		scores = append(scores, s+0) // -0 is 0
		members = append(members, pairs[j+1])
	}
	return zaddReply(cl, key, f, scores, members)
}

// zaddReply runs ZADD (also GEOADD) and builds its reply.
func zaddReply(cl *call, key []byte, f zaddFlags, scores []float64, members [][]byte) (Reply, error) {
	var added, updated int64
	var score float64
	var processed bool
	err := cl.update([][]byte{key}, func(tx Tx) (err error) {
		added, updated, score, processed, err = zadd(tx, key, f, scores, members)
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	if f.incr {
		if !processed {
			return replyNull, nil
		}
		return scoreReply(score), nil
	}
	if f.ch {
		return integer(added + updated), nil
	}
	return integer(added), nil
}

func cmdZIncrBy(cl *call) (Reply, error) {
	s, ok := parseScore(cl.args[2])
	if !ok {
		return Reply{}, ErrNotFloat
	}
	return zaddReply(cl, cl.args[1], zaddFlags{incr: true}, []float64{s + 0}, [][]byte{cl.args[3]})
}

func cmdZRem(cl *call) (Reply, error) {
	return cmdRemoveElems(cl, crdt.TypeZSet, crdt.OpZRem, func(v View, key, m []byte) (bool, error) {
		_, ok, err := zscore(v, key, m)
		return ok, err
	})
}

func cmdZScore(cl *call) (Reply, error) {
	r := replyNull
	err := cl.view(func(v View) error {
		_, ok, err := collection(v, cl.args[1], crdt.TypeZSet)
		if err != nil || !ok {
			return err
		}
		s, ok, err := zscore(v, cl.args[1], cl.args[2])
		if ok {
			r = scoreReply(s)
		}
		return err
	})
	return r, err
}

func cmdZMScore(cl *call) (Reply, error) {
	key := cl.args[1]
	out := make([]Reply, 0, len(cl.args)-2)
	err := cl.view(func(v View) error {
		_, exists, err := collection(v, key, crdt.TypeZSet)
		if err != nil {
			return err
		}
		for _, m := range cl.args[2:] {
			r := replyNull
			if exists {
				s, ok, err := zscore(v, key, m)
				if err != nil {
					return err
				}
				if ok {
					r = scoreReply(s)
				}
			}
			out = append(out, r)
		}
		return nil
	})
	return array(out...), err
}

func cmdZCard(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) (err error) {
		n, err = collLen(v, cl.args[1], crdt.TypeZSet)
		return err
	})
	return integer(n), err
}

// scoreRange is a ZRANGEBYSCORE interval.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func parseRangeScore(b []byte) (float64, bool, bool) {
	ex := len(b) > 0 && b[0] == '('
	if ex {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, ex, true // strtod of "" is 0 with nothing left over
	}
	f, ok := parseStrtod(b, false)
	return f, ex, ok
}

func parseScoreRange(min, max []byte) (scoreRange, error) {
	var r scoreRange
	var ok1, ok2 bool
	r.min, r.minex, ok1 = parseRangeScore(min)
	r.max, r.maxex, ok2 = parseRangeScore(max)
	if !ok1 || !ok2 {
		return r, ErrMinMaxFloat
	}
	return r, nil
}

func (r scoreRange) gteMin(s float64) bool {
	if r.minex {
		return s > r.min
	}
	return s >= r.min
}

func (r scoreRange) lteMax(s float64) bool {
	if r.maxex {
		return s < r.max
	}
	return s <= r.max
}

func (r scoreRange) empty() bool {
	return r.min > r.max || (r.min == r.max && (r.minex || r.maxex))
}

// lexRange is a ZRANGEBYLEX interval; a nil bound with minInf/maxInf set
// is "-" or "+".
type lexRange struct {
	min, max         []byte
	minex, maxex     bool
	minNeg, maxPos   bool // "-" as min or "+" as max: unbounded
	minPos, maxNeg   bool // "+" as min or "-" as max: nothing
	invalid, emptyIv bool
}

func parseLexItem(b []byte) (item []byte, ex, neg, pos, ok bool) {
	if len(b) == 0 {
		return nil, false, false, false, false
	}
	switch b[0] {
	case '+':
		return nil, true, false, true, len(b) == 1
	case '-':
		return nil, true, true, false, len(b) == 1
	case '(':
		return b[1:], true, false, false, true
	case '[':
		return b[1:], false, false, false, true
	}
	return nil, false, false, false, false
}

func parseLexRange(min, max []byte) (lexRange, error) {
	var r lexRange
	var ok1, ok2 bool
	var neg, pos bool
	r.min, r.minex, neg, pos, ok1 = parseLexItem(min)
	r.minNeg, r.minPos = neg, pos
	r.max, r.maxex, neg, pos, ok2 = parseLexItem(max)
	r.maxNeg, r.maxPos = neg, pos
	if !ok1 || !ok2 {
		return r, ErrMinMaxLex
	}
	return r, nil
}

func (r lexRange) gteMin(m []byte) bool {
	switch {
	case r.minNeg:
		return true
	case r.minPos:
		return false
	case r.minex:
		return bytes.Compare(m, r.min) > 0
	}
	return bytes.Compare(m, r.min) >= 0
}

func (r lexRange) lteMax(m []byte) bool {
	switch {
	case r.maxPos:
		return true
	case r.maxNeg:
		return false
	case r.maxex:
		return bytes.Compare(m, r.max) < 0
	}
	return bytes.Compare(m, r.max) <= 0
}

func (r lexRange) empty() bool {
	if r.minPos || r.maxNeg {
		return true
	}
	if r.minNeg || r.maxPos {
		return false
	}
	c := bytes.Compare(r.min, r.max)
	return c > 0 || (c == 0 && (r.minex || r.maxex))
}

// scored is a member with its score.
type scored struct {
	member []byte
	score  float64
}

// byRank calls fn for the members at ranks start..end (normalised like
// Redis), from the low end or, with reverse, from the high end.
func byRank(v View, key []byte, n, start, end int64, reverse bool, fn func(m []byte, s float64) bool) error {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if start < 0 {
		start = 0
	}
	if start > end || start >= n {
		return nil
	}
	if end >= n {
		end = n - 1
	}
	from := math.Inf(-1)
	if reverse {
		from = math.Inf(1)
	}
	var i int64
	return v.ScanScores(key, from, nil, reverse, func(m []byte, s float64) bool {
		if i > end {
			return false
		}
		if i >= start && !fn(m, s) {
			return false
		}
		i++
		return i <= end
	})
}

// byScore calls fn for the members in r, in score order or reversed,
// skipping offset of them and stopping after limit (< 0: no limit).
func byScore(v View, key []byte, r scoreRange, reverse bool, offset, limit int64, fn func(m []byte, s float64) bool) error {
	if r.empty() || offset < 0 || limit == 0 {
		return nil
	}
	from := r.min
	if reverse {
		from = r.max
	}
	return v.ScanScores(key, from, nil, reverse, func(m []byte, s float64) bool {
		if reverse {
			if !r.lteMax(s) {
				return true
			}
			if !r.gteMin(s) {
				return false
			}
		} else {
			if !r.gteMin(s) {
				return true
			}
			if !r.lteMax(s) {
				return false
			}
		}
		if offset > 0 {
			offset--
			return true
		}
		if !fn(m, s) {
			return false
		}
		if limit > 0 {
			limit--
			return limit > 0
		}
		return true
	})
}

// byLex calls fn for the members in r. When every member has the same
// score (what lex ranges are for) it seeks to the range; otherwise it
// walks from the end it starts at, like Redis's unspecified behaviour
// there: the first member in range starts the run, the first one past it
// ends it.
func byLex(v View, key []byte, r lexRange, reverse bool, offset, limit int64, fn func(m []byte, s float64) bool) error {
	if r.empty() || offset < 0 || limit == 0 {
		return nil
	}
	lo, hi, ok, err := scoreEnds(v, key)
	if err != nil || !ok {
		return err
	}
	// Like Redis: nothing when the last member is below min or the first
	// above max.
	if !r.gteMin(hi.member) || !r.lteMax(lo.member) {
		return nil
	}
	from, fromMember := math.Inf(-1), []byte(nil)
	if reverse {
		from = math.Inf(1)
	}
	if lo.score == hi.score {
		from = lo.score
		switch {
		case !reverse && !r.minNeg && !r.minPos:
			fromMember = r.min
		case reverse && !r.maxPos && !r.maxNeg:
			fromMember = r.max
		}
	}
	started := false
	return v.ScanScores(key, from, fromMember, reverse, func(m []byte, s float64) bool {
		if !started {
			if reverse && !r.lteMax(m) || !reverse && !r.gteMin(m) {
				return true
			}
			started = true
		}
		if reverse && !r.gteMin(m) || !reverse && !r.lteMax(m) {
			return false
		}
		if offset > 0 {
			offset--
			return true
		}
		if !fn(m, s) {
			return false
		}
		if limit > 0 {
			limit--
			return limit > 0
		}
		return true
	})
}

// scoreEnds returns the first and the last member of the set.
func scoreEnds(v View, key []byte) (lo, hi scored, ok bool, err error) {
	err = v.ScanScores(key, math.Inf(-1), nil, false, func(m []byte, s float64) bool {
		lo, ok = scored{m, s}, true
		return false
	})
	if err != nil || !ok {
		return lo, hi, false, err
	}
	err = v.ScanScores(key, math.Inf(1), nil, true, func(m []byte, s float64) bool {
		hi = scored{m, s}
		return false
	})
	return lo, hi, ok, err
}

func cmdZCount(cl *call) (Reply, error) {
	r, err := parseScoreRange(cl.args[2], cl.args[3])
	if err != nil {
		return Reply{}, err
	}
	var n int64
	err = cl.view(func(v View) error {
		if _, ok, err := collection(v, cl.args[1], crdt.TypeZSet); err != nil || !ok {
			return err
		}
		return byScore(v, cl.args[1], r, false, 0, -1, func([]byte, float64) bool {
			n++
			return true
		})
	})
	return integer(n), err
}

func cmdZLexCount(cl *call) (Reply, error) {
	r, err := parseLexRange(cl.args[2], cl.args[3])
	if err != nil {
		return Reply{}, err
	}
	var n int64
	err = cl.view(func(v View) error {
		if _, ok, err := collection(v, cl.args[1], crdt.TypeZSet); err != nil || !ok {
			return err
		}
		return byLex(v, cl.args[1], r, false, 0, -1, func([]byte, float64) bool {
			n++
			return true
		})
	})
	return integer(n), err
}

// zrangeSpec is a parsed ZRANGE-family command.
type zrangeSpec struct {
	byScore, byLex, reverse, withScores bool
	offset, limit                       int64
	hasLimit                            bool
	start, end                          int64
	score                               scoreRange
	lex                                 lexRange
}

// parseZRange parses the ZRANGE family; args start at the source key.
func parseZRange(name string, args [][]byte) (zrangeSpec, error) {
	sp := zrangeSpec{limit: -1}
	autoDir, autoType := false, false
	switch name {
	case "zrange", "zrangestore":
		autoDir, autoType = true, true
	case "zrangebyscore":
		sp.byScore = true
	case "zrevrangebyscore":
		sp.byScore, sp.reverse = true, true
	case "zrangebylex":
		sp.byLex = true
	case "zrevrangebylex":
		sp.byLex, sp.reverse = true, true
	case "zrevrange":
		sp.reverse = true
	}
	for j := 3; j < len(args); j++ {
		left := len(args) - j - 1
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "withscores" && name != "zrangestore":
			sp.withScores = true
		case opt == "limit" && left >= 2:
			o, ok1 := crdt.ParseInt(args[j+1])
			l, ok2 := crdt.ParseInt(args[j+2])
			if !ok1 || !ok2 {
				return sp, ErrNotInteger
			}
			sp.offset, sp.limit, sp.hasLimit = o, l, true
			j += 2
		case autoDir && opt == "rev":
			sp.reverse = true
		case autoType && opt == "bylex":
			sp.byLex, sp.byScore = true, false
		case autoType && opt == "byscore":
			sp.byScore, sp.byLex = true, false
		default:
			return sp, ErrSyntax
		}
	}
	if sp.hasLimit && !sp.byScore && !sp.byLex {
		return sp, ErrLimitNoBy
	}
	if sp.withScores && sp.byLex {
		return sp, ErrWithScoresByLex
	}
	min, max := args[1], args[2]
	if sp.reverse && (sp.byScore || sp.byLex) {
		min, max = max, min
	}
	var err error
	switch {
	case sp.byScore:
		sp.score, err = parseScoreRange(min, max)
	case sp.byLex:
		sp.lex, err = parseLexRange(min, max)
	default:
		var ok1, ok2 bool
		sp.start, ok1 = crdt.ParseInt(min)
		sp.end, ok2 = crdt.ParseInt(max)
		if !ok1 || !ok2 {
			err = ErrNotInteger
		}
	}
	return sp, err
}

// run calls fn for the members the spec selects from key (a sorted set of
// n members).
func (sp zrangeSpec) run(v View, key []byte, n int64, fn func(m []byte, s float64) bool) error {
	switch {
	case sp.byScore:
		return byScore(v, key, sp.score, sp.reverse, sp.offset, sp.limit, fn)
	case sp.byLex:
		return byLex(v, key, sp.lex, sp.reverse, sp.offset, sp.limit, fn)
	}
	return byRank(v, key, n, sp.start, sp.end, sp.reverse, fn)
}

// cmdZRange is ZRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX,
// ZREVRANGEBYLEX, ZREVRANGE and ZRANGESTORE.
func cmdZRange(cl *call) (Reply, error) {
	store := cl.cmd.name == "zrangestore"
	args := cl.args[1:]
	if store {
		args = cl.args[2:]
	}
	sp, err := parseZRange(cl.cmd.name, args)
	if err != nil {
		return Reply{}, err
	}
	src := args[0]
	if store {
		dst := cl.args[1]
		var n int64
		err := cl.update(dedupKeys([][]byte{dst, src}), func(tx Tx) error {
			k, ok, err := collection(tx, src, crdt.TypeZSet)
			if err != nil {
				return err
			}
			var ms [][]byte
			var ss []float64
			if ok {
				err = sp.run(tx, src, k.Len(crdt.TypeZSet), func(m []byte, s float64) bool {
					ms, ss = append(ms, m), append(ss, s)
					return len(ms) <= maxElemOps
				})
				if err != nil {
					return err
				}
			}
			if len(ms) > maxElemOps {
				return ErrTooManyElems
			}
			n = int64(len(ms))
			return storeMembers(tx, dst, crdt.OpZAdd, ms, ss)
		})
		return integer(n), err
	}
	var out []Reply
	err = cl.view(func(v View) error {
		k, ok, err := collection(v, src, crdt.TypeZSet)
		if err != nil || !ok {
			return err
		}
		return sp.run(v, src, k.Len(crdt.TypeZSet), func(m []byte, s float64) bool {
			if sp.withScores {
				out = append(out, pairReply(bulk(m), scoreReply(s)))
			} else {
				out = append(out, bulk(m))
			}
			return true
		})
	})
	return array(out...), err
}

func cmdZRank(cl *call) (Reply, error) {
	key, member := cl.args[1], cl.args[2]
	withScore := false
	switch {
	case len(cl.args) == 4 && strings.EqualFold(string(cl.args[3]), "withscore"):
		withScore = true
	case len(cl.args) > 3:
		return Reply{}, ErrSyntax
	}
	reverse := cl.cmd.name == "zrevrank"
	var rank int64
	var score float64
	found := false
	err := cl.view(func(v View) error {
		if _, ok, err := collection(v, key, crdt.TypeZSet); err != nil || !ok {
			return err
		}
		s, ok, err := zscore(v, key, member)
		if err != nil || !ok {
			return err
		}
		score, found = s, true
		from := math.Inf(-1)
		if reverse {
			from = math.Inf(1)
		}
		return v.ScanScores(key, from, nil, reverse, func(m []byte, s float64) bool {
			if bytes.Equal(m, member) {
				return false
			}
			rank++
			return true
		})
	})
	switch {
	case err != nil:
		return Reply{}, err
	case !found && withScore:
		return replyNullArray, nil
	case !found:
		return replyNull, nil
	case withScore:
		return array(integer(rank), scoreReply(score)), nil
	}
	return integer(rank), nil
}

// zpop removes up to count members from the low (or high) end of key in
// tx: observed removes, so concurrent pops in two regions may both return
// a member (at-least-once).
func zpop(tx Tx, key []byte, count int64, max bool) ([]scored, error) {
	k, ok, err := collection(tx, key, crdt.TypeZSet)
	if err != nil || !ok || count <= 0 {
		return nil, err
	}
	n := k.Len(crdt.TypeZSet)
	var out []scored
	from := math.Inf(-1)
	if max {
		from = math.Inf(1)
	}
	err = tx.ScanScores(key, from, nil, max, func(m []byte, s float64) bool {
		out = append(out, scored{bytes.Clone(m), s})
		return int64(len(out)) < count
	})
	if err != nil {
		return nil, err
	}
	var ops []crdt.Op
	if int64(len(out)) >= n && n > maxElemOps {
		// Every member goes: one observed removal of the whole set.
		ops = []crdt.Op{{Kind: crdt.OpDeleteType, Type: crdt.TypeZSet}}
	} else {
		if len(out) > maxElemOps {
			return nil, ErrTooManyElems
		}
		for _, x := range out {
			ops = append(ops, crdt.Op{Kind: crdt.OpZRem, Elem: x.member})
		}
	}
	emit(tx, key, ops...)
	return out, nil
}

func cmdZPop(cl *call) (Reply, error) {
	key := cl.args[1]
	count := int64(1)
	withCount := len(cl.args) == 3
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
	var popped []scored
	err := cl.update([][]byte{key}, func(tx Tx) (err error) {
		popped, err = zpop(tx, key, count, cl.cmd.name == "zpopmax")
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	if !withCount {
		if len(popped) == 0 {
			return array(), nil
		}
		return array(bulk(popped[0].member), scoreReply(popped[0].score)), nil
	}
	return scoredPairs(popped), nil
}

// scoredPairs is an array of (member, score) pairs.
func scoredPairs(list []scored) Reply {
	out := make([]Reply, len(list))
	for i, x := range list {
		out[i] = pairReply(bulk(x.member), scoreReply(x.score))
	}
	return array(out...)
}

func cmdZMPop(cl *call) (Reply, error) {
	numKeys, ok := crdt.ParseInt(cl.args[1])
	if !ok || numKeys <= 0 {
		return Reply{}, ErrNumKeys
	}
	if numKeys >= int64(len(cl.args)-2) {
		return Reply{}, ErrSyntax
	}
	keys := cl.args[2 : 2+numKeys]
	rest := cl.args[2+numKeys:]
	var max bool
	switch strings.ToLower(string(rest[0])) {
	case "min":
	case "max":
		max = true
	default:
		return Reply{}, ErrSyntax
	}
	count := int64(1)
	switch {
	case len(rest) == 3 && strings.EqualFold(string(rest[1]), "count"):
		n, ok := crdt.ParseInt(rest[2])
		if !ok || n <= 0 {
			return Reply{}, ErrCountPositive
		}
		count = n
	case len(rest) != 1:
		return Reply{}, ErrSyntax
	}
	var from []byte
	var popped []scored
	err := cl.update(dedupKeys(keys), func(tx Tx) error {
		for _, key := range keys {
			k, ok, err := collection(tx, key, crdt.TypeZSet)
			if err != nil {
				return err
			}
			if !ok || k.Len(crdt.TypeZSet) == 0 {
				continue
			}
			from = key
			popped, err = zpop(tx, key, count, max)
			return err
		}
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	if from == nil {
		return replyNullArray, nil
	}
	out := make([]Reply, len(popped))
	for i, x := range popped {
		out[i] = array(bulk(x.member), scoreReply(x.score))
	}
	return array(bulk(bytes.Clone(from)), array(out...)), nil
}

func cmdZRandMember(cl *call) (Reply, error) {
	return cmdRandPick(cl, crdt.TypeZSet, "withscores", func(c *crdt.Cell) Reply {
		s, _ := c.Score()
		return scoreReply(s)
	})
}

// zalgebra is a parsed ZUNION/ZINTER/ZDIFF (and *STORE, ZINTERCARD).
type zalgebra struct {
	op         string // union, inter, diff
	keys       [][]byte
	weights    []float64
	agg        string // sum, min, max
	withScores bool
	limit      int64
}

func parseZAlgebra(name string, args [][]byte) (zalgebra, error) {
	a := zalgebra{agg: "sum"}
	base := strings.TrimPrefix(name, "z")
	store := strings.HasSuffix(base, "store")
	base = strings.TrimSuffix(base, "store")
	card := base == "intercard"
	if card {
		base = "inter"
	}
	a.op = base
	n, ok := crdt.ParseInt(args[0])
	if !ok {
		return a, ErrNotInteger
	}
	if n < 1 {
		return a, errorf("ERR at least 1 input key is needed for '%s' command", name)
	}
	if n > int64(len(args)-1) {
		return a, ErrSyntax
	}
	a.keys = args[1 : 1+n]
	rest := args[1+n:]
	for i := 0; i < len(rest); i++ {
		left := len(rest) - i - 1
		opt := strings.ToLower(string(rest[i]))
		switch {
		case card && opt == "limit" && left >= 1:
			l, ok := crdt.ParseInt(rest[i+1])
			if !ok || l < 0 {
				return a, ErrLimitNegative
			}
			a.limit = l
			i++
		case !card && base != "diff" && opt == "weights" && int64(left) >= n:
			a.weights = make([]float64, n)
			for j := int64(0); j < n; j++ {
				w, ok := parseScore(rest[i+1+int(j)])
				if !ok {
					return a, ErrWeightFloat
				}
				a.weights[j] = w
			}
			i += int(n)
		case !card && base != "diff" && opt == "aggregate" && left >= 1:
			switch agg := strings.ToLower(string(rest[i+1])); agg {
			case "sum", "min", "max":
				a.agg = agg
			default:
				return a, ErrSyntax
			}
			i++
		case !card && !store && opt == "withscores":
			a.withScores = true
		default:
			return a, ErrSyntax
		}
	}
	return a, nil
}

// zsource reads an input of ZUNION & co: a sorted set, or a set (every
// member scored 1).
type zsource struct {
	key    []byte
	t      crdt.Type
	n      int64
	exists bool
}

func (s zsource) score(v View, m []byte) (float64, bool, error) {
	if !s.exists {
		return 0, false, nil
	}
	if s.t == crdt.TypeSet {
		in, err := isMember(v, s.key, m)
		return 1, in, err
	}
	return zscore(v, s.key, m)
}

func (s zsource) scan(v View, fn func(m []byte, sc float64) bool) error {
	if !s.exists {
		return nil
	}
	if s.t == crdt.TypeSet {
		return v.ScanElems(s.key, crdt.TypeSet, nil, func(m []byte, _ *crdt.Cell) bool { return fn(m, 1) })
	}
	return v.ScanElems(s.key, crdt.TypeZSet, nil, func(m []byte, c *crdt.Cell) bool {
		sc, _ := c.Score()
		return fn(m, sc)
	})
}

// weighted multiplies like Redis (NaN, from 0 * inf, counts as 0).
func weighted(s, w float64) float64 {
	r := s * w
	if math.IsNaN(r) {
		return 0
	}
	return r
}

func aggregate(agg string, acc, s float64) float64 {
	switch agg {
	case "min":
		return math.Min(acc, s)
	case "max":
		return math.Max(acc, s)
	}
	r := acc + s
	if math.IsNaN(r) {
		return 0
	}
	return r
}

// eval computes the result, sorted by score then member.
func (a zalgebra) eval(v View) ([]scored, error) {
	srcs := make([]zsource, len(a.keys))
	for i, key := range a.keys {
		k, t, err := visible(v, key)
		if err != nil {
			return nil, err
		}
		switch t {
		case crdt.TypeNone:
		case crdt.TypeSet, crdt.TypeZSet:
			srcs[i] = zsource{key: key, t: t, n: k.Len(t), exists: true}
		default:
			return nil, ErrWrongType
		}
		srcs[i].key = key
	}
	weight := func(i int) float64 {
		if a.weights == nil {
			return 1
		}
		return a.weights[i]
	}
	var out []scored
	var err error
	switch a.op {
	case "union":
		acc := make(map[string]float64)
		for i, s := range srcs {
			err = s.scan(v, func(m []byte, sc float64) bool {
				w := weighted(sc, weight(i))
				if cur, ok := acc[string(m)]; ok {
					acc[string(m)] = aggregate(a.agg, cur, w)
				} else {
					acc[string(m)] = w
				}
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		for m, sc := range acc {
			out = append(out, scored{[]byte(m), sc})
		}
	case "inter":
		order := make([]int, len(srcs))
		for i := range srcs {
			if !srcs[i].exists {
				return nil, nil
			}
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return srcs[order[x]].n < srcs[order[y]].n })
		first := order[0]
		var inner error
		err = srcs[first].scan(v, func(m []byte, sc float64) bool {
			acc := weighted(sc, weight(first))
			for _, j := range order[1:] {
				s2, ok, err := srcs[j].score(v, m)
				if err != nil {
					inner = err
					return false
				}
				if !ok {
					return true
				}
				acc = aggregate(a.agg, acc, weighted(s2, weight(j)))
			}
			out = append(out, scored{m, acc})
			return a.limit == 0 || int64(len(out)) < a.limit
		})
		if err == nil {
			err = inner
		}
	case "diff":
		var inner error
		err = srcs[0].scan(v, func(m []byte, sc float64) bool {
			for _, s := range srcs[1:] {
				_, ok, err := s.score(v, m)
				if err != nil {
					inner = err
					return false
				}
				if ok {
					return true
				}
			}
			out = append(out, scored{m, sc})
			return true
		})
		if err == nil {
			err = inner
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score < out[j].score
		}
		return bytes.Compare(out[i].member, out[j].member) < 0
	})
	return out, err
}

// cmdZSetAlgebra is ZUNION, ZINTER, ZDIFF, their *STORE forms and
// ZINTERCARD.
func cmdZSetAlgebra(cl *call) (Reply, error) {
	name := cl.cmd.name
	store := strings.HasSuffix(name, "store")
	args := cl.args[1:]
	if store {
		args = cl.args[2:]
	}
	a, err := parseZAlgebra(name, args)
	if err != nil {
		return Reply{}, err
	}
	if store {
		dst := cl.args[1]
		var n int64
		err := cl.update(dedupKeys(append([][]byte{dst}, a.keys...)), func(tx Tx) error {
			res, err := a.eval(tx)
			if err != nil {
				return err
			}
			if len(res) > maxElemOps {
				return ErrTooManyElems
			}
			ms := make([][]byte, len(res))
			ss := make([]float64, len(res))
			for i, x := range res {
				ms[i], ss[i] = x.member, x.score
			}
			n = int64(len(res))
			return storeMembers(tx, dst, crdt.OpZAdd, ms, ss)
		})
		return integer(n), err
	}
	var res []scored
	err = cl.view(func(v View) (err error) {
		res, err = a.eval(v)
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	if name == "zintercard" {
		return integer(int64(len(res))), nil
	}
	out := make([]Reply, len(res))
	for i, x := range res {
		if a.withScores {
			out[i] = pairReply(bulk(x.member), scoreReply(x.score))
		} else {
			out[i] = bulk(x.member)
		}
	}
	return array(out...), nil
}

// cmdZRemRange is ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX:
// observed removes of the members in range (an observed removal of the
// whole set when the range covers it).
func cmdZRemRange(cl *call) (Reply, error) {
	key := cl.args[1]
	var sp zrangeSpec
	var err error
	sp.limit = -1
	switch cl.cmd.name {
	case "zremrangebyrank":
		var ok1, ok2 bool
		sp.start, ok1 = crdt.ParseInt(cl.args[2])
		sp.end, ok2 = crdt.ParseInt(cl.args[3])
		if !ok1 || !ok2 {
			return Reply{}, ErrNotInteger
		}
	case "zremrangebyscore":
		sp.byScore = true
		sp.score, err = parseScoreRange(cl.args[2], cl.args[3])
	default:
		sp.byLex = true
		sp.lex, err = parseLexRange(cl.args[2], cl.args[3])
	}
	if err != nil {
		return Reply{}, err
	}
	var removed int64
	err = cl.update([][]byte{key}, func(tx Tx) error {
		k, ok, err := collection(tx, key, crdt.TypeZSet)
		if err != nil || !ok {
			return err
		}
		n := k.Len(crdt.TypeZSet)
		var ms [][]byte
		err = sp.run(tx, key, n, func(m []byte, _ float64) bool {
			ms = append(ms, bytes.Clone(m))
			return len(ms) <= maxElemOps || int64(len(ms)) < n
		})
		if err != nil {
			return err
		}
		removed = int64(len(ms))
		if removed == 0 {
			return nil
		}
		if removed >= n && n > maxElemOps {
			emit(tx, key, crdt.Op{Kind: crdt.OpDeleteType, Type: crdt.TypeZSet})
			return nil
		}
		if len(ms) > maxElemOps {
			return ErrTooManyElems
		}
		ops := make([]crdt.Op, len(ms))
		for i, m := range ms {
			ops[i] = crdt.Op{Kind: crdt.OpZRem, Elem: m}
		}
		emit(tx, key, ops...)
		return nil
	})
	return integer(removed), err
}

func cmdZScan(cl *call) (Reply, error) {
	item := func(m []byte, c *crdt.Cell) []Reply {
		s, _ := c.Score()
		return []Reply{bulk(m), bulk(appendDouble(nil, s))}
	}
	// Redis keeps a small sorted set in score order.
	whole := func(v View, key []byte, fn func(m []byte, items []Reply)) error {
		return v.ScanScores(key, math.Inf(-1), nil, false, func(m []byte, s float64) bool {
			fn(m, []Reply{bulk(m), bulk(appendDouble(nil, s))})
			return true
		})
	}
	return cmdElemScan(cl, crdt.TypeZSet, item, whole)
}
