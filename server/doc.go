// Package server is georep's Redis front end: it speaks RESP2 and RESP3 to
// clients, runs the commands, and turns writes into CRDT effects through
// the Store interface (store.go). It knows no Kafka or Badger types.
//
// # What it owns
//
//   - The listener and the connections (server.go, conn.go): Config, New,
//     Listen, Run. Run blocks until its context ends, then closes the
//     listener and every connection and waits for their goroutines.
//   - Request framing (guard.go) in front of redcon's parser: limits are
//     checked on headers before any payload is buffered; a protocol error
//     is answered with Redis's "-ERR Protocol error: ..." and closes that
//     connection only.
//   - The reply model and its RESP2/RESP3 encoder (reply.go).
//   - The command table (commands.go) with Redis's COMMAND INFO/DOCS
//     entries (commands.resp, generated from redis-server), and the command
//     families: connection.go, admin.go, georep.go, keys.go, strings.go.
//     A data type adds a file that registers its commands and its copy
//     hook (RENAME/COPY) in newRegistry.
//   - errors.go, the only place that turns errors into RESP error replies.
//
// # Goroutines
//
// Per connection: the reader parses and runs commands in order; a write
// calls Store.Update, which returns once its effects are stamped and
// enqueued, and queues its reply with the Ack, so a pipeline keeps many
// writes in flight; a read (flagRead) first waits until this connection's
// earlier writes are acknowledged (read-your-writes), then runs in
// Store.View. The acker waits for the Acks in order; the writer sends the
// replies in command order, each after its Ack, flushing when no further
// reply is ready. Every wait is bounded by Config.WriteTimeout.
//
// Handlers may block only under the call's context. Arguments point into
// redcon's buffers: anything kept after the command (values emitted to the
// store, SCAN cursors) is copied.
//
// # Locks
//
// Server.mu (the connection set), conn.mu (fields CLIENT LIST reads),
// cursorTable.mu and errorLog.mu are leaves: none is held while taking
// another.
package server
