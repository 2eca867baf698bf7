package servertest

import (
	"context"
	"sync"
	"time"

	"github.com/georep/georep/server"
)

// Operator is a server.Operator answering from its fields. SyncFunc and
// DigestFunc, when set, replace the defaults (Sync succeeds at once, Digest
// returns "digest").
type Operator struct {
	SyncFunc   func(ctx context.Context, timeout time.Duration) error
	DigestFunc func(ctx context.Context) (string, error)

	mu     sync.Mutex
	status server.Status
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
