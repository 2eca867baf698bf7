package crdt_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/crdt/crdttest"
)

// Element rules (hashes, sets, sorted sets) by property: random element
// effects from 3 replicas, delivered in random orders with duplicates,
// converge; with the order known (a sync after every command) the state is
// what plain Redis shows.

var (
	elemKeys   = []string{"a", "b"}
	elemNames  = []string{"x", "y", "z", ""}
	elemIncrs  = []float64{0.1, 1.5, -2.25, 1e-3, 3, -0.1, 1e15}
	elemScores = []float64{0, 1, 2.5, -1, 0.1, math.Inf(1)}
)

// elemCommand runs one random collection command at r and returns a
// rendering of its reply.
func elemCommand(t *rapid.T, r *crdttest.Replica) (string, string) {
	key := rapid.SampledFrom(elemKeys).Draw(t, "key")
	e := rapid.SampledFrom(elemNames).Draw(t, "elem")
	cmd := rapid.SampledFrom([]string{
		"hset", "hset", "hdel", "hincrby", "sadd", "sadd", "srem", "spop",
		"zadd", "zadd", "zincrby", "zincrby", "zrem", "del", "set",
	}).Draw(t, "cmd")
	desc := fmt.Sprintf("I%d %s %s %q", r.ID, cmd, key, e)
	var reply any
	var err error
	switch cmd {
	case "hset":
		v := rapid.SampledFrom([]string{"v", "7", "w"}).Draw(t, "value")
		desc += " " + v
		reply, err = r.HSet(key, e, v)
	case "hdel":
		reply, err = r.HDel(key, e)
	case "hincrby":
		n := rapid.Int64Range(-5, 5).Draw(t, "n")
		desc += fmt.Sprint(" ", n)
		reply, err = r.HIncrBy(key, e, n)
	case "sadd":
		reply, err = r.SAdd(key, e)
	case "srem":
		reply, err = r.SRem(key, e)
	case "spop":
		reply, err = r.SPop(key, e)
	case "zadd":
		s := rapid.SampledFrom(elemScores).Draw(t, "score")
		desc += fmt.Sprint(" ", s)
		reply, err = r.ZAdd(key, s, e)
	case "zincrby":
		d := rapid.SampledFrom(elemIncrs).Draw(t, "incr")
		desc += fmt.Sprint(" ", d)
		reply, err = r.ZIncrBy(key, d, e)
	case "zrem":
		reply, err = r.ZRem(key, e)
	case "del":
		reply = r.Del(key)
	case "set":
		r.Set(key, "s", 0, false)
		reply = "OK"
	}
	if err != nil {
		return desc, err.Error()
	}
	return desc, fmt.Sprint(reply)
}

// collView renders what reads of the collections of every key show at r.
func collView(r *crdttest.Replica) string {
	var b strings.Builder
	for _, k := range elemKeys {
		fmt.Fprintf(&b, "%s:%s", k, r.Type(k))
		switch r.Type(k) {
		case crdt.TypeString:
			v, _ := r.Get(k)
			fmt.Fprintf(&b, " %q", v)
		case crdt.TypeHash:
			all := r.HGetAll(k)
			fs := make([]string, 0, len(all))
			for f := range all {
				fs = append(fs, f)
			}
			sort.Strings(fs)
			for _, f := range fs {
				fmt.Fprintf(&b, " %q=%q", f, all[f])
			}
		case crdt.TypeSet:
			fmt.Fprintf(&b, " %q", r.SMembers(k))
		case crdt.TypeZSet:
			for _, x := range r.ZRange(k) {
				fmt.Fprintf(&b, " %q=%v", x.Member, x.Score)
			}
		}
		key := r.Key(k)
		for _, t := range []crdt.Type{crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet} {
			if n := int64(len(r.Members(k, t))); n != key.Len(t) {
				fmt.Fprintf(&b, " LEN(%s)=%d but %d live", t, key.Len(t), n)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestElem_Convergence(t *testing.T) {
	for _, f := range []features{{}, {gc: true}, {partitions: true, skew: true}, {gc: true, skew: true, mergeHLC: true}} {
		t.Run(f.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				s := newSim(t, f)
				steps := rapid.IntRange(10, 120).Draw(t, "steps")
				for i := 0; i < steps; i++ {
					switch rapid.IntRange(0, 7).Draw(t, "step") {
					case 0, 1, 2, 3:
						desc, got := elemCommand(t, s.R(crdt.ReplicaID(rapid.IntRange(1, 3).Draw(t, "replica"))))
						t.Logf("%s -> %s", desc, got)
					case 4, 5:
						if p := s.Pending(); len(p) > 0 {
							l := p[pick(t, "link")(len(p))]
							t.Logf("deliver %d->%d", l.From, l.To)
							s.Deliver(l)
						}
					case 6:
						duplicate(t, s)
					case 7:
						s.Now += rapid.Int64Range(0, 20).Draw(t, "advance")
					}
				}
				s.Sync(pick(t, "final"))
				want := collView(s.R(1))
				if strings.Contains(want, "LEN(") {
					t.Fatalf("I1 element counts are wrong:\n%s", want)
				}
				for _, r := range s.Replicas[1:] {
					if got := collView(r); got != want {
						t.Fatalf("I%d differs from I1:\n%s\nI1:\n%s", r.ID, got, want)
					}
				}
				if !f.gc {
					checkSameBytes(t, s)
				}
			})
		})
	}
}

// model is plain Redis: each key a string, hash, set or sorted set.
type model struct {
	str    map[string]string
	hash   map[string]map[string]string
	set    map[string]map[string]bool
	zset   map[string]map[string]float64
	hcount map[string]map[string]bool // fields last written by HINCRBY
}

func newModel() *model {
	return &model{str: map[string]string{}, hash: map[string]map[string]string{},
		set: map[string]map[string]bool{}, zset: map[string]map[string]float64{}}
}

func (m *model) typeOf(k string) crdt.Type {
	switch {
	case m.str[k] != "":
		return crdt.TypeString
	case len(m.hash[k]) > 0:
		return crdt.TypeHash
	case len(m.set[k]) > 0:
		return crdt.TypeSet
	case len(m.zset[k]) > 0:
		return crdt.TypeZSet
	}
	return crdt.TypeNone
}

const wrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"

// apply runs a command (as elemCommand describes it) on the model.
func (m *model) apply(desc string) string {
	var id int
	var cmd, key, e, arg string
	fields := strings.SplitN(desc, " ", 5)
	fmt.Sscanf(fields[0], "I%d", &id)
	cmd, key = fields[1], fields[2]
	fmt.Sscanf(fields[3], "%q", &e)
	if len(fields) > 4 {
		arg = fields[4]
	}
	typ := m.typeOf(key)
	need := map[string]crdt.Type{"hset": crdt.TypeHash, "hdel": crdt.TypeHash, "hincrby": crdt.TypeHash,
		"sadd": crdt.TypeSet, "srem": crdt.TypeSet, "spop": crdt.TypeSet,
		"zadd": crdt.TypeZSet, "zincrby": crdt.TypeZSet, "zrem": crdt.TypeZSet}[cmd]
	if need != crdt.TypeNone && typ != crdt.TypeNone && typ != need {
		return wrongType
	}
	switch cmd {
	case "hset":
		h := m.hash[key]
		if h == nil {
			h = map[string]string{}
			m.hash[key] = h
		}
		_, had := h[e]
		h[e] = arg
		if had {
			return "0"
		}
		return "1"
	case "hdel":
		if _, ok := m.hash[key][e]; ok {
			delete(m.hash[key], e)
			return "1"
		}
		return "0"
	case "hincrby":
		var n int64
		fmt.Sscan(arg, &n)
		h := m.hash[key]
		if h == nil {
			h = map[string]string{}
			m.hash[key] = h
		}
		cur := int64(0)
		if v, ok := h[e]; ok {
			c, ok := crdt.ParseInt([]byte(v))
			if !ok {
				return crdttest.ErrHashNotInteger.Error()
			}
			cur = c
		}
		h[e] = fmt.Sprint(cur + n)
		return h[e]
	case "sadd":
		s := m.set[key]
		if s == nil {
			s = map[string]bool{}
			m.set[key] = s
		}
		had := s[e]
		s[e] = true
		if had {
			return "0"
		}
		return "1"
	case "srem", "spop":
		had := m.set[key][e]
		delete(m.set[key], e)
		if cmd == "spop" {
			return fmt.Sprint(had)
		}
		if had {
			return "1"
		}
		return "0"
	case "zadd":
		var s float64
		fmt.Sscan(arg, &s)
		z := m.zset[key]
		if z == nil {
			z = map[string]float64{}
			m.zset[key] = z
		}
		_, had := z[e]
		z[e] = s + 0
		if had {
			return "0"
		}
		return "1"
	case "zincrby":
		var d float64
		fmt.Sscan(arg, &d)
		z := m.zset[key]
		if z == nil {
			z = map[string]float64{}
			m.zset[key] = z
		}
		res := z[e] + d
		if math.IsNaN(res) {
			return "ERR resulting score is not a number (NaN)"
		}
		z[e] = res
		return fmt.Sprint(res)
	case "zrem":
		if _, ok := m.zset[key][e]; ok {
			delete(m.zset[key], e)
			return "1"
		}
		return "0"
	case "del":
		if typ == crdt.TypeNone {
			return "0"
		}
		m.clear(key)
		return "1"
	case "set":
		m.clear(key)
		m.str[key] = "s"
		return "OK"
	}
	panic(desc)
}

func (m *model) clear(k string) {
	delete(m.str, k)
	delete(m.hash, k)
	delete(m.set, k)
	delete(m.zset, k)
}

// view renders the model like collView.
func (m *model) view() string {
	var b strings.Builder
	for _, k := range elemKeys {
		typ := m.typeOf(k)
		fmt.Fprintf(&b, "%s:%s", k, typ)
		switch typ {
		case crdt.TypeString:
			fmt.Fprintf(&b, " %q", m.str[k])
		case crdt.TypeHash:
			fs := make([]string, 0)
			for f := range m.hash[k] {
				fs = append(fs, f)
			}
			sort.Strings(fs)
			for _, f := range fs {
				fmt.Fprintf(&b, " %q=%q", f, m.hash[k][f])
			}
		case crdt.TypeSet:
			var ms []string
			for x := range m.set[k] {
				ms = append(ms, x)
			}
			sort.Strings(ms)
			fmt.Fprintf(&b, " %q", ms)
		case crdt.TypeZSet:
			var list []crdttest.Scored
			for x, s := range m.zset[k] {
				list = append(list, crdttest.Scored{Member: x, Score: s})
			}
			sort.Slice(list, func(i, j int) bool {
				if list[i].Score != list[j].Score {
					return list[i].Score < list[j].Score
				}
				return list[i].Member < list[j].Member
			})
			for _, x := range list {
				fmt.Fprintf(&b, " %q=%v", x.Member, x.Score)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestElem_SequentialModel: commands at random regions, each made after
// seeing every earlier one, reply and leave the state exactly as plain
// Redis (sorted-set increments included: the effect carries the exact
// difference of the scores).
func TestElem_SequentialModel(t *testing.T) {
	for _, f := range []features{{}, {gc: true}} {
		t.Run(f.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				s := newSim(t, f)
				m := newModel()
				steps := rapid.IntRange(1, 80).Draw(t, "steps")
				for i := 0; i < steps; i++ {
					r := s.R(crdt.ReplicaID(rapid.IntRange(1, 3).Draw(t, "replica")))
					desc, got := elemCommand(t, r)
					t.Logf("%s -> %s", desc, got)
					want := m.apply(desc)
					if got != want {
						t.Fatalf("%s = %s, Redis: %s", desc, got, want)
					}
					s.Sync(pick(t, "order"))
					s.Now++
					for _, rr := range s.Replicas {
						if v := collView(rr); v != m.view() {
							t.Fatalf("after %s, I%d shows\n%s\nRedis:\n%s", desc, rr.ID, v, m.view())
						}
					}
				}
			})
		})
	}
}

// TestElem_Scenarios are the sorted-set and set rules worked by hand.
func TestElem_Scenarios(t *testing.T) {
	t.Run("Z-5 ZREM vs concurrent ZINCRBY", func(t *testing.T) {
		s := crdttest.New(2, t0)
		i1, i2 := s.R(1), s.R(2)
		i1.ZAdd("Z", 4.1, "x")
		s.Sync(nil)
		i1.ZRem("Z", "x")
		if got, _ := i2.ZIncrBy("Z", 2.0, "x"); got != 6.1 {
			t.Fatalf("ZINCRBY = %v", got)
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			if got, ok, _ := r.ZScore("Z", "x"); !ok || got != 2 {
				t.Fatalf("I%d ZSCORE = %v %v, want 2", r.ID, got, ok)
			}
		}
	})
	t.Run("concurrent ZINCRBY sum on a ZADD base", func(t *testing.T) {
		s := crdttest.New(3, t0)
		s.R(1).ZAdd("lb", 10, "alice")
		s.Sync(nil)
		s.R(1).ZIncrBy("lb", 5, "alice")
		s.R(2).ZIncrBy("lb", 3, "alice")
		s.R(3).ZAdd("lb", 100, "alice") // resets what it saw (nothing new)
		s.Sync(nil)
		for _, r := range s.Replicas {
			if got, _, _ := r.ZScore("lb", "alice"); got != 108 {
				t.Fatalf("I%d ZSCORE = %v, want 108", r.ID, got)
			}
		}
	})
	t.Run("DEL vs concurrent HINCRBY and SADD", func(t *testing.T) {
		s := crdttest.New(2, t0)
		i1, i2 := s.R(1), s.R(2)
		i1.HIncrBy("h", "n", 5)
		i1.SAdd("s", "a")
		s.Sync(nil)
		i1.Del("h")
		i1.Del("s")
		i2.HIncrBy("h", "n", 2)
		i2.SAdd("s", "b")
		s.Sync(nil)
		for _, r := range s.Replicas {
			if v, _, _ := r.HGet("h", "n"); v != "2" {
				t.Fatalf("I%d HGET = %q, want 2", r.ID, v)
			}
			if got := r.SMembers("s"); fmt.Sprint(got) != "[b]" {
				t.Fatalf("I%d SMEMBERS = %v", r.ID, got)
			}
		}
	})
	t.Run("SPOP at least once", func(t *testing.T) {
		s := crdttest.New(2, t0)
		s.R(1).SAdd("q", "job")
		s.Sync(nil)
		p1, _ := s.R(1).SPop("q", "job")
		p2, _ := s.R(2).SPop("q", "job")
		if !p1 || !p2 {
			t.Fatalf("pops %v %v", p1, p2)
		}
		s.Sync(nil)
		for _, r := range s.Replicas {
			if r.Type("q") != crdt.TypeNone {
				t.Fatalf("I%d still has q", r.ID)
			}
		}
	})
}

// TestReset_Codec: pending resets survive their encoding.
func TestReset_Codec(t *testing.T) {
	ev := &crdt.Event{Observed: crdt.Clock{{Origin: 1, Seq: 5}, {Origin: 3, Seq: 2}}}
	op := &crdt.Op{Kind: crdt.OpDelete, Elems: []crdt.ElemShares{
		{Elem: []byte("b"), Shares: []crdt.Share{{Origin: 1, Start: 2, Seq: 4, Int: 7}}},
		{Elem: []byte(""), Shares: []crdt.Share{{Origin: 3, Start: 1, Seq: 1, Float: crdt.ScoreDelta(0, 1.5)}}},
	}}
	rs := []crdt.Reset{crdt.NewReset(ev, op, crdt.TypeZSet, crdt.TypeHash), {Types: []crdt.Type{crdt.TypeSet}}}
	b := crdt.MarshalResets(nil, rs)
	got, err := crdt.UnmarshalResets(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(crdt.MarshalResets(nil, got)) != string(b) {
		t.Fatalf("round trip differs: %+v", got)
	}
	if !got[0].Covers(crdt.TypeHash) || got[0].Covers(crdt.TypeSet) {
		t.Fatalf("types %v", got[0].Types)
	}
	if sh := got[0].SharesOf([]byte("b")); len(sh) != 1 || sh[0].Int != 7 {
		t.Fatalf("shares of b %+v", sh)
	}
	if sh := got[0].SharesOf([]byte("")); len(sh) != 1 {
		t.Fatalf("shares of \"\" %+v", sh)
	}
	for i := 0; i < len(b); i++ {
		if _, err := crdt.UnmarshalResets(b[:i]); err == nil {
			t.Fatalf("truncated encoding (%d of %d bytes) decoded", i, len(b))
		}
	}
}
