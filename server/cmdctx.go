package server

import (
	"context"
	"sync"
	"time"
)

// cmdContext is a command's context: the connection's, with a deadline.
// Most commands never wait on their context, so its timer (a
// context.WithDeadline) is only made when something asks for Done;
// Deadline, Err and Value answer without it. end cancels it.
type cmdContext struct {
	parent   context.Context
	deadline time.Time

	mu      sync.Mutex
	ctx     context.Context // made by Done
	cancel  context.CancelFunc
	ended   bool
	endedAt time.Time
}

var _ context.Context = (*cmdContext)(nil)

func newCmdContext(parent context.Context, deadline time.Time) *cmdContext {
	return &cmdContext{parent: parent, deadline: deadline}
}

// Deadline implements context.Context.
func (c *cmdContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done implements context.Context.
func (c *cmdContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.ended {
			c.cancel()
		}
	}
	return c.ctx.Done()
}

// Err implements context.Context.
func (c *cmdContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ctx != nil:
		return c.ctx.Err()
	case c.parent.Err() != nil:
		return c.parent.Err()
	case c.ended && c.endedAt.Before(c.deadline):
		return context.Canceled
	case !time.Now().Before(c.deadline):
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (c *cmdContext) Value(key any) any { return c.parent.Value(key) }

// end cancels the context once the command has returned.
func (c *cmdContext) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended, c.endedAt = true, time.Now()
	if c.cancel != nil {
		c.cancel()
	}
}
