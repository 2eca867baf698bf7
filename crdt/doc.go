// Package crdt holds georep's conflict-free state per Redis key and the merge
// rules that fold effects into it.
//
// It owns: the causal stamp types (HLC, Dot, Clock), the effect model (Event,
// Op), the per-key state (Key) with its deterministic binary encoding, and
// the visible Redis value of a state (what GET, TTL and TYPE answer).
//
// It must not do I/O, start goroutines, log, read a clock or use randomness:
// the HLC timestamp, replica IDs, "now" and the local stable clock arrive as
// arguments. The same inputs always give the same bytes.
//
// # Model
//
// Every write at an origin becomes one Event on one key, stamped with a Dot
// (origin instance ID, per-origin sequence number), an HLC timestamp and the
// causal context Observed: the origin's per-origin maximum sequence applied to
// this key (Key.VV) when it made the write. Because a key's events from one
// origin are delivered in sequence order (one Kafka partition per key, order
// kept by mirroring), Observed[X] = n means the origin had seen every event of
// X on this key with sequence <= n. Removals ("observed remove") use that
// context: they drop what is covered and leave what is not, so unseen
// concurrent writes survive. Covering contexts are kept as tombstones only
// until the local stable clock (the per-origin sequence applied in the key's
// partition) passes them; after that no covered event can still arrive.
//
// Apply is idempotent (per-key sequence dedup) and commutes with concurrent
// events, so duplicates, replays and arrival orders across origins converge.
//
// Strings are one cell: multi-value register versions (each write removes the
// versions its origin observed; the visible one is the greatest HLC, ties to
// the smaller instance ID) plus per-origin counter shares with observed-reset
// baselines. TTLs are a multi-value register too: among concurrent versions
// PERSIST wins, then the longest expiry.
//
// Type conflicts: a key may hold live state of several types after a merge;
// the visible type is the one whose latest live write has the greatest HLC
// (tie: smaller instance ID). The next write made by a region that sees the
// hidden state removes it (Op DeleteType, an observed remove), so it is
// discarded for good once anyone writes the key.
package crdt
