package deploy

import (
	"context"
	"time"

	"github.com/georep/georep/materializer"
	"github.com/georep/georep/server"
)

// store adapts a materializer.Node to server.Store and server.Operator.
type store struct{ n *materializer.Node }

var (
	_ server.Store    = store{}
	_ server.Operator = store{}
	_ server.Tx       = (*materializer.Tx)(nil)
	_ server.View     = (*materializer.Snapshot)(nil)
	_ server.Ack      = (*materializer.Ack)(nil)
)

func (s store) View(ctx context.Context, fn func(v server.View) error) error {
	return s.n.View(ctx, func(v *materializer.Snapshot) error { return fn(v) })
}

func (s store) Update(ctx context.Context, keys [][]byte, fn func(tx server.Tx) error) (server.Ack, error) {
	ack, err := s.n.Update(ctx, keys, func(tx *materializer.Tx) error { return fn(tx) })
	if err != nil {
		return nil, err
	}
	return ack, nil
}

func (s store) FlushAll(ctx context.Context) error { return s.n.FlushAll(ctx) }

func (s store) Pause()  { s.n.Pause() }
func (s store) Resume() { s.n.Resume() }

func (s store) Sync(ctx context.Context, timeout time.Duration) error {
	return s.n.Sync(ctx, timeout)
}

func (s store) Digest(ctx context.Context) (string, error) { return s.n.Digest(ctx) }

func (s store) Status(ctx context.Context) server.Status {
	st := s.n.Status(ctx)
	out := server.Status{
		Region:      st.Region,
		InstanceID:  st.InstanceID,
		Paused:      st.Paused,
		Writable:    st.Writable,
		Reason:      st.Reason,
		Applied:     st.Applied,
		BadRecords:  st.BadRecords,
		Tombstones:  st.Tombstones,
		EventsTotal: st.EventsTotal,
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, server.PeerStatus(p))
	}
	return out
}

func (s store) WatchLists(fn func(key []byte)) { s.n.WatchLists(fn) }
