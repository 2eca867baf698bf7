package crdt_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/crdt/crdttest"
)

func genFloat(t *rapid.T, label string) crdt.Float {
	return crdt.Float{
		Mant: rapid.Uint64().Draw(t, label+"mant"),
		Exp:  rapid.Int32Range(-200, 200).Draw(t, label+"exp"),
		Neg:  rapid.Bool().Draw(t, label+"neg"),
	}
}

func genShares(t *rapid.T, label string) []crdt.Share {
	var ss []crdt.Share
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, label+"n"); i < n; i++ {
		ss = append(ss, crdt.Share{
			Origin: crdt.ReplicaID(rapid.Uint32().Draw(t, label+"origin")),
			Start:  rapid.Uint64().Draw(t, label+"start"),
			Seq:    rapid.Uint64().Draw(t, label+"seq"),
			HLC:    crdt.HLC(rapid.Uint64().Draw(t, label+"hlc")),
			Int:    rapid.Int64().Draw(t, label+"int"),
			Float:  genFloat(t, label),
		})
	}
	return ss
}

func genDot(t *rapid.T, label string) crdt.Dot {
	return crdt.Dot{Origin: crdt.ReplicaID(rapid.Uint32().Draw(t, label+"o")), Seq: rapid.Uint64().Draw(t, label+"s")}
}

func genType(t *rapid.T) crdt.Type {
	return crdt.Type(rapid.Uint8Range(0, uint8(crdt.TypeList)).Draw(t, "type"))
}

// genKey draws an arbitrary Key: the codec must carry any field values, not
// only those merges produce. Empty slices are nil, as decoding gives them.
func genKey(t *rapid.T) *crdt.Key {
	k := &crdt.Key{
		VV:      genClock(t, "vv"),
		Del:     genClock(t, "del"),
		TTLTomb: genClock(t, "ttltomb"),
	}
	for ty := crdt.TypeHash; ty <= crdt.TypeList; ty++ {
		k.AddLen(ty, rapid.Int64().Draw(t, "len"))
	}
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "ntypedel"); i < n; i++ {
		k.TypeDel = append(k.TypeDel, crdt.TypeTomb{Type: genType(t), Ctx: genClock(t, "ctx")})
	}
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nttl"); i < n; i++ {
		k.TTLs = append(k.TTLs, crdt.TTL{Dot: genDot(t, "ttl"), HLC: crdt.HLC(rapid.Uint64().Draw(t, "hlc")), At: rapid.Int64().Draw(t, "at")})
	}
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nreg"); i < n; i++ {
		r := crdt.Reg{Dot: genDot(t, "reg"), HLC: crdt.HLC(rapid.Uint64().Draw(t, "hlc"))}
		if v := rapid.SliceOfN(rapid.Byte(), 0, 20).Draw(t, "value"); len(v) > 0 {
			r.Value = v
		}
		k.Str.Regs = append(k.Str.Regs, r)
	}
	k.Str.Shares = genShares(t, "shares")
	k.Str.Bases = genShares(t, "bases")
	k.Str.Tomb = genClock(t, "strtomb")
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nwrites"); i < n; i++ {
		d := genDot(t, "write")
		k.Writes = append(k.Writes, crdt.TypeWrite{
			Type: genType(t), Origin: d.Origin, Seq: d.Seq,
			HLC: crdt.HLC(rapid.Uint64().Draw(t, "hlc")),
		})
	}
	return k
}

// TestKey_MarshalRoundTrip: UnmarshalKey(Marshal(k)) is k, encodes to the
// same bytes, does not alias its input, and Marshal appends.
func TestKey_MarshalRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := genKey(t)
		prefix := []byte("prefix")
		b := k.Marshal(append([]byte(nil), prefix...))
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("Marshal did not append")
		}
		b = b[len(prefix):]
		got, err := crdt.UnmarshalKey(b)
		if err != nil {
			t.Fatalf("UnmarshalKey: %v", err)
		}
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("round trip:\n%+v\n%+v", *k, *got)
		}
		if b2 := got.Marshal(nil); !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs")
		}
		if !got.Equal(k) {
			t.Fatalf("Equal is false after a round trip")
		}
		for i := range b {
			b[i] ^= 0xff
		}
		if !reflect.DeepEqual(got, k) {
			t.Fatalf("decoded key aliases the input")
		}
	})
}

// TestCell_MarshalRoundTrip: the same for cells alone.
func TestCell_MarshalRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genKey(t).Str
		b := crdt.MarshalCell(nil, &c)
		got, err := crdt.UnmarshalCell(b)
		if err != nil {
			t.Fatalf("UnmarshalCell: %v", err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n%+v\n%+v", c, got)
		}
		if _, err := crdt.UnmarshalCell(append(b, 0)); !errors.Is(err, crdt.ErrCorrupt) {
			t.Fatalf("trailing byte: %v", err)
		}
	})
}

// TestKey_MarshalDeterministic: a Clone encodes identically, and so do two
// replicas that applied the same events in different orders (see also
// TestKey_OrderIndependence); a state built by merges round-trips.
func TestKey_MarshalDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := features{counters: true, ttl: true, collections: true}
		s := newSim(t, f)
		runProgram(t, s, f)
		for _, r := range s.Replicas {
			for name, k := range r.Keys {
				b := k.Marshal(nil)
				if !bytes.Equal(k.Clone().Marshal(nil), b) {
					t.Fatalf("Clone encodes differently")
				}
				got, err := crdt.UnmarshalKey(b)
				if err != nil {
					t.Fatalf("UnmarshalKey: %v", err)
				}
				if !bytes.Equal(got.Marshal(nil), b) {
					t.Fatalf("re-encoding differs")
				}
				v1, v2 := r.View(name, s.Now), viewOf(got, s.Now)
				v1.Members = ""
				if v1 != v2 {
					t.Fatalf("decoded state reads differently: %+v %+v", v1, v2)
				}
			}
		}
	})
}

func viewOf(k *crdt.Key, now int64) crdttest.View {
	v := crdttest.View{Type: k.Type(now)}
	for t := crdt.TypeHash; t <= crdt.TypeList; t++ {
		v.Lens[t] = k.Len(t)
	}
	if b, ok := k.String(now); ok {
		v.Value = string(b)
	}
	v.ExpireAt, v.Owner = k.Expiry()
	return v
}

// TestKey_Clone: a Clone shares no memory with its source.
func TestKey_Clone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := genKey(t)
		want := k.Marshal(nil)
		c := k.Clone()
		ev := &crdt.Event{Dot: crdt.Dot{Origin: 1, Seq: k.VV.Get(1) + 1}, HLC: 1, Observed: k.VV.Clone(), Ops: []crdt.Op{
			{Kind: crdt.OpSet, Value: []byte("x"), Shares: k.ObservedShares()},
			{Kind: crdt.OpIncr, Int: 1, Start: 0},
			{Kind: crdt.OpExpire, At: 5},
			{Kind: crdt.OpDeleteType, Type: crdt.TypeSet},
		}}
		if ev.Dot.Seq == 0 {
			return // VV at the maximum sequence
		}
		c.Apply(ev, crdt.Clock{{Origin: 1, Seq: ev.Dot.Seq}})
		c.NoteWrite(crdt.TypeHash, ev)
		if got := k.Marshal(nil); !bytes.Equal(got, want) {
			t.Fatalf("changing the clone changed the source")
		}
		if (*crdt.Key)(nil).Clone() != nil {
			t.Fatalf("Clone(nil) not nil")
		}
	})
}

// TestUnmarshalKey_Corrupt: every strict prefix of an encoding, trailing
// bytes, an unknown version and absurd counts are ErrCorrupt.
func TestUnmarshalKey_Corrupt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := genKey(t).Marshal(nil)
		n := rapid.IntRange(0, len(b)-1).Draw(t, "prefix")
		if k, err := crdt.UnmarshalKey(b[:n]); !errors.Is(err, crdt.ErrCorrupt) || k != nil {
			t.Fatalf("prefix of %d/%d bytes: %v", n, len(b), err)
		}
		if _, err := crdt.UnmarshalKey(append(b, 0)); !errors.Is(err, crdt.ErrCorrupt) {
			t.Fatalf("trailing byte: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"version 0", []byte{0}},
		{"version 2", append([]byte{2}, (&crdt.Key{}).Marshal(nil)[1:]...)},
		{"huge clock count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"overlong varint", []byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"value longer than input", func() []byte {
			k := &crdt.Key{Str: crdt.Cell{Regs: []crdt.Reg{{Dot: crdt.Dot{Origin: 1, Seq: 1}, Value: []byte("abc")}}}}
			b := k.Marshal(nil)
			i := bytes.Index(b, []byte("abc"))
			b[i-1] = 100
			return b[:i+3]
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := crdt.UnmarshalKey(tc.b); !errors.Is(err, crdt.ErrCorrupt) || k != nil {
				t.Fatalf("UnmarshalKey(%x) = %v, %v", tc.b, k, err)
			}
		})
	}
	t.Run("float exponent out of range", func(t *testing.T) {
		for _, tc := range []struct {
			exp int32
			ok  bool
		}{
			{16320, true},  // long double max
			{-16508, true}, // smallest long double denormal
			{16384, true},  // room for sums beyond the range
			{-16573, true}, // room for differences
			{16385, false}, // formatting would print ~5000+ digits
			{-2_000_000, false},
			{math.MaxInt32, false},
			{math.MinInt32, false},
		} {
			k := &crdt.Key{Str: crdt.Cell{Shares: []crdt.Share{{Origin: 1, Start: 1, Seq: 1, Float: crdt.Float{Mant: 1 << 63, Exp: tc.exp}}}}}
			_, err := crdt.UnmarshalKey(k.Marshal(nil))
			if ok := err == nil; ok != tc.ok {
				t.Fatalf("share float exponent %d: %v", tc.exp, err)
			}
			if _, err := crdt.UnmarshalCell(crdt.MarshalCell(nil, &k.Str)); (err == nil) != tc.ok {
				t.Fatalf("cell float exponent %d: %v", tc.exp, err)
			}
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		for _, k := range []*crdt.Key{
			{Writes: []crdt.TypeWrite{{Type: crdt.TypeList + 1, Origin: 1, Seq: 1}}},
			{TypeDel: []crdt.TypeTomb{{Type: 0x30, Ctx: crdt.Clock{{Origin: 1, Seq: 1}}}}},
		} {
			if _, err := crdt.UnmarshalKey(k.Marshal(nil)); !errors.Is(err, crdt.ErrCorrupt) {
				t.Fatalf("%+v decoded: %v", k, err)
			}
		}
	})
	t.Run("empty key", func(t *testing.T) {
		k, err := crdt.UnmarshalKey((&crdt.Key{}).Marshal(nil))
		if err != nil || !k.Empty() {
			t.Fatalf("empty key: %v %+v", err, k)
		}
	})
}

// fuzzSeeds are encodings of states built by a fixed scenario.
func fuzzSeeds() [][]byte {
	s := crdttest.New(3, t0)
	s.R(1).Set("a", "hello", 5000, false)
	s.R(2).IncrBy("a", 3)
	s.R(3).IncrByFloat("b", "1.5")
	s.R(2).SAdd("b", "m")
	s.R(3).HSet("c", "f", "v")
	s.R(1).Del("b")
	s.R(3).PExpire("a", 9000)
	s.Sync(nil)
	s.R(2).Set("a", "x", 0, true)
	s.R(1).IncrBy("a", 1)
	var out [][]byte
	for _, r := range s.Replicas {
		for _, k := range r.Keys {
			out = append(out, k.Marshal(nil))
		}
	}
	return append(out, (&crdt.Key{}).Marshal(nil), []byte{1},
		// found by fuzzing: a write of type 0x30 made Type() index Lens out of range
		[]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x0100\x0200000000\xff"))
}

// FuzzUnmarshalKey: corrupt input never panics; what decodes re-encodes to
// a fixed point, and reading, cloning, applying to and collecting the
// decoded state do not panic either (the state may come from a damaged
// disk).
func FuzzUnmarshalKey(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(fuzzBody)
}

// fuzzBody is FuzzUnmarshalKey's property for one input.
func fuzzBody(t *testing.T, b []byte) {
	if c, err := crdt.UnmarshalCell(b); err == nil {
		c.Value()
		c.Live()
		c.Score()
		if b2 := crdt.MarshalCell(nil, &c); len(b2) > len(b) {
			t.Fatalf("cell re-encoding grew: %x -> %x", b, b2)
		}
	}
	k, err := crdt.UnmarshalKey(b)
	if err != nil {
		if !errors.Is(err, crdt.ErrCorrupt) || k != nil {
			t.Fatalf("UnmarshalKey error %v with key %v", err, k)
		}
		return
	}
	b2 := k.Marshal(nil)
	k2, err := crdt.UnmarshalKey(b2)
	if err != nil {
		t.Fatalf("re-decoding %x: %v", b2, err)
	}
	if b3 := k2.Marshal(nil); !bytes.Equal(b2, b3) {
		t.Fatalf("encoding is not a fixed point:\n%x\n%x", b2, b3)
	}
	if !k.Clone().Equal(k) {
		t.Fatalf("Clone differs")
	}
	for _, now := range []int64{0, t0} {
		k.Type(now)
		k.String(now)
	}
	k.Expiry()
	k.Hidden()
	k.Empty()
	k.OwnShareStart(1)
	c := k.Clone()
	c.Apply(&crdt.Event{
		Dot: crdt.Dot{Origin: 1, Seq: c.VV.Get(1) + 1}, HLC: crdt.MakeHLC(t0, 0), Observed: c.VV.Clone(),
		Ops: []crdt.Op{{Kind: crdt.OpIncr, Int: 1, Start: c.OwnShareStart(1)}, {Kind: crdt.OpSet, Value: []byte("v"), Shares: c.ObservedShares()}},
	}, c.VV.Clone())
	c.String(t0)
	c.GC(crdt.Clock{{Origin: 1, Seq: 1 << 62}})
	c.Marshal(nil)
}
