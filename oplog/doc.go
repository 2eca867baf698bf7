// Package oplog is georep's log: the event envelope and its versioned
// protobuf codec, topic naming, key-to-partition mapping, and the franz-go
// client settings every producer and consumer of the topics uses.
//
// It knows no data types: it converts crdt.Event values to and from Kafka
// records and nothing else. The schema lives in proto/georep/v1/event.proto
// (generated into oplogpb); CDC consumers outside georep read it too.
package oplog
