// Package integration runs whole georep regions end to end over RESP.
//
// By default every test starts an embedded deployment (one kfake broker per
// region, in-process), so `go test ./...` needs no setup. With GEOREP_KAFKA
// set to region=bootstrap pairs (e.g. us=127.0.0.1:19092,eu=127.0.0.1:19093)
// the same tests run against those real Kafka clusters instead.
package integration
