package servertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/georep/georep/server"
)

// Operator is a server.Operator answering from its fields. SyncFunc and
// DigestFunc, when set, replace the defaults (Sync succeeds at once, Digest
// returns "digest"). Snapshot stores SnapshotData under the names
// "us-1.snap", "us-2.snap", ... in memory; OpenSnapshot opens them.
type Operator struct {
	SyncFunc     func(ctx context.Context, timeout time.Duration) error
	DigestFunc   func(ctx context.Context) (string, error)
	SnapshotData []byte // default "GEOREP-SNAPSHOT\ntest snapshot\n"

	mu        sync.Mutex
	status    server.Status
	snapshots map[string][]byte
}

var _ server.Operator = (*Operator)(nil)

// NewOperator returns an operator reporting st.
func NewOperator(st server.Status) *Operator { return &Operator{status: st} }

// Pause implements server.Operator.
func (o *Operator) Pause() {
	o.mu.Lock()
	o.status.Paused = true
	o.mu.Unlock()
}

// Resume implements server.Operator.
func (o *Operator) Resume() {
	o.mu.Lock()
	o.status.Paused = false
	o.mu.Unlock()
}

// Sync implements server.Operator.
func (o *Operator) Sync(ctx context.Context, timeout time.Duration) error {
	if o.SyncFunc != nil {
		return o.SyncFunc(ctx, timeout)
	}
	return nil
}

// Status implements server.Operator.
func (o *Operator) Status(context.Context) server.Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status
}

// Digest implements server.Operator.
func (o *Operator) Digest(ctx context.Context) (string, error) {
	if o.DigestFunc != nil {
		return o.DigestFunc(ctx)
	}
	return "digest", nil
}

// Snapshot implements server.Operator.
func (o *Operator) Snapshot(ctx context.Context) (server.SnapshotInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.snapshots == nil {
		o.snapshots = map[string][]byte{}
	}
	data := o.SnapshotData
	if data == nil {
		data = []byte("GEOREP-SNAPSHOT\ntest snapshot\n")
	}
	name := fmt.Sprintf("%s-%d.snap", o.status.Region, len(o.snapshots)+1)
	o.snapshots[name] = data
	sum := sha256.Sum256(data)
	return server.SnapshotInfo{
		Name:       name,
		Size:       int64(len(data)),
		SHA256:     hex.EncodeToString(sum[:]),
		Created:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Region:     o.status.Region,
		Topic:      "georep.ops",
		Partitions: 8,
		Keys:       3,
		Covers:     map[string]int64{"georep.ops": 10, "eu.georep.ops": 7},
		Applied:    o.status.Applied,
	}, nil
}

// OpenSnapshot implements server.Operator.
func (o *Operator) OpenSnapshot(name string) (server.SnapshotFile, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	data, ok := o.snapshots[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", server.ErrNoSnapshot, name)
	}
	return snapshotFile{bytes.NewReader(data)}, nil
}

type snapshotFile struct{ *bytes.Reader }

func (snapshotFile) Close() error { return nil }
