package materializer

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/georep/georep/crdt"
)

// startKafkaNode runs a node on an embedded Kafka.
func startKafkaNode(t *testing.T) *Node {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	n, err := New(Config{
		Region: "us", InstanceID: 1, Brokers: c.ListenAddrs(), Partitions: 4,
		FetchMaxWait: 10 * time.Millisecond, WriteTimeout: 20 * time.Second,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("node not ready")
	}
	return n
}

// TestElements_WritePathInFlight: writes computed against effects still in
// flight (not yet applied) see them: element values, counts, score order,
// and removals of the whole collection.
func TestElements_WritePathInFlight(t *testing.T) {
	n := startKafkaNode(t)
	n.el.eagerResetMax.Store(3) // the DEL below is applied as a pending reset
	ctx := context.Background()
	var acks []*Ack
	update := func(key string, fn func(tx *Tx) error) {
		t.Helper()
		ack, err := n.Update(ctx, [][]byte{[]byte(key)}, fn)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	emit := func(tx *Tx, key string, ops ...crdt.Op) { tx.Emit([]byte(key), ops...) }
	value := func(tx *Tx, key, field string) string {
		c, err := tx.Elem([]byte(key), crdt.TypeHash, []byte(field))
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			return "(nil)"
		}
		v, _ := c.Value()
		return string(v)
	}
	// A hot counter field, pipelined.
	for i := 1; i <= 50; i++ {
		update("h", func(tx *Tx) error {
			if got, want := value(tx, "h", "n"), fmt.Sprint(i-1); i > 1 && got != want {
				t.Fatalf("write %d sees %s, want %s", i, got, want)
			}
			emit(tx, "h", crdt.Op{Kind: crdt.OpHIncr, Elem: []byte("n"), Int: 1})
			return nil
		})
	}
	// Fields and members added in flight count and scan.
	for i := 0; i < 10; i++ {
		update("h", func(tx *Tx) error {
			emit(tx, "h", crdt.Op{Kind: crdt.OpHSet, Elem: []byte(fmt.Sprint("f", i)), Value: []byte("v")})
			return nil
		})
		update("z", func(tx *Tx) error {
			emit(tx, "z", crdt.Op{Kind: crdt.OpZAdd, Elem: []byte(fmt.Sprint("m", i)), Value: crdt.ScoreBytes(float64(10 - i))})
			return nil
		})
	}
	update("z", func(tx *Tx) error {
		k, _ := tx.Get([]byte("z"))
		if k == nil || k.Len(crdt.TypeZSet) != 10 {
			t.Fatalf("zset view %+v", k)
		}
		var order []string
		err := tx.ScanScores([]byte("z"), math.Inf(-1), nil, false, func(m []byte, s float64) bool {
			order = append(order, string(m))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(order) != "[m9 m8 m7 m6 m5 m4 m3 m2 m1 m0]" {
			t.Fatalf("score order in flight %v", order)
		}
		emit(tx, "z", crdt.Op{Kind: crdt.OpZIncr, Elem: []byte("m9"), Float: crdt.ScoreDelta(1, 100)})
		return nil
	})
	update("h", func(tx *Tx) error {
		k, _ := tx.Get([]byte("h"))
		if k.Len(crdt.TypeHash) != 11 {
			t.Fatalf("hash has %d fields in flight", k.Len(crdt.TypeHash))
		}
		emit(tx, "h", crdt.Op{Kind: crdt.OpDelete})
		return nil
	})
	update("h", func(tx *Tx) error {
		if k, _ := tx.Get([]byte("h")); k != nil && k.Type(tx.Now()) != crdt.TypeNone {
			t.Fatalf("hash visible after DEL in flight: %+v", k)
		}
		if v := value(tx, "h", "n"); v != "(nil)" {
			t.Fatalf("n = %s after DEL", v)
		}
		emit(tx, "h", crdt.Op{Kind: crdt.OpHIncr, Elem: []byte("n"), Int: 7})
		return nil
	})
	update("h", func(tx *Tx) error {
		if v := value(tx, "h", "n"); v != "7" {
			t.Fatalf("n = %s after DEL and HINCRBY 7", v)
		}
		var fields []string
		err := tx.ScanElems([]byte("h"), crdt.TypeHash, nil, func(f []byte, _ *crdt.Cell) bool {
			fields = append(fields, string(f))
			return true
		})
		if err != nil || fmt.Sprint(fields) != "[n]" {
			t.Fatalf("fields %v %v", fields, err)
		}
		return nil
	})
	update("z", func(tx *Tx) error {
		var ms []string
		err := tx.ScanElemsReverse([]byte("z"), crdt.TypeZSet, []byte("m5"), func(m []byte, _ *crdt.Cell) bool {
			ms = append(ms, string(m))
			return true
		})
		if err != nil || fmt.Sprint(ms) != "[m4 m3 m2 m1 m0]" {
			t.Fatalf("members before m5, descending, in flight: %v %v", ms, err)
		}
		return nil
	})
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"h", "z"}
	want := "h hash len=1 \"n\"=\"7\" < \"n\"\nz zset len=10 \"m0\"=10 \"m1\"=9 \"m2\"=8 \"m3\"=7 \"m4\"=6 \"m5\"=5 \"m6\"=4 \"m7\"=3 \"m8\"=2 \"m9\"=100 <" +
		" \"m9\" \"m8\" \"m7\" \"m6\" \"m5\" \"m4\" \"m3\" \"m2\" \"m1\" \"m0\" |" +
		" \"m8\"=2 \"m7\"=3 \"m6\"=4 \"m5\"=5 \"m4\"=6 \"m3\"=7 \"m2\"=8 \"m1\"=9 \"m0\"=10 \"m9\"=100 |" +
		" \"m9\"=100 \"m0\"=10 \"m1\"=9 \"m2\"=8 \"m3\"=7 \"m4\"=6 \"m5\"=5 \"m6\"=4 \"m7\"=3 \"m8\"=2\n"
	var got string
	err := n.View(ctx, func(s *Snapshot) error {
		got = dump(t, s, keys)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("applied state\n%s\nwant\n%s", got, want)
	}
	// The pending reset is normalized by the worker; reads do not change.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending := 0
		err := n.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixPending}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				pending++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys still have pending resets", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	err = n.View(ctx, func(s *Snapshot) error {
		got = dump(t, s, keys)
		return nil
	})
	if err != nil || got != want {
		t.Fatalf("after normalize: %v\n%s", err, got)
	}
}
