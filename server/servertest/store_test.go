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

// items returns key's list values as a View sees them.
func items(t *testing.T, s *servertest.Store, key string) []string {
	t.Helper()
	var out []string
	err := s.View(context.Background(), func(v server.View) error {
		l, err := v.List([]byte(key))
		if err != nil || l.Len() == 0 {
			return err
		}
		return l.Range(0, false, func(_ crdt.ElemID, val []byte) bool {
			out = append(out, string(val))
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func push(t *testing.T, s *servertest.Store, key string, vals ...string) {
	t.Helper()
	_, err := s.Update(context.Background(), [][]byte{[]byte(key)}, func(tx server.Tx) error {
		l, err := tx.List([]byte(key))
		if err != nil {
			return err
		}
		var vs [][]byte
		for _, v := range vals {
			vs = append(vs, []byte(v))
		}
		ops, err := l.AppendPush(nil, false, vs...)
		tx.Emit([]byte(key), ops...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore_Lists(t *testing.T) {
	t.Run("a Tx reads its own pushes; a failed Update leaves nothing", func(t *testing.T) {
		s := servertest.NewStore()
		push(t, s, "l", "a", "b")
		_, err := s.Update(context.Background(), [][]byte{[]byte("l")}, func(tx server.Tx) error {
			l, _ := tx.List([]byte("l"))
			ops, _ := l.AppendPush(nil, true, []byte("x"))
			tx.Emit([]byte("l"), ops...)
			if l, _ = tx.List([]byte("l")); l.Len() != 3 {
				t.Errorf("in-tx len %d, want 3", l.Len())
			}
			return context.Canceled
		})
		if err == nil {
			t.Fatal("fn error not returned")
		}
		if got := items(t, s, "l"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Fatalf("list %q", got)
		}
		if typ := s.Key("l").Type(s.Clock.Now()); typ != crdt.TypeList {
			t.Fatalf("type %v", typ)
		}
	})
	t.Run("WatchLists sees growth, local and remote, not removals", func(t *testing.T) {
		s := servertest.NewStore()
		var got []string
		s.WatchLists(func(key []byte) { got = append(got, string(key)) })
		push(t, s, "l", "a")
		s.RemotePush(2, "l", true, "r")
		update(t, s, "l", crdt.Op{Kind: crdt.OpDelete})
		s.RemotePush(3, "m", false, "x")
		if want := []string{"l", "l", "m"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("watched %q, want %q", got, want)
		}
		if l := items(t, s, "l"); len(l) != 0 {
			t.Fatalf("list after DEL %q", l)
		}
	})
	t.Run("a remote push is a replica event", func(t *testing.T) {
		a, b := servertest.NewStore(), servertest.NewStore()
		push(t, a, "l", "a", "b")
		for _, ev := range a.Events() {
			b.Receive(ev)
		}
		ev := b.RemotePush(2, "l", false, "c")
		a.Receive(ev)
		if got := items(t, a, "l"); len(got) != 3 || got[2] != "c" {
			t.Fatalf("list %q", got)
		}
	})
}
