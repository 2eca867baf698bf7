package server

import (
	"context"
	"io"
	"time"

	"github.com/georep/georep/crdt"
)

// Store is the region's keyspace as the server needs it. The materializer
// implements it; the server never sees Kafka or Badger.
type Store interface {
	// View runs fn against a consistent snapshot of the applied state (what
	// every client may read: only acknowledged writes). fn must not keep v.
	View(ctx context.Context, fn func(v View) error) error

	// Update runs fn while holding the write locks of keys (every key fn may
	// read or write must be listed). fn sees the applied state plus the
	// effects still in flight, and emits effects through tx. Before Update
	// returns, the effects are stamped and handed to the log in order; the
	// returned Ack waits until they are durable in Kafka and applied locally.
	// An fn error is returned as is and nothing is emitted. A write refused
	// before reaching the log (region not in sync, log unavailable) returns an
	// error implementing RedisError.
	//
	// keys and the arguments of Emit are not modified by the server after
	// Update returns (it passes copies), so the store may keep them. Update
	// is called concurrently by many connections.
	Update(ctx context.Context, keys [][]byte, fn func(tx Tx) error) (Ack, error)

	// FlushAll emits an observed remove of every key the region has applied,
	// and returns once it is durable and applied.
	FlushAll(ctx context.Context) error

	// WatchLists registers fn, called with every key whose list gained at
	// least one element by an applied event (a local write or one that
	// arrived through replication), once the new state is visible to View.
	// It serves blocking pops. fn must not block; it may be called from
	// several goroutines at once. A later call replaces fn.
	WatchLists(fn func(key []byte))
}

// View reads the keyspace.
type View interface {
	// Get returns the merged state of key, nil if there is none. The result
	// must not be modified. Visibility (expiry, type) is decided by the
	// caller with crdt.Key methods and Now.
	Get(key []byte) (*crdt.Key, error)
	// Now is the region's wall clock in ms (with any configured offset).
	Now() int64
	// Scan calls fn for each stored key in storage order, starting after
	// the key named by after (nil: from the first), until fn returns false.
	// Keys whose state is not visible (deleted, expired) are passed too;
	// callers filter with crdt.Key.Type(Now()).
	Scan(after []byte, fn func(key []byte, k *crdt.Key) bool) error
	// RandomKey returns a stored key chosen at random among visible ones
	// (nil if there is none).
	RandomKey() ([]byte, error)

	// Collections (hash, set, sorted set) are read element by element. The
	// caller checks the key's visible type first (crdt.Key.Type); these
	// methods read the elements of type t whatever the visible type is.
	// Cells must not be modified; through a Tx they are valid until the
	// next Emit.

	// Elem returns the cell of element elem (hash field, member) of key's
	// collection of type t if the element is live, nil otherwise. Costs one
	// lookup.
	Elem(key []byte, t crdt.Type, elem []byte) (*crdt.Cell, error)
	// ScanElems calls fn for each live element of key's collection of type
	// t after element after (nil: from the first), in byte order of the
	// elements, until fn returns false.
	ScanElems(key []byte, t crdt.Type, after []byte, fn func(elem []byte, c *crdt.Cell) bool) error
	// ScanElemsReverse is ScanElems in descending order, starting before
	// element before (nil: from the last).
	ScanElemsReverse(key []byte, t crdt.Type, before []byte, fn func(elem []byte, c *crdt.Cell) bool) error
	// ScanScores calls fn for the live members of sorted set key in
	// (score, member) order, starting at the first member at or after
	// (score, member), or, with reverse, in descending order starting at
	// the last member at or before it; a nil member stands for all the
	// members of score (so the scan starts at the first of them, or the
	// last with reverse). It stops when fn returns false. Scores compare
	// as numbers (-0 as 0). The seek costs O(log N), each member visited
	// O(1): ranges by score never scan the whole set.
	ScanScores(key []byte, score float64, member []byte, reverse bool, fn func(member []byte, score float64) bool) error

	// List opens key's list: the elements of type list whatever the
	// visible type (an empty list if there are none). The caller checks the
	// visible type first, as for the other collections. The List must only
	// be read (Len, At, Index, First, Last, Range, Value) and used to plan
	// ops (AppendPush, AppendInsertAt...); through a Tx it includes the
	// effects in flight and is valid until the next Emit, through a View
	// until fn returns.
	List(key []byte) (*crdt.List, error)
}

// Tx is a View that also emits effects. Get and Scan through a Tx include
// the effects still in flight and those emitted earlier in the same Tx.
type Tx interface {
	View
	// Emit appends one event with ops to key. The store fills in the causal
	// stamp and what an op needs from the view (observed context, observed
	// counter shares, the share identity of increments), and prepends the
	// removals the rules require: an observed delete when the key has
	// expired, and the removal of state of other types (type change or a
	// hidden loser of a type conflict).
	Emit(key []byte, ops ...crdt.Op)
	// Origin is this region's instance ID.
	Origin() crdt.ReplicaID
}

// Ack waits for the durability of an Update's effects.
type Ack interface {
	// Wait blocks until every effect is durable and applied (nil), or one
	// failed (an error implementing RedisError), or ctx ends (ctx.Err()).
	// The server calls it once per Ack, from another goroutine than the
	// one that called Update; an Update that emitted nothing may return an
	// Ack that resolves at once (or a nil Ack).
	Wait(ctx context.Context) error
}

// RedisError is implemented by errors that carry their own RESP error reply
// (without the leading '-'), e.g. "READONLY region is not in sync".
type RedisError interface {
	error
	RedisError() string
}

// Operator is the GEOREP command surface of a node.
type Operator interface {
	Pause()
	Resume()
	// Sync blocks until everything every reachable peer had written when it
	// was called is applied here (nil), or timeout passes (an error
	// wrapping context.DeadlineExceeded, which GEOREP SYNC reports as
	// "ERR georep sync timed out after N ms").
	Sync(ctx context.Context, timeout time.Duration) error
	Status(ctx context.Context) Status
	// Digest hashes the visible state: equal on converged regions.
	Digest(ctx context.Context) (string, error)
	// Snapshot writes a consistent snapshot of the applied state, with the
	// log offsets and watermarks it covers, into the node's snapshot
	// directory and describes it (GEOREP SNAPSHOT). It may take long for a
	// large state; it returns ctx's error when ctx ends first, and an error
	// wrapping ErrSnapshotsOff when the node has no snapshot directory.
	Snapshot(ctx context.Context) (SnapshotInfo, error)
	// OpenSnapshot opens a snapshot of the snapshot directory by file name
	// (GEOREP SNAPSHOT READ). Errors wrap ErrSnapshotName for a name that is
	// not a snapshot file name, ErrNoSnapshot for one the directory does
	// not hold, ErrSnapshotsOff. Safe for concurrent use.
	OpenSnapshot(name string) (SnapshotFile, error)
}

// SnapshotInfo describes a snapshot a node wrote.
type SnapshotInfo struct {
	Name       string // file name in the node's snapshot directory
	Size       int64
	SHA256     string // of the whole file, hex
	Created    time.Time
	Region     string
	Topic      string
	Partitions int32
	Keys       int64
	// Covers is, per consumed topic, the records the snapshot covers (the
	// sum over partitions of the next offset to consume).
	Covers  map[string]int64
	Applied crdt.Clock // per origin, the greatest sequence covered
}

// SnapshotFile is an open snapshot file.
type SnapshotFile interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Status is what GEOREP STATUS and INFO georep report.
type Status struct {
	Region      string
	InstanceID  crdt.ReplicaID
	Paused      bool
	Writable    bool   // false while not in sync (writes get READONLY)
	Reason      string // why not writable
	Peers       []PeerStatus
	Applied     crdt.Clock // per origin, greatest sequence applied (any partition)
	BadRecords  int64      // records skipped because they did not decode
	Tombstones  int64      // retained tombstones
	EventsTotal int64      // events applied since start

	// Changelog (docs/cdc.md): whether the node publishes one, records
	// Kafka acknowledged since start, records published without their
	// value, and changed keys waiting to be published (as of the
	// publisher's last round).
	Changelog          bool
	ChangelogPublished int64
	ChangelogTruncated int64
	ChangelogPending   int64
}

// PeerStatus is replication from one peer region.
type PeerStatus struct {
	Region     string
	InstanceID crdt.ReplicaID
	LagEvents  int64
	LagMillis  int64
	Reachable  bool
}
