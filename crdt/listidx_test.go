package crdt

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// memKV is a map KV for tests; it copies what it stores and counts calls.
type memKV struct {
	m                map[string][]byte
	gets, sets, dels int
	failAfter        int // fail every call after this many (0: never)
	calls            int
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

var errKV = fmt.Errorf("memkv: injected failure")

func (kv *memKV) fail() bool {
	kv.calls++
	return kv.failAfter > 0 && kv.calls > kv.failAfter
}

func (kv *memKV) Get(k []byte) ([]byte, bool, error) {
	kv.gets++
	if kv.fail() {
		return nil, false, errKV
	}
	v, ok := kv.m[string(k)]
	return v, ok, nil
}

func (kv *memKV) Set(k, v []byte) error {
	kv.sets++
	if kv.fail() {
		return errKV
	}
	kv.m[string(k)] = append([]byte(nil), v...)
	return nil
}

func (kv *memKV) Delete(k []byte) error {
	kv.dels++
	if kv.fail() {
		return errKV
	}
	delete(kv.m, string(k))
	return nil
}

func (kv *memKV) clone() *memKV {
	c := newMemKV()
	for k, v := range kv.m {
		c.m[k] = v
	}
	return c
}

var idxMetaKey = []byte("S")

// tb is what the test helpers need of *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// openIdx opens a standalone index stored in kv (its metadata under "S").
func openIdx(t tb, kv KV, leafMax, kidsMax int) *seqIndex {
	t.Helper()
	st := &kvErr{kv: kv}
	var m seqMeta
	if b, ok := st.get(idxMetaKey); ok {
		d := decoder{b: b}
		m = d.seqMeta()
		if d.err != nil {
			t.Fatalf("index meta: %v", d.err)
		}
	}
	s := newSeqIndex(st, m)
	s.leafMax, s.kidsMax = leafMax, kidsMax
	return s
}

func flushIdx(t tb, s *seqIndex) {
	t.Helper()
	s.flush()
	s.st.set(idxMetaKey, s.m.marshal(nil))
	if s.st.err != nil {
		t.Fatal(s.st.err)
	}
}

type idxEntry struct {
	id   ElemID
	live bool
}

// TestSeqIndex_Model checks the index against a slice under random
// inserts, liveness changes and removals, reopened from the KV at random
// points, with small nodes so that the tree is deep.
func TestSeqIndex_Model(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		leafMax := rapid.IntRange(4, 9).Draw(t, "leafMax")
		kidsMax := rapid.IntRange(3, 6).Draw(t, "kidsMax")
		kv := newMemKV()
		s := openIdx(t, kv, leafMax, kidsMax)
		var model []idxEntry
		next := uint64(1)
		steps := rapid.IntRange(1, 250).Draw(t, "steps")
		for step := 0; step < steps; step++ {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op <= 4 || len(model) == 0: // insert
				id := ElemID{Origin: ReplicaID(next%3 + 1), Seq: next, Idx: 1}
				next++
				live := rapid.IntRange(0, 3).Draw(t, "live") > 0
				var at int
				switch rapid.IntRange(0, 3).Draw(t, "where") {
				case 0:
					at = 0
				case 1:
					at = len(model)
				default:
					at = rapid.IntRange(0, len(model)).Draw(t, "at")
				}
				// Express the position as in the list: after the entry
				// before it (or the front), or before the one at it.
				if at == 0 || (at < len(model) && rapid.Bool().Draw(t, "before")) {
					if at == 0 && (len(model) == 0 || rapid.Bool().Draw(t, "front")) {
						s.insert(ElemID{}, false, id, live)
					} else {
						s.insert(model[at].id, true, id, live)
					}
				} else {
					s.insert(model[at-1].id, false, id, live)
				}
				model = append(model[:at], append([]idxEntry{{id, live}}, model[at:]...)...)
			case op <= 6:
				i := rapid.IntRange(0, len(model)-1).Draw(t, "i")
				model[i].live = !model[i].live
				s.SetLive(model[i].id, model[i].live)
			default:
				i := rapid.IntRange(0, len(model)-1).Draw(t, "i")
				if rapid.IntRange(0, 2).Draw(t, "end") == 0 {
					i = 0 // a queue drains from the front
				}
				s.Remove(model[i].id)
				model = append(model[:i], model[i+1:]...)
			}
			if s.st.err != nil {
				t.Fatalf("step %d: %v", step, s.st.err)
			}
			if rapid.IntRange(0, 4).Draw(t, "reopen") == 0 {
				flushIdx(t, s)
				s = openIdx(t, kv, leafMax, kidsMax)
			}
			checkIdx(t, s, model)
		}
		// Everything removed leaves nothing stored but the metadata.
		for _, e := range model {
			s.Remove(e.id)
		}
		flushIdx(t, s)
		if len(kv.m) != 1 {
			t.Fatalf("empty index left %d records", len(kv.m))
		}
	})
}

func checkIdx(t *rapid.T, s *seqIndex, model []idxEntry) {
	ids, live, err := s.check()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(model) {
		t.Fatalf("index has %d entries, model %d", len(ids), len(model))
	}
	var liveIDs []ElemID
	for i, e := range model {
		if ids[i] != e.id || live[i] != e.live {
			t.Fatalf("entry %d: %v/%v, want %v/%v", i, ids[i], live[i], e.id, e.live)
		}
		if e.live {
			liveIDs = append(liveIDs, e.id)
		}
	}
	if s.Len() != int64(len(liveIDs)) {
		t.Fatalf("Len %d, want %d", s.Len(), len(liveIDs))
	}
	// At and Rank at a few places (all of them would make the test
	// quadratic).
	ranks := make([]int64, len(model))
	var r int64
	for i, e := range model {
		ranks[i] = r
		if e.live {
			r++
		}
	}
	for n := 0; n < 6 && len(model) > 0; n++ {
		i := rapid.IntRange(0, len(model)-1).Draw(t, "probe")
		e := model[i]
		if got, l := s.Rank(e.id); got != ranks[i] || l != e.live {
			t.Fatalf("Rank(%v) = %d/%v, want %d/%v", e.id, got, l, ranks[i], e.live)
		}
		if e.live {
			if got, ok := s.At(ranks[i]); !ok || got != e.id {
				t.Fatalf("At(%d) = %v, want %v", ranks[i], got, e.id)
			}
		}
	}
	if len(liveIDs) > 0 {
		if f, _ := s.First(); f != liveIDs[0] {
			t.Fatalf("First = %v, want %v", f, liveIDs[0])
		}
		if l, _ := s.Last(); l != liveIDs[len(liveIDs)-1] {
			t.Fatalf("Last = %v, want %v", l, liveIDs[len(liveIDs)-1])
		}
		if rapid.IntRange(0, 3).Draw(t, "scan") > 0 {
			return
		}
		from := rapid.IntRange(0, len(liveIDs)-1).Draw(t, "from")
		var got []ElemID
		s.Scan(int64(from), false, func(id ElemID) bool { got = append(got, id); return true })
		if fmt.Sprint(got) != fmt.Sprint(liveIDs[from:]) {
			t.Fatalf("Scan(%d) = %v, want %v", from, got, liveIDs[from:])
		}
		got = nil
		s.Scan(int64(from), true, func(id ElemID) bool { got = append(got, id); return true })
		var want []ElemID
		for i := from; i >= 0; i-- {
			want = append(want, liveIDs[i])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("reverse Scan(%d) = %v, want %v", from, got, want)
		}
	} else if _, ok := s.First(); ok {
		t.Fatal("First on an empty index")
	}
}
