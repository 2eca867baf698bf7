// Package deploy wires georep's packages into running processes: one
// region (node, RESP server, inbound bridges) and the embedded multi-region
// deployment of `georep dev` (one kfake broker per region). The CLI in
// cmd/georep and the integration tests both start regions through it.
package deploy
