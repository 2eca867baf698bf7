package materializer

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/server"
	"github.com/georep/georep/server/servertest"
)

// newApplyNode returns a node with in-memory state and no Kafka: tests feed
// its apply loop records directly.
func newApplyNode(t testing.TB) *Node {
	t.Helper()
	db, err := openBadger("", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n := &Node{cfg: Config{Region: "test", InstanceID: 9, Partitions: 4, ApplyBatch: 2048}, log: zerolog.Nop(), origin: 9, db: db}
	for i := int32(0); i < 4; i++ {
		n.parts = append(n.parts, newPartition(i, defaultKeyCacheMB<<20))
	}
	return n
}

// feeder turns events into records of per-origin topics with offsets.
type feeder struct {
	n       *Node
	offsets map[string]int64
}

func newFeeder(n *Node) *feeder { return &feeder{n: n, offsets: map[string]int64{}} }

func (f *feeder) record(ev *crdt.Event) *kgo.Record {
	r := oplog.NewRecord(fmt.Sprint("r", ev.Dot.Origin), fmt.Sprint("t", ev.Dot.Origin), ev, f.n.cfg.Partitions)
	id := fmt.Sprint(r.Topic, "/", r.Partition)
	r.Offset = f.offsets[id]
	f.offsets[id]++
	return r
}

// apply applies evs (in order) in batches of at most batch events per
// partition.
func (f *feeder) apply(t testing.TB, batch int, evs ...*crdt.Event) {
	t.Helper()
	byPart := map[int32][]*kgo.Record{}
	var order []int32
	for _, ev := range evs {
		r := f.record(ev)
		if _, ok := byPart[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, p := range order {
		recs := byPart[p]
		for len(recs) > 0 {
			n := min(batch, len(recs))
			if err := f.n.applyBatch(f.n.parts[p], recs[:n]); err != nil {
				t.Fatal(err)
			}
			recs = recs[n:]
		}
	}
}

// dump renders what reads of keys show through v, canonically.
func dump(t testing.TB, v server.View, keys []string) string {
	t.Helper()
	var b strings.Builder
	now := v.Now()
	for _, key := range keys {
		k, err := v.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		typ := k.Type(now)
		fmt.Fprintf(&b, "%s %s", key, typ)
		switch typ {
		case crdt.TypeString:
			s, _ := k.String(now)
			fmt.Fprintf(&b, " %q", s)
		case crdt.TypeHash, crdt.TypeSet, crdt.TypeZSet:
			fmt.Fprintf(&b, " len=%d", k.Len(typ))
			var n int64
			err := v.ScanElems([]byte(key), typ, nil, func(elem []byte, c *crdt.Cell) bool {
				n++
				switch typ {
				case crdt.TypeHash:
					val, _ := c.Value()
					fmt.Fprintf(&b, " %q=%q", elem, val)
				case crdt.TypeSet:
					fmt.Fprintf(&b, " %q", elem)
				case crdt.TypeZSet:
					s, _ := c.Score()
					fmt.Fprintf(&b, " %q=%v", elem, s)
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != k.Len(typ) {
				fmt.Fprintf(&b, " LEN-MISMATCH(%d)", n)
			}
			b.WriteString(" <")
			err = v.ScanElemsReverse([]byte(key), typ, nil, func(elem []byte, c *crdt.Cell) bool {
				fmt.Fprintf(&b, " %q", elem)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if typ == crdt.TypeZSet {
				b.WriteString(" |")
				err := v.ScanScores([]byte(key), math.Inf(-1), nil, false, func(m []byte, s float64) bool {
					fmt.Fprintf(&b, " %q=%v", m, s)
					return true
				})
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString(" |")
				err = v.ScanScores([]byte(key), math.Inf(1), nil, true, func(m []byte, s float64) bool {
					fmt.Fprintf(&b, " %q=%v", m, s)
					return true
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func viewDump(t testing.TB, n *Node, keys []string) string {
	t.Helper()
	var out string
	err := n.View(context.Background(), func(s *Snapshot) error {
		s.now = servertest.StartMs + 1e6
		out = dump(t, s, keys)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func storeDump(t testing.TB, s *servertest.Store, keys []string) string {
	t.Helper()
	var out string
	err := s.View(context.Background(), func(v server.View) error {
		out = dump(t, v, keys)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	simKeys  = []string{"a", "b", "c{a}"}
	simElems = []string{"x", "y", "z", ""}
)

// randomWrite emits one random collection (or string) write at s.
func randomWrite(t testing.TB, rng *rand.Rand, s *servertest.Store) {
	key := simKeys[rng.IntN(len(simKeys))]
	elem := []byte(simElems[rng.IntN(len(simElems))])
	var ops []crdt.Op
	switch rng.IntN(14) {
	case 0, 1:
		ops = []crdt.Op{{Kind: crdt.OpHSet, Elem: elem, Value: []byte(fmt.Sprint(rng.IntN(5)))}}
	case 2:
		ops = []crdt.Op{{Kind: crdt.OpHDel, Elem: elem}}
	case 3:
		ops = []crdt.Op{{Kind: crdt.OpHIncr, Elem: elem, Int: int64(rng.IntN(7) - 3)}}
	case 4, 5:
		ops = []crdt.Op{{Kind: crdt.OpSAdd, Elem: elem}}
	case 6:
		ops = []crdt.Op{{Kind: crdt.OpSRem, Elem: elem}}
	case 7, 8:
		ops = []crdt.Op{{Kind: crdt.OpZAdd, Elem: elem, Value: crdt.ScoreBytes(float64(rng.IntN(6)) / 2)}}
	case 9:
		ops = []crdt.Op{{Kind: crdt.OpZIncr, Elem: elem, Float: crdt.ScoreDelta(0, float64(rng.IntN(5)-2))}}
	case 10:
		ops = []crdt.Op{{Kind: crdt.OpZRem, Elem: elem}}
	case 11:
		ops = []crdt.Op{{Kind: crdt.OpDelete}}
	case 12:
		ops = []crdt.Op{{Kind: crdt.OpSet, Value: []byte("s")}}
	case 13:
		// *STORE: observed delete and several adds in one event
		ops = []crdt.Op{{Kind: crdt.OpDelete}, {Kind: crdt.OpSAdd, Elem: []byte("x")}, {Kind: crdt.OpSAdd, Elem: elem}}
	}
	_, err := s.Update(context.Background(), [][]byte{[]byte(key)}, func(tx server.Tx) error {
		tx.Emit([]byte(key), ops...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// simulate runs random writes at three regions with random partial
// delivery and returns every region's events and a region that received
// all of them.
func simulate(t testing.TB, rng *rand.Rand, steps int) ([][]crdt.Event, *servertest.Store) {
	var regions []*servertest.Store
	for i := 1; i <= 3; i++ {
		s := servertest.NewStore()
		s.Origin = crdt.ReplicaID(i)
		s.Clock.Advance(int64(rng.IntN(3)))
		regions = append(regions, s)
	}
	delivered := make([][]int, 3) // delivered[to][from] = events delivered
	for i := range delivered {
		delivered[i] = make([]int, 3)
	}
	deliver := func(to, from int) {
		evs := regions[from].Events()
		if delivered[to][from] < len(evs) {
			regions[to].Receive(evs[delivered[to][from]])
			delivered[to][from]++
		}
	}
	for i := 0; i < steps; i++ {
		r := rng.IntN(3)
		regions[r].Clock.Advance(int64(rng.IntN(3)))
		if rng.IntN(3) == 0 {
			for j := rng.IntN(4); j >= 0; j-- {
				from := rng.IntN(3)
				if from != r {
					deliver(r, from)
				}
			}
			continue
		}
		randomWrite(t, rng, regions[r])
	}
	all := servertest.NewStore()
	all.Origin = 99
	var evs [][]crdt.Event
	for _, s := range regions {
		evs = append(evs, s.Events())
	}
	for _, list := range evs {
		for _, ev := range list {
			all.Receive(ev)
		}
	}
	return evs, all
}

// interleave returns the events of every origin in a random order that
// keeps each origin's order, with some duplicates.
func interleave(rng *rand.Rand, evs [][]crdt.Event) []*crdt.Event {
	next := make([]int, len(evs))
	var out []*crdt.Event
	for {
		var open []int
		for o := range evs {
			if next[o] < len(evs[o]) {
				open = append(open, o)
			}
		}
		if len(open) == 0 {
			return out
		}
		o := open[rng.IntN(len(open))]
		ev := evs[o][next[o]]
		out = append(out, &ev)
		next[o]++
		if rng.IntN(10) == 0 && next[o] > 1 {
			dup := evs[o][rng.IntN(next[o])]
			out = append(out, &dup)
		}
	}
}

func TestElements_ApplyMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			evs, ref := simulate(t, rng, 150)
			want := storeDump(t, ref, simKeys)
			for round := 0; round < 3; round++ {
				n := newApplyNode(t)
				switch round {
				case 1:
					n.el.eagerResetMax.Store(-1) // every removal of a live collection is lazy
				case 2:
					n.el.eagerResetMax.Store(1) // lazy beyond one live element
				}
				f := newFeeder(n)
				all := interleave(rng, evs)
				for len(all) > 0 {
					k := min(len(all), 1+rng.IntN(8))
					f.apply(t, 1+rng.IntN(4), all[:k]...)
					all = all[k:]
					if rng.IntN(3) == 0 {
						for _, p := range n.parts {
							if err := n.maintain(p); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				if got := viewDump(t, n, simKeys); got != want {
					t.Fatalf("round %d: state differs from the model\n got:\n%s\nwant:\n%s", round, got, want)
				}
				// Maintenance until done changes nothing visible and leaves
				// no tombstone (everything is stable: all events applied).
				for i := 0; i < 50; i++ {
					for _, p := range n.parts {
						if err := n.maintain(p); err != nil {
							t.Fatal(err)
						}
					}
				}
				if got := viewDump(t, n, simKeys); got != want {
					t.Fatalf("round %d after maintenance: state differs\n got:\n%s\nwant:\n%s", round, got, want)
				}
				checkState(t, n)
			}
		})
	}
}

// checkState checks the stored state's invariants once maintenance is
// done: no pending reset is left, the score index equals the live members,
// the tombstone index lists exactly the entries that hold tombstones and
// the tombstone count matches it. (Tombstones may remain: a counter share
// reset by another region than its own is kept until its origin moves on,
// see crdt.Cell.GC.)
func checkState(t testing.TB, n *Node) {
	t.Helper()
	err := n.db.View(func(txn *badger.Txn) error {
		index := map[string]bool{}
		tombIndex := map[string]bool{}
		holding := map[string]bool{}
		live := map[string]bool{}
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			switch k[0] {
			case prefixPending:
				t.Errorf("pending reset left: %q", k)
			case prefixTomb:
				key, rest, _ := parseKeyed(k)
				tombIndex[fmt.Sprintf("%s/%q", key, rest)] = true
			case prefixScore:
				key, rest, _ := parseKeyed(k)
				index[fmt.Sprintf("%s/%s/%v", key, rest[8:], scoreOfSortable(binary.BigEndian.Uint64(rest)))] = true
			case prefixMeta:
				key := redisKeyOfMeta(k)
				st, err := getKey(txn, key)
				if err != nil {
					return err
				}
				if st.HasTombstones() {
					holding[fmt.Sprintf("%s/%q", key, []byte{0})] = true
				}
			case prefixElem:
				key, rest, _ := parseKeyed(k)
				c, err := decodeCellItem(it.Item(), key)
				if err != nil {
					return err
				}
				if c.Empty() {
					t.Errorf("empty cell stored: %q", k)
				}
				if c.HasTombstones() {
					holding[fmt.Sprintf("%s/%q", key, rest)] = true
				}
				if crdt.Type(rest[0]) == crdt.TypeZSet {
					if s, ok := cellScore(c); ok {
						live[fmt.Sprintf("%s/%s/%v", key, rest[1:], s)] = true
					}
				}
			}
		}
		if fmt.Sprint(sortedKeys(index)) != fmt.Sprint(sortedKeys(live)) {
			t.Errorf("score index %v, live members %v", sortedKeys(index), sortedKeys(live))
		}
		if fmt.Sprint(sortedKeys(tombIndex)) != fmt.Sprint(sortedKeys(holding)) {
			t.Errorf("tombstone index %v, entries holding tombstones %v", sortedKeys(tombIndex), sortedKeys(holding))
		}
		if got := n.tombstones(); got != int64(len(tombIndex)) {
			t.Errorf("tombstone count %d, index has %d", got, len(tombIndex))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestElements_TombstonesCounted: a remove applied before the add it saw
// keeps a tombstone (counted) until the add arrives.
func TestElements_TombstonesCounted(t *testing.T) {
	r1, r2 := servertest.NewStore(), servertest.NewStore()
	r2.Origin = 2
	emit := func(s *servertest.Store, ops ...crdt.Op) {
		t.Helper()
		_, err := s.Update(context.Background(), [][]byte{[]byte("k")}, func(tx server.Tx) error {
			tx.Emit([]byte("k"), ops...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	emit(r1, crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("x")}, crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("y")})
	r2.Receive(r1.Events()[0])
	emit(r2, crdt.Op{Kind: crdt.OpSRem, Elem: []byte("x")})
	n := newApplyNode(t)
	f := newFeeder(n)
	add, rem := r1.Events()[0], r2.Events()[0]
	f.apply(t, 10, &rem)
	if got := n.tombstones(); got != 1 {
		t.Fatalf("tombstones after the early remove: %d, want 1", got)
	}
	if got := viewDump(t, n, []string{"k"}); got != "k none\n" {
		t.Fatalf("state %q", got)
	}
	f.apply(t, 10, &add)
	if got := n.tombstones(); got != 0 {
		t.Fatalf("tombstones after the add: %d, want 0", got)
	}
	if got := viewDump(t, n, []string{"k"}); got != "k set len=1 \"y\" < \"y\"\n" {
		t.Fatalf("state %q", got)
	}
	checkState(t, n)
}
