package crdttest

import (
	"errors"

	"github.com/georep/georep/crdt"
)

// Errors of the command layer, as Redis replies them.
var (
	ErrNotInteger = errors.New("ERR value is not an integer or out of range")
	ErrNotFloat   = errors.New("ERR value is not a valid float")
	ErrOverflow   = errors.New("ERR increment or decrement would overflow")
	ErrWrongType  = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")
)

// Get returns the visible string value of key at this replica's wall clock.
func (r *Replica) Get(key string) (string, bool) {
	v, ok := r.Key(key).String(r.Wall())
	return string(v), ok
}

// Type returns the visible type of key at this replica's wall clock.
func (r *Replica) Type(key string) crdt.Type { return r.Key(key).Type(r.Wall()) }

// PTTL returns the remaining time to live of key in ms, -1 without expiry,
// -2 when the key does not exist.
func (r *Replica) PTTL(key string) int64 {
	k := r.Key(key)
	now := r.Wall()
	if k.Type(now) == crdt.TypeNone {
		return -2
	}
	at, _ := k.Expiry()
	if at == 0 {
		return -1
	}
	return at - now
}

func (r *Replica) stringValue(key string) ([]byte, bool, error) {
	k := r.Key(key)
	now := r.Wall()
	switch k.Type(now) {
	case crdt.TypeNone:
		return nil, false, nil
	case crdt.TypeString:
		v, _ := k.String(now)
		return v, true, nil
	}
	return nil, false, ErrWrongType
}

// Set is SET key value [PX px | KEEPTTL]: px > 0 sets an expiry px ms from
// now, keepTTL keeps the current one, otherwise the TTL is cleared (a
// persist that beats concurrent expiries).
func (r *Replica) Set(key, value string, px int64, keepTTL bool) *Msg {
	ops := []crdt.Op{{Kind: crdt.OpSet, Value: []byte(value)}}
	switch {
	case px > 0:
		ops = append(ops, crdt.Op{Kind: crdt.OpExpire, At: r.Wall() + px})
	case !keepTTL:
		ops = append(ops, crdt.Op{Kind: crdt.OpExpire})
	}
	return r.Emit(key, ops...)
}

// Append is APPEND key s, replicated as a SET of the resulting value that
// keeps the TTL. It returns the new length.
func (r *Replica) Append(key, s string) (int, error) {
	v, _, err := r.stringValue(key)
	if err != nil {
		return 0, err
	}
	nv := string(v) + s
	r.Set(key, nv, 0, true)
	return len(nv), nil
}

// IncrBy is INCRBY key n, with the local checks of OSS Redis and the 59-bit
// counter range.
func (r *Replica) IncrBy(key string, n int64) (int64, error) {
	v, ok, err := r.stringValue(key)
	if err != nil {
		return 0, err
	}
	var cur int64
	if ok {
		if cur, ok = crdt.ParseInt(v); !ok {
			return 0, ErrNotInteger
		}
	}
	if n < crdt.CounterMin || n > crdt.CounterMax {
		return 0, ErrOverflow
	}
	res := cur + n
	if (n > 0 && res < cur) || (n < 0 && res > cur) || res < crdt.CounterMin || res > crdt.CounterMax {
		return 0, ErrOverflow
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpIncr, Int: n})
	return res, nil
}

// IncrByFloat is INCRBYFLOAT key incr; it returns the reply.
func (r *Replica) IncrByFloat(key, incr string) (string, error) {
	v, ok, err := r.stringValue(key)
	if err != nil {
		return "", err
	}
	var cur crdt.Float
	if ok {
		if cur, ok = crdt.ParseFloat(v); !ok {
			return "", ErrNotFloat
		}
	}
	inc, ok := crdt.ParseFloat([]byte(incr))
	if !ok {
		return "", ErrNotFloat
	}
	res := crdt.AddFloat(cur, inc)
	if crdt.FloatOverflows(res) {
		return "", errors.New("ERR increment would produce NaN or Infinity")
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpIncrFloat, Float: inc})
	return crdt.FormatFloat(res), nil
}

// Del is DEL key: it returns 1 if the key existed. An expired key is
// deleted (the write-path expiry) and counts 0.
func (r *Replica) Del(key string) int {
	k := r.Key(key)
	now := r.Wall()
	if k.Expired(now) {
		r.Emit(key, crdt.Op{Kind: crdt.OpDelete})
		return 0
	}
	if k.Type(now) == crdt.TypeNone {
		return 0
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpDelete})
	return 1
}

// PExpire is PEXPIRE key ms: 1 if the key exists. ms <= 0 deletes it.
func (r *Replica) PExpire(key string, ms int64) int {
	if r.Type(key) == crdt.TypeNone {
		return 0
	}
	if ms <= 0 {
		return r.Del(key)
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpExpire, At: r.Wall() + ms})
	return 1
}

// Persist is PERSIST key: 1 if the key exists and had an expiry.
func (r *Replica) Persist(key string) int {
	if r.Type(key) == crdt.TypeNone {
		return 0
	}
	if at, _ := r.Key(key).Expiry(); at == 0 {
		return 0
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpExpire})
	return 1
}

func (r *Replica) collection(key string, t crdt.Type) error {
	switch vt := r.Type(key); vt {
	case crdt.TypeNone, t:
		return nil
	}
	return ErrWrongType
}

// SAdd is SADD key member: 1 if member was added. Like Redis, it re-adds
// nothing for an existing member (no event).
func (r *Replica) SAdd(key, member string) (int, error) {
	if err := r.collection(key, crdt.TypeSet); err != nil {
		return 0, err
	}
	if r.Type(key) == crdt.TypeSet {
		if c := r.cell(key, crdt.TypeSet, []byte(member), false); c != nil && c.Live() {
			return 0, nil
		}
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpSAdd, Elem: []byte(member)})
	return 1, nil
}

// SRem is SREM key member: 1 if member was removed.
func (r *Replica) SRem(key, member string) (int, error) {
	if err := r.collection(key, crdt.TypeSet); err != nil {
		return 0, err
	}
	if r.Type(key) != crdt.TypeSet {
		return 0, nil
	}
	if c := r.cell(key, crdt.TypeSet, []byte(member), false); c == nil || !c.Live() {
		return 0, nil
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpSRem, Elem: []byte(member)})
	return 1, nil
}

// HSet is HSET key field value: 1 if the field is new.
func (r *Replica) HSet(key, field, value string) (int, error) {
	if err := r.collection(key, crdt.TypeHash); err != nil {
		return 0, err
	}
	n := 1
	if r.Type(key) == crdt.TypeHash {
		if c := r.cell(key, crdt.TypeHash, []byte(field), false); c != nil && c.Live() {
			n = 0
		}
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpHSet, Elem: []byte(field), Value: []byte(value)})
	return n, nil
}

// HDel is HDEL key field: 1 if the field was removed.
func (r *Replica) HDel(key, field string) (int, error) {
	if err := r.collection(key, crdt.TypeHash); err != nil {
		return 0, err
	}
	if r.Type(key) != crdt.TypeHash {
		return 0, nil
	}
	if c := r.cell(key, crdt.TypeHash, []byte(field), false); c == nil || !c.Live() {
		return 0, nil
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpHDel, Elem: []byte(field)})
	return 1, nil
}

// ActiveExpire is the expiry cycle: if this replica owns the winning
// expiry of key and it has passed, it deletes the key (an observed DEL) and
// returns true.
func (r *Replica) ActiveExpire(key string) bool {
	k := r.Key(key)
	if _, owner := k.Expiry(); owner != r.ID || !k.Expired(r.Wall()) {
		return false
	}
	r.Emit(key, crdt.Op{Kind: crdt.OpDelete})
	return true
}
