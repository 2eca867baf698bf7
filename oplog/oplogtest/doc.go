// Package oplogtest helps tests and benchmarks that need georep topics with
// events in them: an Origin emits events the way a region's write path would
// (observed contexts taken from its own view of each key), Workload builds
// reproducible mixes of them, and Produce writes records into a cluster.
package oplogtest
