// Package crdttest simulates several georep regions replicating one or a few
// keys, for the tests of package crdt and of its users.
//
// It owns: per-replica crdt.Key state, sequence numbers, HLCs and wall
// clocks (with skew), the way an origin stamps and fills events (what the
// server's Store.Emit does), and delivery with per-(origin, partition) FIFO
// order, arbitrary interleaving across origins, duplicates and stable clocks.
// A replica folds events the way the materializer does (Key.Apply, then
// ApplyElem/ResetElem on the element cells it stores beside the key, then
// Key.GC). A small command layer (SET, APPEND, INCRBY, INCRBYFLOAT, DEL,
// PEXPIRE, PERSIST, SADD, SREM, HSET, HDEL, the owner's active expiry)
// evaluates Redis conditions at the origin and emits their effects.
//
// It must not sleep, start goroutines or read the real clock: time is the
// simulation's Now, advanced by the test. It is not safe for concurrent use.
package crdttest
