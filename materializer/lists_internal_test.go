package materializer

import (
	"bytes"
	"context"
	"testing"

	"github.com/dgraph-io/badger/v4"

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
