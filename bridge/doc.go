// Package bridge mirrors a peer region's topic into the local Kafka cluster:
// it consumes `georep.ops` from the peer's cluster and produces every record,
// unchanged and to the same partition, to `<peer>.georep.ops` locally (the
// MirrorMaker 2 naming, so the two are interchangeable). It runs in the
// destination region (pull model) and copies only the peer's own topic, so
// nothing loops.
//
// Each copied record carries a georep-src-offset header with its offset in
// the source topic; on start the bridge reads the last record of every local
// mirror partition and resumes after it. Records are produced with an
// idempotent producer and flushed before the position advances, so a crash
// can only duplicate records, which the materializer drops by dot.
//
// Run owns every goroutine; CatchUp and Lag may be called from any goroutine.
package bridge
