package materializer_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/georep/georep/cmd/deploy"
	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
)

// regions is an embedded deployment of several regions (one kfake broker
// each, bridges between them) for Node-level list tests.
type regions struct {
	t     *testing.T
	cfg   deploy.DevConfig
	dev   *deploy.Dev
	nodes map[string]*materializer.Node
	stop  context.CancelFunc
	done  chan error
}

func startRegions(t *testing.T, dataDir string, names ...string) *regions {
	t.Helper()
	return startRegionsConfig(t, deploy.DevConfig{Regions: names, DataDir: dataDir})
}

// startRegionsConfig is startRegions with more of the deployment's
// configuration (clock offsets); Partitions and WriteTimeout default to the
// tests' own.
func startRegionsConfig(t *testing.T, cfg deploy.DevConfig) *regions {
	t.Helper()
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	rs := &regions{t: t, cfg: cfg}
	rs.start()
	t.Cleanup(rs.close)
	return rs
}

func (rs *regions) start() {
	t := rs.t
	t.Helper()
	d, err := deploy.NewDev(rs.cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs.dev, rs.stop, rs.done = d, cancel, make(chan error, 1)
	rs.nodes = map[string]*materializer.Node{}
	go func() { rs.done <- d.Run(ctx) }()
	for _, r := range d.Regions {
		select {
		case <-r.Region.Node.Ready():
		case err := <-rs.done:
			t.Fatalf("deployment stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("region %s not ready", r.Name)
		}
		rs.nodes[r.Name] = r.Region.Node
	}
}

func (rs *regions) close() {
	if rs.stop == nil {
		return
	}
	rs.stop()
	rs.stop = nil
	select {
	case err := <-rs.done:
		if err != nil {
			rs.t.Errorf("deployment: %v", err)
		}
	case <-time.After(30 * time.Second):
		rs.t.Error("deployment did not stop")
	}
}

func (rs *regions) n(name string) *materializer.Node { return rs.nodes[name] }

// sync brings every region up to date with every other.
func (rs *regions) sync() {
	rs.t.Helper()
	for _, n := range rs.nodes {
		if err := n.Sync(context.Background(), 30*time.Second); err != nil {
			rs.t.Fatal(err)
		}
	}
}

// concurrently runs fn with inbound replication paused everywhere, so the
// writes fn makes in different regions are concurrent, then syncs.
func (rs *regions) concurrently(fn func()) {
	rs.t.Helper()
	for _, n := range rs.nodes {
		n.Pause()
	}
	fn()
	for _, n := range rs.nodes {
		n.Resume()
	}
	rs.sync()
}

// listUpdate runs one write on key's list and waits for it.
func listUpdate(t *testing.T, n *materializer.Node, key string, fn func(tx *materializer.Tx, l *crdt.List) ([]crdt.Op, error)) {
	t.Helper()
	ack := listUpdateAsync(t, n, key, fn)
	if err := ack.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func listUpdateAsync(t *testing.T, n *materializer.Node, key string, fn func(tx *materializer.Tx, l *crdt.List) ([]crdt.Op, error)) *materializer.Ack {
	t.Helper()
	k := []byte(key)
	ack, err := n.Update(context.Background(), [][]byte{k}, func(tx *materializer.Tx) error {
		l, err := tx.List(k)
		if err != nil {
			return err
		}
		ops, err := fn(tx, l)
		if err != nil {
			return err
		}
		tx.Emit(k, ops...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func bytesOf(vals []string) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out
}

func pushOps(left bool, vals ...string) func(*materializer.Tx, *crdt.List) ([]crdt.Op, error) {
	return func(_ *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		return l.AppendPush(nil, left, bytesOf(vals)...)
	}
}

func rpush(t *testing.T, n *materializer.Node, key string, vals ...string) {
	t.Helper()
	listUpdate(t, n, key, pushOps(false, vals...))
}

func lpush(t *testing.T, n *materializer.Node, key string, vals ...string) {
	t.Helper()
	listUpdate(t, n, key, pushOps(true, vals...))
}

// pop removes the first (left) or last element and returns its value ("" if
// the list is empty).
func pop(t *testing.T, n *materializer.Node, key string, left bool) string {
	t.Helper()
	var got string
	listUpdate(t, n, key, func(_ *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		var id crdt.ElemID
		var ok bool
		var err error
		if left {
			id, ok, err = l.First()
		} else {
			id, ok, err = l.Last()
		}
		if err != nil || !ok {
			return nil, err
		}
		v, _, err := l.Value(id)
		got = string(v)
		return []crdt.Op{crdt.ListRemOp(id)}, err
	})
	return got
}

func lset(t *testing.T, n *materializer.Node, key string, i int64, val string) {
	t.Helper()
	listUpdate(t, n, key, func(_ *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		id, _, ok, err := l.At(i)
		if err != nil || !ok {
			return nil, fmt.Errorf("LSET %d: no such element (%v)", i, err)
		}
		return []crdt.Op{crdt.ListSetOp(id, []byte(val))}, nil
	})
}

// linsert inserts val after (or before) the first element holding pivot.
func linsert(t *testing.T, n *materializer.Node, key, pivot string, after bool, val string) {
	t.Helper()
	listUpdate(t, n, key, func(_ *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		var pid crdt.ElemID
		found := false
		if l.Len() > 0 {
			err := l.Range(0, false, func(id crdt.ElemID, v []byte) bool {
				if string(v) == pivot {
					pid, found = id, true
					return false
				}
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		if !found {
			return nil, fmt.Errorf("LINSERT: no pivot %q", pivot)
		}
		return l.AppendInsertAt(nil, pid, after, []byte(val))
	})
}

func del(t *testing.T, n *materializer.Node, key string) {
	t.Helper()
	ack, err := n.Update(context.Background(), [][]byte{[]byte(key)}, func(tx *materializer.Tx) error {
		tx.Emit([]byte(key), crdt.Op{Kind: crdt.OpDelete})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// lrange returns key's applied list as "a b c" (with its visible type
// checked: "" when the key is not a list) and checks that the Key's
// length agrees with the list.
func lrange(t *testing.T, n *materializer.Node, key string) string {
	t.Helper()
	var out []string
	err := n.View(context.Background(), func(v *materializer.Snapshot) error {
		k, err := v.Get([]byte(key))
		if err != nil {
			return err
		}
		if k.Type(v.Now()) != crdt.TypeList {
			return nil
		}
		l, err := v.List([]byte(key))
		if err != nil {
			return err
		}
		if l.Len() != k.Len(crdt.TypeList) {
			return fmt.Errorf("list %q: List.Len %d, Key.Len %d", key, l.Len(), k.Len(crdt.TypeList))
		}
		return l.Range(0, false, func(_ crdt.ElemID, val []byte) bool {
			out = append(out, string(val))
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// expectList checks key's list in every region named.
func (rs *regions) expectList(key, want string, names ...string) {
	rs.t.Helper()
	if len(names) == 0 {
		names = rs.cfg.Regions
	}
	for _, name := range names {
		if got := lrange(rs.t, rs.n(name), key); got != want {
			rs.t.Fatalf("%s: LRANGE %s = %q, want %q", name, key, got, want)
		}
	}
}

func digest(t *testing.T, n *materializer.Node) string {
	t.Helper()
	d, err := n.Digest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// expectConverged checks that every region has the same digest.
func (rs *regions) expectConverged() {
	rs.t.Helper()
	first := digest(rs.t, rs.n(rs.cfg.Regions[0]))
	for _, name := range rs.cfg.Regions[1:] {
		if d := digest(rs.t, rs.n(name)); d != first {
			rs.t.Fatalf("digest of %s %s, of %s %s", name, d, rs.cfg.Regions[0], first)
		}
	}
}

func TestLists_WritesReplicateAndConverge(t *testing.T) {
	rs := startRegions(t, "", "us", "eu")
	us, eu := rs.n("us"), rs.n("eu")
	rpush(t, us, "l", "a", "b", "c")
	lpush(t, us, "l", "z")
	rs.sync()
	rs.expectList("l", "z a b c")
	if got := pop(t, eu, "l", false); got != "c" {
		t.Fatalf("RPOP = %q", got)
	}
	if got := pop(t, eu, "l", true); got != "z" {
		t.Fatalf("LPOP = %q", got)
	}
	lset(t, eu, "l", 1, "B")
	linsert(t, eu, "l", "a", true, "a2")
	linsert(t, eu, "l", "a", false, "a0")
	rs.expectList("l", "a0 a a2 B", "eu")
	rs.sync()
	rs.expectList("l", "a0 a a2 B")
	rs.expectConverged()
	// Lists that differ, in content or only in order, give different digests.
	eu.Pause()
	lset(t, us, "l", 0, "x")
	if digest(t, us) == digest(t, eu) {
		t.Fatal("equal digests with different list values")
	}
	eu.Resume()
	rs.sync()
	rs.expectConverged()
	rpush(t, us, "o1", "p", "q")
	rpush(t, us, "o2", "q", "p")
	rs.sync()
	d1 := digest(t, us)
	del(t, us, "o1")
	del(t, us, "o2")
	rpush(t, us, "o1", "q", "p")
	rpush(t, us, "o2", "p", "q")
	if digest(t, us) == d1 {
		t.Fatal("equal digests with lists in another order")
	}
	lset(t, us, "l", 0, "a0")
	del(t, us, "o1")
	del(t, us, "o2")
	rs.sync()
	rs.expectList("l", "a0 a a2 B")
	// Popping everything leaves no key.
	for range 4 {
		pop(t, us, "l", true)
	}
	rs.sync()
	for _, name := range []string{"us", "eu"} {
		err := rs.n(name).View(context.Background(), func(v *materializer.Snapshot) error {
			k, err := v.Get([]byte("l"))
			if err == nil && k.Type(v.Now()) != crdt.TypeNone {
				err = fmt.Errorf("TYPE l = %s after popping every element", k.Type(v.Now()))
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	rs.expectConverged()
}

// L-1..L-4 of aa-semantics.md and more concurrency, at the Node level.
// eu's clock is a second ahead, so that of two concurrent writes in us and
// eu, eu's has the greater HLC whatever the timing (two writes in the same
// millisecond would tie, and the tie goes to the smaller instance ID, us).
func TestLists_Concurrent(t *testing.T) {
	rs := startRegionsConfig(t, deploy.DevConfig{
		Regions:      []string{"us", "eu", "ap"},
		ClockOffsets: map[string]time.Duration{"eu": time.Second},
	})
	us, eu, ap := rs.n("us"), rs.n("eu"), rs.n("ap")

	t.Run("L-1", func(t *testing.T) {
		lpush(t, us, "l1", "hello")
		rs.sync()
		lpush(t, eu, "l1", "world")
		rs.sync()
		rs.expectList("l1", "world hello")
	})
	t.Run("L-2", func(t *testing.T) {
		lpush(t, us, "l2", "x")
		rs.sync()
		rs.concurrently(func() {
			linsert(t, us, "l2", "x", true, "y1")
			linsert(t, eu, "l2", "x", true, "y2")
			rs.expectList("l2", "x y1", "us")
			rs.expectList("l2", "x y2", "eu")
		})
		rs.expectList("l2", "x y1 y2")
	})
	t.Run("L-3", func(t *testing.T) {
		lpush(t, us, "l3", "x")
		rs.sync()
		rs.concurrently(func() {
			lpush(t, us, "l3", "y")
			del(t, eu, "l3")
		})
		rs.expectList("l3", "y")
	})
	t.Run("L-4", func(t *testing.T) {
		lpush(t, us, "l4", "x", "y", "z")
		rs.sync()
		if got := pop(t, eu, "l4", false); got != "x" {
			t.Fatalf("RPOP = %q", got)
		}
		rs.sync()
		if got := pop(t, us, "l4", false); got != "y" {
			t.Fatalf("RPOP = %q", got)
		}
		rs.sync()
		rs.concurrently(func() {
			for _, n := range []*materializer.Node{us, eu} {
				if got := pop(t, n, "l4", false); got != "z" {
					t.Fatalf("RPOP = %q", got)
				}
			}
		})
		rs.expectList("l4", "")
		for _, name := range rs.cfg.Regions {
			err := rs.n(name).View(context.Background(), func(v *materializer.Snapshot) error {
				k, err := v.Get([]byte("l4"))
				if err == nil && k != nil && (k.Type(v.Now()) != crdt.TypeNone || k.Len(crdt.TypeList) != 0) {
					err = fmt.Errorf("after both pops: type %s, len %d", k.Type(v.Now()), k.Len(crdt.TypeList))
				}
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
	t.Run("ConcurrentPushRunsStayContiguous", func(t *testing.T) {
		rpush(t, us, "runs", "m")
		rs.sync()
		rs.concurrently(func() {
			rpush(t, us, "runs", "u1", "u2")
			rpush(t, us, "runs", "u3")
			rpush(t, eu, "runs", "e1", "e2", "e3")
			lpush(t, ap, "runs", "a1")
			lpush(t, ap, "runs", "a2")
		})
		rs.expectList("runs", "a2 a1 m u1 u2 u3 e1 e2 e3")
	})
	t.Run("LSetVersusPop", func(t *testing.T) {
		rpush(t, us, "ls", "a", "b")
		rs.sync()
		rs.concurrently(func() {
			lset(t, us, "ls", 0, "A")
			pop(t, eu, "ls", true) // removal wins
			lset(t, ap, "ls", 1, "B")
		})
		rs.expectList("ls", "B")
	})
	t.Run("ConcurrentLSet", func(t *testing.T) {
		rpush(t, us, "lss", "a")
		rs.sync()
		rs.concurrently(func() {
			lset(t, us, "lss", 0, "first")
			lset(t, eu, "lss", 0, "second") // eu's clock is ahead: greater HLC, wins
		})
		rs.expectList("lss", "second")
	})
	t.Run("TypeChange", func(t *testing.T) {
		rpush(t, us, "tc", "a")
		rs.sync()
		set(t, eu, "tc", "s")
		rs.sync()
		rs.expectList("tc", "")
		for _, name := range rs.cfg.Regions {
			if got := get(t, rs.n(name), "tc"); got != "s" {
				t.Fatalf("%s: GET tc = %q", name, got)
			}
		}
		rpush(t, ap, "tc", "b")
		rs.sync()
		rs.expectList("tc", "b")
	})
	rs.expectConverged()
}

// Writes computed against effects still in flight see them: pushes,
// pops and sets emitted in the same Tx and by earlier writes not yet
// applied.
func TestLists_InFlightVisible(t *testing.T) {
	rs := startRegions(t, "", "us")
	us := rs.n("us")
	var acks []*materializer.Ack
	// Hold the region's produce requests: every write below runs against
	// effects in flight.
	release := holdProduce(t, rs.dev.Regions[0].Cluster)
	for i := 0; i < 20; i++ {
		acks = append(acks, listUpdateAsync(t, us, "f", pushOps(false, fmt.Sprint(i))))
	}
	ack := listUpdateAsync(t, us, "f", func(tx *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		if l.Len() != 20 {
			return nil, fmt.Errorf("Len %d with 20 pushes in flight", l.Len())
		}
		_, v, _, err := l.At(19)
		if err != nil || string(v) != "19" {
			return nil, fmt.Errorf("At(19) = %q, %v", v, err)
		}
		k, err := tx.Get([]byte("f"))
		if err != nil || k.Len(crdt.TypeList) != 20 || k.Type(tx.Now()) != crdt.TypeList {
			return nil, fmt.Errorf("Key through the Tx: %v", err)
		}
		first, _, _ := l.First()
		return []crdt.Op{crdt.ListRemOp(first)}, nil
	})
	acks = append(acks, ack)
	// A key whose cached view has no list yet (a string in flight), then
	// pushes: the type change and the list are derived afresh.
	acks = append(acks, setAsync(t, us, "g", "s"))
	acks = append(acks, listUpdateAsync(t, us, "g", pushOps(false, "a")))
	acks = append(acks, listUpdateAsync(t, us, "g", func(tx *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		k, err := tx.Get([]byte("g"))
		if err != nil || k.Type(tx.Now()) != crdt.TypeList || l.Len() != 1 {
			return nil, fmt.Errorf("after SET and RPUSH in flight: type %v, len %d, %v", k.Type(tx.Now()), l.Len(), err)
		}
		return l.AppendPush(nil, false, []byte("b"))
	}))
	rs.expectList("f", "") // nothing applied yet
	release()
	for _, a := range acks {
		if err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Effects emitted earlier in the same Tx.
	listUpdate(t, us, "f", func(tx *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		first, _, _ := l.First()
		tx.Emit([]byte("f"), crdt.ListRemOp(first))
		l2, err := tx.List([]byte("f"))
		if err != nil {
			return nil, err
		}
		if _, v, _, _ := l2.At(0); l2.Len() != 18 || string(v) != "2" {
			return nil, fmt.Errorf("after a pop in the Tx: Len %d, first %q", l2.Len(), v)
		}
		k, err := tx.Get([]byte("f"))
		if err != nil || k.Len(crdt.TypeList) != 18 {
			return nil, fmt.Errorf("Key.Len through the Tx %d, %v", k.Len(crdt.TypeList), err)
		}
		return l2.AppendPush(nil, true, []byte("head"))
	})
	want := "head"
	for i := 2; i < 20; i++ {
		want += fmt.Sprint(" ", i)
	}
	rs.expectList("f", want)
	rs.expectList("g", "a b")
}

func setAsync(t *testing.T, n *materializer.Node, key, val string) *materializer.Ack {
	t.Helper()
	ack, err := n.Update(context.Background(), [][]byte{[]byte(key)}, func(tx *materializer.Tx) error {
		tx.Emit([]byte(key), crdt.Op{Kind: crdt.OpSet, Value: []byte(val)}, crdt.Op{Kind: crdt.OpExpire})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func TestLists_WatchListsFiresForReplicatedPushes(t *testing.T) {
	rs := startRegions(t, "", "us", "eu")
	us, eu := rs.n("us"), rs.n("eu")
	var mu sync.Mutex
	seen := map[string]int{}
	eu.WatchLists(func(key []byte) {
		mu.Lock()
		seen[string(key)]++
		mu.Unlock()
	})
	count := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[key]
	}
	rpush(t, us, "w", "a")
	waitFor(t, "eu's watcher sees us's push", func() bool { return count("w") >= 1 })
	// The key is readable when the watcher is called.
	var mu2 sync.Mutex
	var atCall []string
	eu.WatchLists(func(key []byte) {
		got := lrange(t, eu, string(key))
		mu2.Lock()
		atCall = append(atCall, got)
		mu2.Unlock()
	})
	rpush(t, us, "w2", "x", "y")
	waitFor(t, "watcher called for w2", func() bool {
		mu2.Lock()
		defer mu2.Unlock()
		return len(atCall) > 0
	})
	mu2.Lock()
	if atCall[0] != "x y" {
		t.Fatalf("list when the watcher was called: %q", atCall[0])
	}
	mu2.Unlock()
	// Pops and DEL do not fire; local pushes do.
	eu.WatchLists(func(key []byte) {
		mu.Lock()
		seen[string(key)]++
		mu.Unlock()
	})
	rs.sync()
	before := count("w")
	pop(t, us, "w", true)
	rs.sync()
	if count("w") != before {
		t.Fatalf("a pop fired the watcher")
	}
	lpush(t, eu, "w", "local")
	if count("w") != before+1 {
		t.Fatalf("a local push did not fire the watcher before its ack: %d", count("w"))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLists_RestartSnapshotAndReplayKeepLists(t *testing.T) {
	dir := t.TempDir()
	rs := startRegions(t, dir, "us", "eu")
	us, eu := rs.n("us"), rs.n("eu")
	rpush(t, us, "a", "1", "2", "3", "4")
	lpush(t, eu, "b", "x", "y")
	rs.sync()
	pop(t, eu, "a", true)
	lset(t, us, "b", 0, "Y")
	rs.concurrently(func() {
		rpush(t, us, "c", "u")
		rpush(t, eu, "c", "e")
	})
	rs.expectList("a", "2 3 4")
	// eu's pop stays a tombstone until us writes "a" having seen it.
	if ts := us.Status(context.Background()).Tombstones; ts < 1 {
		t.Fatalf("us counts %d tombstones, want eu's pop among them", ts)
	}
	rs.expectList("b", "Y x")
	rs.expectList("c", "u e")
	want := digest(t, us)
	rs.expectConverged()

	// A snapshot of us, restored by a replay of us's cluster.
	var snap bytes.Buffer
	if _, _, err := us.WriteSnapshot(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	brokers := rs.dev.Regions[0].Brokers
	replayed := filepath.Join(t.TempDir(), "replayed")
	r, err := materializer.NewReplay(materializer.ReplayConfig{Region: "us", Brokers: brokers, DataDir: replayed,
		FetchMaxWait: 20 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Restore(context.Background(), bytes.NewReader(snap.Bytes()), "snap"); err != nil {
		t.Fatal(err)
	}
	// More list writes after the snapshot, which the replay applies.
	rpush(t, us, "a", "5")
	pop(t, us, "b", false)
	rs.sync()
	want = digest(t, us)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, replayed); got != want {
		t.Fatalf("replayed digest %s, live %s", got, want)
	}

	// A restart keeps the lists.
	rs.close()
	rs.start()
	us, eu = rs.n("us"), rs.n("eu")
	rs.expectList("a", "2 3 4 5")
	rs.expectList("b", "Y")
	rs.expectList("c", "u e")
	rpush(t, eu, "a", "6")
	rs.sync()
	rs.expectList("a", "2 3 4 5 6")
	rs.expectConverged()
}

// holdProduce holds produce requests to the region's own topic on c until
// the returned function is called (also at cleanup).
func holdProduce(t *testing.T, c *kfake.Cluster) func() {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, oplog.Topic)
	if err != nil {
		t.Fatal(err)
	}
	ownID := td[oplog.Topic].ID
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == oplog.Topic || tp.TopicID == ownID {
				c.SleepControl(func() { <-ch })
			}
		}
		return nil, nil, false
	})
	return release
}

// A list write on a key with writes in flight reuses the view (and the
// copy-on-write list) the previous write left; a peer's push applied
// meanwhile drops it, and the next write plans on a list that has the
// peer's element.
func TestLists_CachedViewDroppedByPeerPush(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := materializer.New(materializer.Config{
		Region: "us", InstanceID: 1, Peers: []string{"eu"}, Brokers: c.ListenAddrs(), Partitions: 4,
		FetchMaxWait: 20 * time.Millisecond, WriteTimeout: 20 * time.Second,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-n.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("node not ready")
	}
	rpush(t, n, "q", "a")
	release := holdProduce(t, c)
	acks := []*materializer.Ack{
		listUpdateAsync(t, n, "q", pushOps(false, "b")),
		listUpdateAsync(t, n, "q", pushOps(false, "c")),
	}
	// eu, having seen a (us's seq 1), pushes "e" at the head.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := crdt.ElemID{Origin: 1, Seq: 1, Idx: 1}
	ev := &crdt.Event{Dot: crdt.Dot{Origin: 2, Seq: 1}, HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Key: []byte("q"),
		Observed: crdt.Clock{{Origin: 1, Seq: 1}},
		Ops:      []crdt.Op{{Kind: crdt.OpLInsert, Elem: crdt.ElemID{Idx: 1}.Bytes(), Value: []byte("e"), Anchor: a.Bytes(), Before: true, Counter: 1}}}
	if err := cl.ProduceSync(ctx, oplog.NewRecord("eu", oplog.MirrorTopic("eu", oplog.Topic), ev, 4)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "eu's push applied", func() bool { return lrange(t, n, "q") == "e a" })
	// The next write sees eu's element and both pushes in flight.
	acks = append(acks, listUpdateAsync(t, n, "q", func(_ *materializer.Tx, l *crdt.List) ([]crdt.Op, error) {
		var got []string
		err := l.Range(0, false, func(_ crdt.ElemID, v []byte) bool { got = append(got, string(v)); return true })
		if err != nil || strings.Join(got, " ") != "e a b c" {
			return nil, fmt.Errorf("list in the write: %v, %v", got, err)
		}
		return l.AppendPush(nil, true, []byte("h"))
	}))
	release()
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := lrange(t, n, "q"); got != "h e a b c" {
		t.Fatalf("LRANGE q = %q", got)
	}
}
