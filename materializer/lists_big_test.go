package materializer

import (
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"

	"github.com/georep/georep/crdt"
)

// A list write too big for one Badger transaction (the DEL of a long list,
// an RPUSH of many values) is applied whole: the batch commits a journal of
// the list records and the worker writes them after the commit; a journal
// left by a crash is finished when the worker starts.
func TestListApply_BigWrites(t *testing.T) {
	for _, c := range []struct {
		name  string
		disk  bool
		size  int
		spill int64 // 0: Badger's own limits
	}{
		{"memory", false, 2000, 1000},
		{"disk", true, 2000, 1000},
		{"memory/badger-limits", false, 40_000, 0},
		{"disk/badger-limits", true, 40_000, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.spill == 0 && (testing.Short() || raceEnabled) {
				t.Skip("40,000-element lists: not in -short mode or under the race detector")
			}
			disk, size := c.disk, c.size
			n := newApplyNode(t)
			n.listSpill.Store(c.spill)
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
			vals := make([][]byte, size)
			for i := range vals {
				vals[i] = fmt.Appendf(nil, "v%06d", i)
			}
			// One event of 40,000 values: more records than a transaction takes.
			f.apply(t, 1, pl.plan(t, key, 1, func(l *crdt.List) ([]crdt.Op, error) {
				return l.AppendPush(nil, false, vals...)
			})...)
			k, got, _ := listState(t, n, "big")
			if k.Len(crdt.TypeList) != int64(size) || len(got) != size || got[size-1] != fmt.Sprintf("v%06d", size-1) {
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
