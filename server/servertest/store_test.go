package servertest_test

import (
	"context"
	"testing"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/server"
	"github.com/georep/georep/server/servertest"
)

func update(t *testing.T, s *servertest.Store, key string, ops ...crdt.Op) {
	t.Helper()
	_, err := s.Update(context.Background(), [][]byte{[]byte(key)}, func(tx server.Tx) error {
		tx.Emit([]byte(key), ops...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func lastOps(s *servertest.Store) []crdt.Op {
	evs := s.Events()
	return evs[len(evs)-1].Ops
}

func TestStore_Emit(t *testing.T) {
	t.Run("expired key gets an observed delete first", func(t *testing.T) {
		s := servertest.NewStore()
		update(t, s, "k", crdt.Op{Kind: crdt.OpSet, Value: []byte("v")}, crdt.Op{Kind: crdt.OpExpire, At: servertest.StartMs + 10})
		s.Clock.Advance(11) // visible through its expiry millisecond, gone after
		update(t, s, "k", crdt.Op{Kind: crdt.OpIncr, Int: 1})
		ops := lastOps(s)
		if len(ops) != 2 || ops[0].Kind != crdt.OpDelete || ops[1].Kind != crdt.OpIncr {
			t.Fatalf("ops %+v", ops)
		}
		if v, _ := s.Key("k").String(s.Clock.Now()); string(v) != "1" {
			t.Fatalf("value %q", v)
		}
	})
	t.Run("type change removes the other type", func(t *testing.T) {
		s := servertest.NewStore()
		s.MakeType("k", crdt.TypeSet)
		update(t, s, "k", crdt.Op{Kind: crdt.OpSet, Value: []byte("v")})
		ops := lastOps(s)
		if len(ops) != 2 || ops[0].Kind != crdt.OpDeleteType || ops[0].Type != crdt.TypeSet {
			t.Fatalf("ops %+v", ops)
		}
		if typ := s.Key("k").Type(s.Clock.Now()); typ != crdt.TypeString {
			t.Fatalf("type %v", typ)
		}
	})
	t.Run("reset carries observed shares; increments name their share", func(t *testing.T) {
		s := servertest.NewStore()
		update(t, s, "k", crdt.Op{Kind: crdt.OpIncr, Int: 5})
		update(t, s, "k", crdt.Op{Kind: crdt.OpIncr, Int: 2})
		if ops := lastOps(s); ops[0].Start != 1 {
			t.Fatalf("second increment names share %d, want 1", ops[0].Start)
		}
		update(t, s, "k", crdt.Op{Kind: crdt.OpSet, Value: []byte("10")})
		if ops := lastOps(s); len(ops[0].Shares) != 1 || ops[0].Shares[0].Int != 7 {
			t.Fatalf("set shares %+v", ops[0].Shares)
		}
		if v, _ := s.Key("k").String(s.Clock.Now()); string(v) != "10" {
			t.Fatalf("value %q", v)
		}
	})
	t.Run("unlisted key", func(t *testing.T) {
		s := servertest.NewStore()
		_, err := s.Update(context.Background(), [][]byte{[]byte("a")}, func(tx server.Tx) error {
			tx.Emit([]byte("b"), crdt.Op{Kind: crdt.OpDelete})
			return nil
		})
		if err == nil {
			t.Fatal("emit to an unlisted key accepted")
		}
	})
}
