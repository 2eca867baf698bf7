package deploy

import (
	"context"
	"errors"
	"fmt"
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

func (s store) Snapshot(ctx context.Context) (server.SnapshotInfo, error) {
	ss, err := s.n.SaveSnapshot(ctx)
	if err != nil {
		return server.SnapshotInfo{}, snapshotError(err)
	}
	info := server.SnapshotInfo{
		Name:       ss.Name,
		Size:       ss.Size,
		SHA256:     ss.SHA256,
		Created:    ss.Header.Created,
		Region:     ss.Header.Region,
		Topic:      ss.Header.Topic,
		Partitions: ss.Header.Partitions,
		Keys:       ss.Stats.Keys,
		Covers:     map[string]int64{},
		Applied:    ss.Applied(),
	}
	for t, parts := range ss.Header.Offsets {
		for _, off := range parts {
			info.Covers[t] += off
		}
	}
	return info, nil
}

func (s store) OpenSnapshot(name string) (server.SnapshotFile, error) {
	f, err := s.n.OpenSnapshot(name)
	if err != nil {
		return nil, snapshotError(err)
	}
	return f, nil
}

// snapshotError wraps the materializer's snapshot errors in the server's,
// which map to replies.
func snapshotError(err error) error {
	for me, se := range map[error]error{
		materializer.ErrSnapshotsOff: server.ErrSnapshotsOff,
		materializer.ErrNoSnapshot:   server.ErrNoSnapshot,
		materializer.ErrSnapshotName: server.ErrSnapshotName,
	} {
		if errors.Is(err, me) {
			return fmt.Errorf("%w: %v", se, err) // one %w: errorReply follows a single chain
		}
	}
	return err
}

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
	cl := s.n.ChangelogStats()
	out.Changelog, out.ChangelogPublished, out.ChangelogTruncated, out.ChangelogPending = cl.Enabled, cl.Published, cl.Truncated, cl.Pending
	return out
}

func (s store) WatchLists(fn func(key []byte)) { s.n.WatchLists(fn) }
