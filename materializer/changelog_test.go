package materializer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/georep/georep/crdt"
)

func startChangelogNode(t *testing.T, brokers []string, dir string, tune ...func(*Node)) (*Node, func()) {
	t.Helper()
	n, err := New(Config{
		Region: "us", InstanceID: 1, Brokers: brokers, DataDir: dir, Partitions: 4,
		FetchMaxWait: 20 * time.Millisecond, Changelog: true,
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tune {
		f(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("node stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("node not ready")
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	}
	return n, stop
}

func emit(t *testing.T, n *Node, key string, ops ...crdt.Op) {
	t.Helper()
	ack, err := n.Update(context.Background(), [][]byte{[]byte(key)}, func(tx *Tx) error {
		tx.Emit([]byte(key), ops...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ack.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// changelogRecord is the part of a record's value the tests check.
type changelogRecord struct {
	Op    string `json:"op"`
	After *struct {
		Type     string          `json:"type"`
		Encoding string          `json:"encoding"`
		Value    json.RawMessage `json:"value"`
	} `json:"after"`
	Truncated bool   `json:"truncated"`
	Type      string `json:"type"`
	Len       int64  `json:"len"`
	Source    struct {
		Region string `json:"region"`
		Dot    struct {
			Origin uint32 `json:"origin"`
			Seq    uint64 `json:"seq"`
		} `json:"dot"`
		Topic string `json:"topic"`
	} `json:"source"`
}

// readChangelog consumes the whole changelog topic and folds it into key
// -> "type:value" (compact JSON), as a CDC consumer would.
func readChangelog(t *testing.T, brokers []string) (map[string]string, []changelogRecord) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(DefaultChangelogTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	state := map[string]string{}
	var recs []changelogRecord
	var total int64
	ends := endOffsetsOf(t, brokers)
	for _, e := range ends {
		total += e
	}
	var seen int64
	for seen < total {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume changelog (%d of %d records): %v", seen, total, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			if r.Value == nil {
				delete(state, string(r.Key))
				return
			}
			var rec changelogRecord
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			recs = append(recs, rec)
			if rec.After == nil {
				delete(state, string(r.Key))
				return
			}
			state[string(r.Key)] = rec.After.Type + ":" + string(rec.After.Value)
		})
	}
	return state, recs
}

func endOffsetsOf(t *testing.T, brokers []string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = DefaultChangelogTopic
	for p := int32(0); p < 4; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// countMarks returns how many changed keys wait to be published.
func countMarks(t *testing.T, n *Node) int {
	t.Helper()
	var c int
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChangelog}})
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

func waitFor(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChangelog_PublishesValuesAndDeletes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	n, stop := startChangelogNode(t, brokers, t.TempDir())
	defer stop()

	emit(t, n, "s", crdt.Op{Kind: crdt.OpSet, Value: []byte("a")}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "s", crdt.Op{Kind: crdt.OpSet, Value: []byte("b")}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "bin", crdt.Op{Kind: crdt.OpSet, Value: []byte{0xff, 0}}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "h", crdt.Op{Kind: crdt.OpHSet, Elem: []byte("f1"), Value: []byte("v1")})
	emit(t, n, "h", crdt.Op{Kind: crdt.OpHSet, Elem: []byte("f2"), Value: []byte("v2")})
	emit(t, n, "set", crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("y")})
	emit(t, n, "set", crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("x")})
	emit(t, n, "gone", crdt.Op{Kind: crdt.OpSet, Value: []byte("1")}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "gone", crdt.Op{Kind: crdt.OpDelete})

	want := map[string]string{
		"s":   `string:"b"`,
		"bin": `string:"/wA="`,
		"h":   `hash:{"f1":"v1","f2":"v2"}`,
		"set": `set:["x","y"]`,
	}
	waitFor(t, "changelog published", func() error {
		if m := countMarks(t, n); m != 0 {
			return fmt.Errorf("%d keys not published", m)
		}
		return nil
	})
	got, recs := readChangelog(t, brokers)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changelog state = %v, want %v", got, want)
	}
	var ops []string
	for _, r := range recs {
		if r.Source.Topic != "georep.ops" || r.Source.Region != "us" || r.Source.Dot.Origin != 1 || r.Source.Dot.Seq == 0 {
			t.Fatalf("source of %+v", r)
		}
		ops = append(ops, r.Op)
	}
	if !strings.Contains(strings.Join(ops, ""), "d") || !strings.Contains(strings.Join(ops, ""), "c") {
		t.Fatalf("ops %v: want creates and a delete", ops)
	}
	if st := n.ChangelogStats(); !st.Enabled || st.Published < int64(len(recs)) {
		t.Fatalf("stats %+v, %d records", st, len(recs))
	}
	// The node created the topic compacted.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	rcs, err := kadm.NewClient(admCl).DescribeTopicConfigs(context.Background(), DefaultChangelogTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(DefaultChangelogTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, cfg := range rc.Configs {
		if cfg.Key == "cleanup.policy" && cfg.Value != nil {
			policy = *cfg.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("changelog topic cleanup.policy = %q, want compact", policy)
	}
}

// TestChangelog_MarksSurviveUnpublished: changes applied while the
// changelog cannot be produced stay marked across a restart and are
// published by the next run (the state after a crash between the apply's
// commit and the produce).
func TestChangelog_MarksSurviveUnpublished(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Produce v13 names topics by ID: learn the changelog topic's.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, DefaultChangelogTopic); err != nil {
		t.Fatal(err)
	}
	tds, err := adm.ListTopics(context.Background(), DefaultChangelogTopic)
	if err != nil {
		t.Fatal(err)
	}
	clID := tds[DefaultChangelogTopic].ID
	var block atomic.Bool
	block.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		for _, tp := range pr.Topics {
			if (tp.Topic == DefaultChangelogTopic || tp.TopicID == clID) && block.Load() {
				return nil, errors.New("changelog blocked by the test"), true
			}
		}
		return nil, nil, false
	})
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	n, stop := startChangelogNode(t, brokers, dir)
	for i := 0; i < 20; i++ {
		emit(t, n, fmt.Sprintf("k%d", i), crdt.Op{Kind: crdt.OpSet, Value: []byte(fmt.Sprint(i))}, crdt.Op{Kind: crdt.OpExpire})
	}
	emit(t, n, "k0", crdt.Op{Kind: crdt.OpDelete})
	if m := countMarks(t, n); m != 20 {
		t.Fatalf("%d marks, want 20", m)
	}
	stop()

	block.Store(false)
	n, stop = startChangelogNode(t, brokers, dir)
	defer stop()
	waitFor(t, "changelog published after the restart", func() error {
		if m := countMarks(t, n); m != 0 {
			return fmt.Errorf("%d keys not published", m)
		}
		return nil
	})
	got, _ := readChangelog(t, brokers)
	want := map[string]string{}
	for i := 1; i < 20; i++ {
		want[fmt.Sprintf("k%d", i)] = fmt.Sprintf(`string:"%d"`, i)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changelog state = %v, want %v", got, want)
	}
}

// TestChangelog_RewrittenMarkStays: a mark an apply rewrote after the
// publisher read it is not removed by that round.
func TestChangelog_RewrittenMarkStays(t *testing.T) {
	n := &Node{cfg: Config{Partitions: 4}}
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n.db = db
	cl := &changelog{n: n, locks: make([]sync.Mutex, 4)}
	key := []byte("k")
	m1 := clMark{src: clSource{origin: 1, seq: 1, topic: "georep.ops"}}.marshal()
	m2 := clMark{src: clSource{origin: 1, seq: 2, topic: "georep.ops"}}.marshal()
	put := func(v []byte) {
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set(changelogKey(key), v) }); err != nil {
			t.Fatal(err)
		}
	}
	put(m2)
	if err := cl.retire(0, []clItem{{markKey: changelogKey(key), mark: m1}}); err != nil {
		t.Fatal(err)
	}
	if c := countMarks(t, n); c != 1 {
		t.Fatalf("rewritten mark removed (%d marks)", c)
	}
	if err := cl.retire(0, []clItem{{markKey: changelogKey(key), mark: m2}}); err != nil {
		t.Fatal(err)
	}
	if c := countMarks(t, n); c != 0 {
		t.Fatalf("published mark kept (%d marks)", c)
	}
}

// TestChangelog_LargeValuesAreTruncated: a value above the limits is
// published as an update without its value, never as an oversized record.
func TestChangelog_LargeValuesAreTruncated(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	n, stop := startChangelogNode(t, brokers, "", func(n *Node) { n.cl.maxElems, n.cl.maxBytes = 3, 600 })
	defer stop()
	for _, m := range []string{"a", "b", "c", "d"} {
		emit(t, n, "bigset", crdt.Op{Kind: crdt.OpSAdd, Elem: []byte(m)})
	}
	emit(t, n, "bigstr", crdt.Op{Kind: crdt.OpSet, Value: []byte(strings.Repeat("x", 700))}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "small", crdt.Op{Kind: crdt.OpHSet, Elem: []byte("f"), Value: []byte("v")})
	waitFor(t, "changelog published", func() error {
		if m := countMarks(t, n); m != 0 {
			return fmt.Errorf("%d keys not published", m)
		}
		return nil
	})
	got, recs := readChangelog(t, brokers)
	if got["small"] != `hash:{"f":"v"}` || len(got) != 1 {
		t.Fatalf("changelog state %v: want only the small hash with a value", got)
	}
	var truncated []string
	for _, r := range recs {
		if r.Truncated {
			if r.After != nil || r.Op != "u" {
				t.Fatalf("truncated record %+v", r)
			}
			truncated = append(truncated, fmt.Sprintf("%s/%d", r.Type, r.Len))
		}
	}
	sort.Strings(truncated)
	if fmt.Sprint(truncated) != "[set/4 string/1]" {
		t.Fatalf("truncated records %v", truncated)
	}
	if st := n.ChangelogStats(); st.Truncated < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestChangelog_InitialSnapshot: turning the changelog on for a node that
// holds keys publishes them once (op "r"), then only changes.
func TestChangelog_InitialSnapshot(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	n, err := New(Config{Region: "us", InstanceID: 1, Brokers: brokers, DataDir: dir, Partitions: 4, FetchMaxWait: 20 * time.Millisecond},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	for i := 0; i < 30; i++ {
		emit(t, n, fmt.Sprintf("old%d", i), crdt.Op{Kind: crdt.OpSet, Value: []byte("v")}, crdt.Op{Kind: crdt.OpExpire})
	}
	emit(t, n, "old0", crdt.Op{Kind: crdt.OpDelete}) // a key state without a visible value
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	n, stop := startChangelogNode(t, brokers, dir)
	emit(t, n, "new", crdt.Op{Kind: crdt.OpSAdd, Elem: []byte("m")})
	published := func() {
		t.Helper()
		waitFor(t, "changelog published", func() error {
			seeded := false
			if err := n.db.View(func(txn *badger.Txn) error {
				_, err := txn.Get(seededKey(DefaultChangelogTopic))
				seeded = err == nil
				return nil
			}); err != nil {
				return err
			}
			if !seeded {
				return errors.New("the state is not marked yet")
			}
			if m := countMarks(t, n); m != 0 {
				return fmt.Errorf("%d keys not published", m)
			}
			return nil
		})
	}
	published()
	got, recs := readChangelog(t, brokers)
	if len(got) != 30 || got["new"] != `set:["m"]` || got["old7"] != `string:"v"` {
		t.Fatalf("changelog state %v: want old1..old29 and new", got)
	}
	reads := 0
	for _, r := range recs {
		if r.Op == "r" {
			reads++
		}
	}
	if reads != 29 || len(recs) != 30 {
		t.Fatalf("%d records, %d of the snapshot: want 30 and 29", len(recs), reads)
	}
	stop()

	// Seeded once: a restart publishes only changes.
	n, stop = startChangelogNode(t, brokers, dir)
	emit(t, n, "old1", crdt.Op{Kind: crdt.OpSet, Value: []byte("w")}, crdt.Op{Kind: crdt.OpExpire})
	published()
	got, recs = readChangelog(t, brokers)
	ops := map[string]int{}
	for _, r := range recs {
		ops[r.Op]++
	}
	if len(recs) != 31 || ops["r"] != 29 || ops["u"] != 1 || got["old1"] != `string:"w"` {
		t.Fatalf("after the restart: %d records %v (want 31: 29 r, 1 c, 1 u), old1 = %s", len(recs), ops, got["old1"])
	}
	stop()

	// A run without the changelog changes keys unseen: turned on again, it
	// publishes the whole state again.
	n, err = New(Config{Region: "us", InstanceID: 1, Brokers: brokers, DataDir: dir, Partitions: 4, FetchMaxWait: 20 * time.Millisecond},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	emit(t, n, "unseen", crdt.Op{Kind: crdt.OpSet, Value: []byte("x")}, crdt.Op{Kind: crdt.OpExpire})
	emit(t, n, "old2", crdt.Op{Kind: crdt.OpDelete})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n, stop = startChangelogNode(t, brokers, dir)
	defer stop()
	waitFor(t, "the state published again", func() error {
		got, _ = readChangelog(t, brokers)
		if got["unseen"] != `string:"x"` || got["old1"] != `string:"w"` {
			return fmt.Errorf("unseen = %q, old1 = %q", got["unseen"], got["old1"])
		}
		return nil
	})
	// old2, deleted while the changelog was off, stays in the consumer's
	// table: the snapshot cannot know (docs/cdc.md).
}

// TestLayout_PrefixesDistinct: every Badger table has its own first byte
// (the changelog's marks once shared one with the lists' tombstone counts).
func TestLayout_PrefixesDistinct(t *testing.T) {
	seen := map[byte]string{'f': "flushall context"}
	for name, p := range map[string]byte{
		"meta": prefixMeta, "offset": prefixOffset, "watermark": prefixWatermark, "expiry": prefixExpiry,
		"elem": prefixElem, "score": prefixScore, "pending": prefixPending, "tomb": prefixTomb,
		"list": prefixList, "list tombs": prefixListTombs, "list journal": prefixListJournal,
		"changelog": prefixChangelog, "changelog seeded": prefixChangelogSeeded,
	} {
		if other, ok := seen[p]; ok {
			t.Errorf("prefix %q of %s is also %s's", p, name, other)
		}
		seen[p] = name
	}
}

// TestChangelog_SpilledListWrites: list writes whose records are written
// after the batch commits (listjournal.go, here at a small threshold) are
// published whole, never half written.
func TestChangelog_SpilledListWrites(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	n, stop := startChangelogNode(t, brokers, t.TempDir(), func(n *Node) { n.listSpill.Store(50) })
	defer stop()
	key := []byte("l")
	var want []string
	var acks []*Ack
	for j := 0; j < 4; j++ {
		vals := make([][]byte, 300)
		for i := range vals {
			vals[i] = fmt.Appendf(nil, "v%d", j*300+i)
			want = append(want, fmt.Sprintf("%q", vals[i]))
		}
		ack, err := n.Update(context.Background(), [][]byte{key}, func(tx *Tx) error {
			l, err := tx.List(key)
			if err != nil {
				return err
			}
			ops, err := l.AppendPush(nil, false, vals...)
			if err != nil {
				return err
			}
			tx.Emit(key, ops...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	for _, a := range acks {
		if err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantList := "list:[" + strings.Join(want, ",") + "]"
	waitFor(t, "the list published whole", func() error {
		got, recs := readChangelog(t, brokers)
		if got["l"] != wantList {
			return fmt.Errorf("%d records, list of %d bytes, want %d", len(recs), len(got["l"]), len(wantList))
		}
		return nil
	})
	_, recs := readChangelog(t, brokers)
	for _, r := range recs {
		if r.After == nil || r.After.Type != "list" {
			t.Fatalf("record %+v", r)
		}
		var vals []string
		if err := json.Unmarshal(r.After.Value, &vals); err != nil {
			t.Fatal(err)
		}
		if len(vals)%300 != 0 {
			t.Fatalf("a record with %d elements: a half-written list was published", len(vals))
		}
	}
	emit(t, n, "l", crdt.Op{Kind: crdt.OpDelete})
	waitFor(t, "the delete published", func() error {
		if got, _ := readChangelog(t, brokers); len(got) != 0 {
			return fmt.Errorf("state %d keys", len(got))
		}
		return nil
	})
}
