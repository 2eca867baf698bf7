// Package materializer owns a region's state: it folds the events of the
// region's own topic and of every mirrored peer topic through the crdt rules
// into Badger, and it is the region's write path (the store the server
// calls).
//
// # Apply (the Ready loop)
//
// One poll goroutine fetches from all consumed topic-partitions and hands
// records to one worker per partition index (partition p of the own topic
// and of every mirror carries the same keys). A worker applies a batch of
// records in one Badger transaction that also stores, for each topic
// partition, the next offset to consume and, per origin, the greatest
// sequence applied from that partition (the watermark). A crash at any point
// therefore replays into the same state; events at or below the watermark are
// duplicates and skipped. After the commit the worker publishes: waiters of
// local writes are released and their in-flight effects leave the overlay.
// A batch is committed early, at an event boundary, before it would exceed
// Badger's transaction limits. Each worker keeps the decoded state of the
// keys it applied recently (keycache.go, bounded by Config.KeyCacheMB), so
// a key written again is folded without reading and decoding it from
// Badger; entries are exactly the committed states, a failed batch clears
// them, and the tombstone sweep, the only other writer of key states,
// drops the ones it rewrites. Reads (GET, the write path's views) do not
// use it: they read committed state from Badger.
//
// # Collections
//
// Hashes, sets and sorted sets are stored one entry per element, with a
// score index for sorted sets, pending resets for removals of large
// collections and a tombstone index (elements.go). Between batches the
// worker rewrites elements under pending resets and collects tombstones the
// stable clock has passed (elemmaint.go); neither changes what reads see.
// A key's write-path view derives its elements from the state and the
// effects in flight (elemview.go).
//
// # Lists
//
// A list is a crdt list stored record by record under its key's prefix
// (lists.go, listkv.go): the apply loop folds list ops with crdt.ApplyList
// into a per-batch record cache written with the batch, or, when too many
// for one transaction, as a journal written right after the commit
// (listjournal.go). The write path's view of a list is a copy-on-write KV
// over the snapshot the view was read from, which the view owns while it
// is cached. WatchLists callbacks run on the partition worker after the
// commit.
//
// # Changelog
//
// With Config.Changelog the apply transaction also marks every key it
// changed; a publisher goroutine produces each marked key's visible value
// to the changelog topic and removes the mark once Kafka acknowledged it
// (changelog.go, docs/cdc.md). A partition's changelog lock orders its
// apply commits against the removal of its marks; it is a leaf lock.
//
// # Write path
//
// Store.Update locks the partitions of the keys it names, builds each key's
// view from Badger plus the overlay of effects still in flight, lets the
// command emit effects, stamps them (dot, HLC, observed context), puts them
// in the overlay and hands them to the producer in sequence order, then
// unlocks. A key with writes in flight keeps the view the last write left
// (partition.views), so a hot key's next write does not re-apply the whole
// overlay; applying any other event to the key or failing one of its writes
// drops that view. Acknowledgement waits for the event to come back through the
// regional topic and be applied, so an acknowledged write is durable in
// Kafka and visible in local state. Many writes share a produce batch; the
// materializer applies many events per Badger transaction.
//
// Locks: partition write locks are taken in ascending partition order; the
// overlay and waiter maps have their own leaf mutexes. No lock is held while
// waiting for Kafka.
package materializer
