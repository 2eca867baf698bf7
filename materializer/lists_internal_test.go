package materializer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"

	"github.com/georep/georep/crdt"
)

func listEv(o crdt.ReplicaID, seq uint64, key string, observed crdt.Clock, ops ...crdt.Op) *crdt.Event {
	return &crdt.Event{Dot: crdt.Dot{Origin: o, Seq: seq}, HLC: crdt.MakeHLC(1_700_000_000_000+int64(seq), 0),
		Key: []byte(key), Observed: observed, Ops: ops}
}

func insOp(anchor *crdt.ElemID, v string) crdt.Op {
	op := crdt.Op{Kind: crdt.OpLInsert, Elem: crdt.ElemID{Idx: 1}.Bytes(), Value: []byte(v), Counter: 1}
	if anchor != nil {
		op.Anchor = anchor.Bytes()
	}
	return op
}

func listRecords(t *testing.T, n *Node, key string) int {
	t.Helper()
	var c int
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: listPrefix([]byte(key), 0)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listState(t *testing.T, n *Node, key string) (k *crdt.Key, vals []string, tombs int64) {
	t.Helper()
	err := n.View(context.Background(), func(s *Snapshot) error {
		var err error
		if k, err = s.Get([]byte(key)); err != nil {
			return err
		}
		l, err := s.List([]byte(key))
		if err != nil {
			return err
		}
		tombs = l.Tombstones()
		if l.Len() == 0 {
			return nil
		}
		return l.Range(0, false, func(_ crdt.ElemID, v []byte) bool {
			vals = append(vals, string(v))
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return k, vals, tombs
}

// A list's tombstones keep its key's state (and are counted for INFO)
// until every region has seen the removals; then both go.
func TestListApply_TombstonesKeepKeyUntilCollected(t *testing.T) {
	n := newApplyNode(t)
	n.topics = []string{"t1", "t2"} // two regions: origins 1 and 2
	f := newFeeder(n)
	a := crdt.ElemID{Origin: 1, Seq: 1, Idx: 1}
	f.apply(t, 100,
		listEv(1, 1, "l", nil, insOp(nil, "a")),
		listEv(1, 2, "l", crdt.Clock{{Origin: 1, Seq: 1}}, insOp(&a, "b")),
		listEv(1, 3, "l", crdt.Clock{{Origin: 1, Seq: 2}}, crdt.ListRemOp(a)),
	)
	k, vals, tombs := listState(t, n, "l")
	if k.Len(crdt.TypeList) != 1 || len(vals) != 1 || vals[0] != "b" || tombs != 1 {
		t.Fatalf("len %d, %v, tombstones %d", k.Len(crdt.TypeList), vals, tombs)
	}
	lt, err := listTombstones(n.db)
	if err != nil || lt != 1 {
		t.Fatalf("list tombstones %d, %v", lt, err)
	}
	// A DEL of everything: no element left, tombstones kept (region 2 has
	// not written the key), and the key's state with them.
	f.apply(t, 100, listEv(1, 4, "l", crdt.Clock{{Origin: 1, Seq: 3}}, crdt.Op{Kind: crdt.OpDelete}))
	k, vals, tombs = listState(t, n, "l")
	if k == nil || k.Type(0) != crdt.TypeNone || len(vals) != 0 || tombs != 2 {
		t.Fatalf("after DEL: key %v, %v, tombstones %d", k, vals, tombs)
	}
	if lt, _ := listTombstones(n.db); lt != 2 {
		t.Fatalf("list tombstones %d after DEL", lt)
	}
	// The tombstone sweep must not forget the key either.
	p := n.parts[n.partOf([]byte("l")).id]
	p.mu.Lock()
	p.wm[1] = mark{seq: 4} // what the apply left: the DEL's context is stable here
	p.mu.Unlock()
	for range 3 {
		if err := n.maintain(p); err != nil {
			t.Fatal(err)
		}
	}
	if k, _, tombs := listState(t, n, "l"); k == nil || tombs != 2 {
		t.Fatalf("after a sweep: key %v, tombstones %d", k, tombs)
	}
	// Region 2 writes the key having seen everything: the removals are
	// stable, the tombstones and then the key's state are collected.
	f.apply(t, 100, listEv(2, 1, "l", crdt.Clock{{Origin: 1, Seq: 4}}, crdt.Op{Kind: crdt.OpDelete}))
	k, vals, tombs = listState(t, n, "l")
	if tombs != 0 || len(vals) != 0 {
		t.Fatalf("after region 2's write: %v, tombstones %d", vals, tombs)
	}
	if lt, _ := listTombstones(n.db); lt != 0 {
		t.Fatalf("list tombstones %d after collection", lt)
	}
	if c := listRecords(t, n, "l"); c != 0 {
		t.Fatalf("%d list records left after collection", c)
	}
	for range 3 {
		if err := n.maintain(p); err != nil {
			t.Fatal(err)
		}
	}
	if k, _, _ := listState(t, n, "l"); k != nil {
		t.Fatalf("key state %+v left after everything was collected", k)
	}
}

// A list whose records are corrupt does not stop the node: the event's
// list effects are skipped and counted, other keys go on.
func TestListApply_CorruptListIsSkipped(t *testing.T) {
	n := newApplyNode(t)
	f := newFeeder(n)
	f.apply(t, 100, listEv(1, 1, "bad", nil, insOp(nil, "a")))
	err := n.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append(listPrefix([]byte("bad"), 1), 'M'), []byte{0xff, 0xff, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	a := crdt.ElemID{Origin: 1, Seq: 1, Idx: 1}
	f.apply(t, 100,
		listEv(1, 2, "bad", crdt.Clock{{Origin: 1, Seq: 1}}, insOp(&a, "b")),
		listEv(1, 3, "good", nil, insOp(nil, "x")),
	)
	if got := n.bad.Load(); got != 1 {
		t.Fatalf("bad = %d, want 1", got)
	}
	if _, vals, _ := listState(t, n, "good"); len(vals) != 1 || vals[0] != "x" {
		t.Fatalf("good = %v", vals)
	}
	err = n.View(context.Background(), func(s *Snapshot) error {
		_, err := s.List([]byte("bad"))
		return err
	})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("corrupt")) {
		t.Fatalf("reading the corrupt list: %v", err)
	}
}

// A list write too big for one Badger transaction (the DEL of a long list,
// an RPUSH of many values) is applied whole: the batch commits a journal of
// the list records and the worker writes them after the commit; a journal
// left by a crash is finished when the worker starts.
func TestListApply_BigWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("40,000-element lists: not in -short mode")
	}
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "disk"}[disk], func(t *testing.T) {
			n := newApplyNode(t)
			if disk {
				db, err := openBadger(t.TempDir(), zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				n.db = db
			}
			n.topics = []string{"own"}
			f := newFeeder(n)
			pl := &listPlanner{n: n}
			key := []byte("big")
			const size = 40_000
			vals := make([][]byte, size)
			for i := range vals {
				vals[i] = fmt.Appendf(nil, "v%06d", i)
			}
			// One event of 40,000 values: more records than a transaction takes.
			f.apply(t, 1, pl.plan(t, key, 1, func(l *crdt.List) ([]crdt.Op, error) {
				return l.AppendPush(nil, false, vals...)
			})...)
			k, got, _ := listState(t, n, "big")
			if k.Len(crdt.TypeList) != size || len(got) != size || got[size-1] != "v039999" {
				t.Fatalf("after a push of %d values: Len %d, %d values", size, k.Len(crdt.TypeList), len(got))
			}
			// DEL of all of them.
			del := pl.plan(t, key, 1, func(*crdt.List) ([]crdt.Op, error) {
				return []crdt.Op{{Kind: crdt.OpDelete}}, nil
			})
			start := time.Now()
			f.apply(t, 1, del...)
			t.Logf("DEL of %d elements applied in %s", size, time.Since(start))
			k, got, _ = listState(t, n, "big")
			if k != nil || len(got) != 0 {
				t.Fatalf("after DEL: key %v, %d values", k, len(got))
			}
			if c := listRecords(t, n, "big"); c != 0 {
				t.Fatalf("%d list records left after DEL (one region: collected)", c)
			}
			if !disk {
				return
			}
			// A journal left by a stop between commit and writing.
			txn := n.db.NewTransaction(true)
			lb := n.newListBatch(txn)
			ks, err := lb.state(key)
			if err != nil {
				t.Fatal(err)
			}
			l, err := crdt.OpenList(ks.kv)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := l.AppendPush(nil, false, []byte("a"), []byte("b"))
			if err != nil {
				t.Fatal(err)
			}
			kk := &crdt.Key{}
			ev := listEv(1, 1000, "big", nil, ops...)
			kk.Apply(ev, nil)
			if err := crdt.ApplyList(ks.kv, kk, ev, crdt.ListOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := lb.spillRecords(0); err != nil {
				t.Fatal(err)
			}
			if err := txn.Set(metaKey(key), kk.Marshal(nil)); err != nil {
				t.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := n.finishListJournal(n.parts[0]); err != nil {
				t.Fatal(err)
			}
			if _, got, _ := listState(t, n, "big"); len(got) != 2 || got[0] != "a" {
				t.Fatalf("after finishing the journal: %v", got)
			}
			var journal int
			n.db.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixListJournal}})
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					journal++
				}
				return nil
			})
			if journal != 0 {
				t.Fatalf("%d journal entries left", journal)
			}
		})
	}
}
