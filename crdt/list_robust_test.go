package crdt

import (
	"errors"
	"testing"
)

// TestApplyList_KVErrors checks that a failing KV makes ApplyList and the
// reads return the KV's error, at whatever call it fails.
func TestApplyList_KVErrors(t *testing.T) {
	for fail := 1; fail < 60; fail++ {
		s := newLSim(1, 1)
		s.check = false
		r := s.r(1)
		r.rpush(t, "a", "b", "c")
		r.pop(t, true, 1)
		ops, err := r.open(t).AppendPush(nil, true, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, ListRemOp(ElemID{Origin: 1, Seq: 1, Idx: 2}))
		ev := &Event{Dot: Dot{Origin: 1, Seq: r.seq + 1}, HLC: r.hlc + 1, Key: []byte(listKey), Observed: r.k.VV.Clone(), Ops: ops}
		k := r.k.Clone()
		k.Apply(ev, nil)
		kv := r.kv.clone()
		kv.failAfter = fail
		err = ApplyList(kv, k, ev, ListOptions{Regions: 1})
		if err == nil {
			if kv.calls > fail {
				t.Fatalf("fail after %d: ApplyList made %d calls and returned nil", fail, kv.calls)
			}
			continue
		}
		if !errors.Is(err, errKV) {
			t.Fatalf("fail after %d: %v", fail, err)
		}
	}
	kv := newMemKV()
	kv.failAfter = 0
	kv.m[string(metaKey)] = []byte{listVersion}
	if _, err := OpenList(kv); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated metadata: %v", err)
	}
}

// FuzzList feeds corrupt records to a list: reads and applying events must
// fail with ErrCorrupt (or work), never panic or loop.
func FuzzList(f *testing.F) {
	s := newLSim(1, 1)
	s.check = false
	r := s.r(1)
	r.rpush(f, "a", "b", "c", "d")
	r.lpush(f, "x")
	r.pop(f, false, 1)
	for k, v := range r.kv.m {
		f.Add(k[0], v)
	}
	f.Fuzz(func(t *testing.T, table byte, b []byte) {
		kv := r.kv.clone()
		for k := range kv.m {
			if k[0] == table {
				kv.m[k] = b
			}
		}
		l, err := OpenList(kv)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if l.Len() > 1000 {
			return // a corrupt count: a scan would be long, not wrong
		}
		_ = l.Range(0, false, func(ElemID, []byte) bool { return true })
		_, _, _, _ = l.At(l.Len() / 2)
		_, _ = l.AppendPush(nil, true, []byte("y"))
		k := r.k.Clone()
		ops := []Op{ListRemOp(ElemID{Origin: 1, Seq: 1, Idx: 2}), {Kind: OpLInsert, Elem: ElemID{Idx: 1}.Bytes(), Anchor: ElemID{Origin: 1, Seq: 1, Idx: 3}.Bytes(), Counter: 1}}
		ev := &Event{Dot: Dot{Origin: 2, Seq: 1}, HLC: 1, Key: []byte(listKey), Observed: k.VV.Clone(), Ops: ops}
		k.Apply(ev, nil)
		if err := ApplyList(kv, k, ev, ListOptions{Regions: 1}); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
	})
}

// TestList_TypeChange checks OpDeleteType of a list: a write of another
// type removes the list elements its origin saw, and only those.
func TestList_TypeChange(t *testing.T) {
	s := newLSim(2, 2)
	i1, i2 := s.r(1), s.r(2)
	i1.rpush(t, "x")
	s.sync(t)
	i1.rpush(t, "y")
	i2.emit(t, []Op{{Kind: OpDeleteType, Type: TypeList}, {Kind: OpSet, Value: []byte("s")}})
	s.sync(t)
	wantList(t, "y", i1, i2)
	for _, r := range s.reps {
		if n := r.k.Len(TypeList); n != 1 {
			t.Errorf("region %d: Key.Len %d, want 1", r.id, n)
		}
		if v, ok := r.k.Str.Value(); !ok || string(v) != "s" {
			t.Errorf("region %d: string %q %v", r.id, v, ok)
		}
	}
	// The next write that sees both removes the loser for good.
	i2.emit(t, []Op{{Kind: OpDeleteType, Type: TypeList}, {Kind: OpSet, Value: []byte("t")}})
	s.sync(t)
	wantList(t, "", i1, i2)
}

// TestList_Reads checks the read methods on a small list.
func TestList_Reads(t *testing.T) {
	s := newLSim(1, 1)
	r := s.r(1)
	r.rpush(t, "a", "b", "c")
	l := r.open(t)
	a, _, _ := l.First()
	c, _, _ := l.Last()
	b, _, ok, err := l.At(1)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	for i, id := range []ElemID{a, b, c} {
		if v, ok, err := l.Value(id); !ok || err != nil || string(v) != string(rune('a'+i)) {
			t.Errorf("Value(%v) = %q, %v, %v", id, v, ok, err)
		}
		if n, ok, err := l.Index(id); !ok || err != nil || n != int64(i) {
			t.Errorf("Index(%v) = %d, %v, %v", id, n, ok, err)
		}
	}
	if _, _, ok, _ := l.At(3); ok {
		t.Error("At(3) on 3 elements")
	}
	r.pop(t, true, 1)
	l = r.open(t)
	if _, ok, _ := l.Value(a); ok {
		t.Error("Value of a popped element")
	}
	if _, ok, _ := l.Index(a); ok {
		t.Error("Index of a popped element")
	}
	if l.Empty() {
		t.Error("Empty with 2 elements")
	}
	r.pop(t, true, 2)
	if l = r.open(t); !l.Empty() || len(r.kv.m) != 0 {
		t.Errorf("drained list: Empty %v, %d records", l.Empty(), len(r.kv.m))
	}
	if _, ok, _ := l.First(); ok {
		t.Error("First of an empty list")
	}
}
