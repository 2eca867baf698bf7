package crdttest

import (
	"errors"
	"math"
	"sort"

	"github.com/georep/georep/crdt"
)

// More collection commands (hash counters, sorted sets), evaluated at the
// origin as the server does, and readers of collections.

// ErrHashNotInteger is HINCRBY's error for a field that holds no integer.
var ErrHashNotInteger = errors.New("ERR hash value is not an integer")

// elem returns the live cell of element e of key's collection t (nil when
// the key is not of type t or the element is not live).
func (r *Replica) elem(key string, t crdt.Type, e string) *crdt.Cell {
	if r.Type(key) != t {
		return nil
	}
	c := r.cell(key, t, []byte(e), false)
	if c == nil || !c.Live() {
		return nil
	}
	return c
}

// HGet is HGET key field.
func (r *Replica) HGet(key, field string) (string, bool, error) {
	if err := r.collection(key, crdt.TypeHash); err != nil {
		return "", false, err
	}
	c := r.elem(key, crdt.TypeHash, field)
	if c == nil {
		return "", false, nil
	}
	v, _ := c.Value()
	return string(v), true, nil
}

// HIncrBy is HINCRBY key field n: a counter increment of the field.
func (r *Replica) HIncrBy(key, field string, n int64) (int64, error) {
	v, ok, err := r.HGet(key, field)
	if err != nil {
		return 0, err
	}
	var cur int64
	if ok {
		if cur, ok = crdt.ParseInt([]byte(v)); !ok {
			return 0, ErrHashNotInteger
		}
	}
	res := cur + n
	if (n > 0 && res < cur) || (n < 0 && res > cur) || res < crdt.CounterMin || res > crdt.CounterMax {
		return 0, ErrOverflow
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpHIncr, Elem: []byte(field), Int: n})
	return res, nil
}

// ZScore is ZSCORE key member.
func (r *Replica) ZScore(key, member string) (float64, bool, error) {
	if err := r.collection(key, crdt.TypeZSet); err != nil {
		return 0, false, err
	}
	c := r.elem(key, crdt.TypeZSet, member)
	if c == nil {
		return 0, false, nil
	}
	s, ok := c.Score()
	return s, ok, nil
}

// ZAdd is ZADD key score member: 1 if the member is new.
func (r *Replica) ZAdd(key string, score float64, member string) (int, error) {
	_, ok, err := r.ZScore(key, member)
	if err != nil {
		return 0, err
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpZAdd, Elem: []byte(member), Value: crdt.ScoreBytes(score + 0)})
	if ok {
		return 0, nil
	}
	return 1, nil
}

// ZIncrBy is ZINCRBY key incr member: it sends the exact difference of the
// new and the old score (an infinite result as a ZADD), and returns the
// new score as Redis computes it.
func (r *Replica) ZIncrBy(key string, incr float64, member string) (float64, error) {
	cur, ok, err := r.ZScore(key, member)
	if err != nil {
		return 0, err
	}
	if !ok {
		cur = 0
	}
	res := cur + incr
	if math.IsNaN(res) {
		return 0, errors.New("ERR resulting score is not a number (NaN)")
	}
	if math.IsInf(res, 0) || math.IsInf(cur, 0) {
		r.Emit(key, crdt.Op{Kind: crdt.OpZAdd, Elem: []byte(member), Value: crdt.ScoreBytes(res)})
	} else {
		r.Emit(key, crdt.Op{Kind: crdt.OpZIncr, Elem: []byte(member), Float: crdt.ScoreDelta(cur, res)})
	}
	return res, nil
}

// ZRem is ZREM key member: 1 if the member was removed.
func (r *Replica) ZRem(key, member string) (int, error) {
	_, ok, err := r.ZScore(key, member)
	if err != nil || !ok {
		return 0, err
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpZRem, Elem: []byte(member)})
	return 1, nil
}

// SPop removes member (the member a random SPOP chose): an observed remove.
func (r *Replica) SPop(key, member string) (bool, error) {
	if err := r.collection(key, crdt.TypeSet); err != nil {
		return false, err
	}
	if r.elem(key, crdt.TypeSet, member) == nil {
		return false, nil
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpSRem, Elem: []byte(member)})
	return true, nil
}

// Scored is a sorted-set member with its score.
type Scored struct {
	Member string
	Score  float64
}

// ZRange returns the members of sorted set key in (score, member) order.
func (r *Replica) ZRange(key string) []Scored {
	if r.Type(key) != crdt.TypeZSet {
		return nil
	}
	var out []Scored
	for _, m := range r.Members(key, crdt.TypeZSet) {
		s, _ := r.Cells[key][crdt.TypeZSet][m].Score()
		out = append(out, Scored{m, s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score < out[j].Score
		}
		return out[i].Member < out[j].Member
	})
	return out
}

// HGetAll returns hash key's fields and values, sorted by field.
func (r *Replica) HGetAll(key string) map[string]string {
	if r.Type(key) != crdt.TypeHash {
		return nil
	}
	out := map[string]string{}
	for _, f := range r.Members(key, crdt.TypeHash) {
		v, _ := r.Cells[key][crdt.TypeHash][f].Value()
		out[f] = string(v)
	}
	return out
}

// SMembers returns set key's members, sorted.
func (r *Replica) SMembers(key string) []string {
	if r.Type(key) != crdt.TypeSet {
		return nil
	}
	return r.Members(key, crdt.TypeSet)
}
