package server

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// DefaultSyncTimeout is GEOREP SYNC's timeout when none is given.
const DefaultSyncTimeout = 10 * time.Second

// GEOREP PAUSE | RESUME | SYNC [timeout-ms] | STATUS | DIGEST.
func addGeorepCommands(r *registry) {
	acl := []string{"admin", "slow", "dangerous"}
	f := flagAdmin | flagNoScript | flagLoading | flagStale
	r.add(&command{name: "georep", arity: -2, acl: acl, group: "server",
		summary: "Operates georep's Active-Active replication."})
	r.add(&command{name: "georep|pause", arity: 2, flags: f, run: cmdGeorepPause, acl: acl, group: "server",
		summary: "Pauses inbound replication from peer regions."})
	r.add(&command{name: "georep|resume", arity: 2, flags: f, run: cmdGeorepResume, acl: acl, group: "server",
		summary: "Resumes inbound replication from peer regions."})
	r.add(&command{name: "georep|sync", arity: -2, flags: f, run: cmdGeorepSync, acl: acl, group: "server",
		summary: "Waits until everything reachable peers had written is applied here."})
	r.add(&command{name: "georep|status", arity: 2, flags: f, run: cmdGeorepStatus, acl: acl, group: "server",
		summary: "Returns the replication status of this region."})
	r.add(&command{name: "georep|digest", arity: 2, flags: f | flagRead, run: cmdGeorepDigest, acl: acl, group: "server",
		summary: "Returns a hash of the visible state, equal on converged regions."})
	addSnapshotCommands(r)
}

func cmdGeorepPause(cl *call) (Reply, error) {
	cl.s.op.Pause()
	return replyOK, nil
}

func cmdGeorepResume(cl *call) (Reply, error) {
	cl.s.op.Resume()
	return replyOK, nil
}

func cmdGeorepSync(cl *call) (Reply, error) {
	timeout := DefaultSyncTimeout
	switch len(cl.args) {
	case 2:
	case 3:
		ms, err := strconv.ParseInt(string(cl.args[2]), 10, 64)
		if err != nil || ms < 0 || ms > int64(24*time.Hour/time.Millisecond) {
			return Reply{}, ErrNotInteger
		}
		timeout = time.Duration(ms) * time.Millisecond
	default:
		return Reply{}, ErrSyntax
	}
	// Not bounded by WriteTimeout: the caller chose how long to wait.
	ctx, cancel := context.WithTimeout(cl.base, timeout+time.Second)
	defer cancel()
	err := cl.s.op.Sync(ctx, timeout)
	if errors.Is(err, context.DeadlineExceeded) && cl.base.Err() == nil {
		return Reply{}, errorf("ERR georep sync timed out after %d ms", timeout.Milliseconds())
	}
	if err != nil {
		return Reply{}, err
	}
	return replyOK, nil
}

func cmdGeorepStatus(cl *call) (Reply, error) {
	st := cl.s.op.Status(cl.ctx)
	peers := make([]Reply, len(st.Peers))
	for i, p := range st.Peers {
		peers[i] = mapReply(
			bulkString("region"), bulkString(p.Region),
			bulkString("instance_id"), integer(int64(p.InstanceID)),
			bulkString("lag_events"), integer(p.LagEvents),
			bulkString("lag_ms"), integer(p.LagMillis),
			bulkString("reachable"), boolReply(p.Reachable),
		)
	}
	applied := make([]Reply, 0, 2*len(st.Applied))
	for _, d := range st.Applied {
		applied = append(applied, bulkString(strconv.FormatUint(uint64(d.Origin), 10)), integer(int64(d.Seq)))
	}
	return mapReply(
		bulkString("region"), bulkString(st.Region),
		bulkString("instance_id"), integer(int64(st.InstanceID)),
		bulkString("paused"), boolReply(st.Paused),
		bulkString("writable"), boolReply(st.Writable),
		bulkString("reason"), bulkString(st.Reason),
		bulkString("peers"), array(peers...),
		bulkString("applied"), mapReply(applied...),
		bulkString("bad_records"), integer(st.BadRecords),
		bulkString("tombstones"), integer(st.Tombstones),
		bulkString("events_total"), integer(st.EventsTotal),
	), nil
}

func cmdGeorepDigest(cl *call) (Reply, error) {
	d, err := cl.s.op.Digest(cl.ctx)
	if err != nil {
		return Reply{}, err
	}
	return bulkString(d), nil
}
