package server

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
)

// SnapshotTimeout bounds how long GEOREP SNAPSHOT may take to write a
// snapshot.
const SnapshotTimeout = 30 * time.Minute

// MaxSnapshotRead is the most bytes one GEOREP SNAPSHOT READ returns.
const MaxSnapshotRead = 1 << 20

// GEOREP SNAPSHOT, GEOREP SNAPSHOT READ <name> <offset> <count>.
func addSnapshotCommands(r *registry) {
	r.add(&command{name: "georep|snapshot", arity: -2, flags: flagAdmin | flagNoScript | flagLoading | flagStale,
		run: cmdGeorepSnapshot, acl: []string{"admin", "slow", "dangerous"}, group: "server",
		summary: "Writes a snapshot of the state into the node's snapshot directory; READ <name> <offset> <count> returns part of one."})
}

func cmdGeorepSnapshot(cl *call) (Reply, error) {
	if len(cl.args) == 2 {
		return snapshotWrite(cl)
	}
	if !strings.EqualFold(string(cl.args[2]), "read") {
		return Reply{}, ErrSyntax
	}
	if len(cl.args) != 6 {
		return Reply{}, errArity("georep|snapshot")
	}
	return snapshotRead(cl, string(cl.args[3]), cl.args[4], cl.args[5])
}

func snapshotWrite(cl *call) (Reply, error) {
	// Not bounded by WriteTimeout: a large state takes minutes.
	ctx, cancel := context.WithTimeout(cl.base, SnapshotTimeout)
	defer cancel()
	info, err := cl.s.op.Snapshot(ctx)
	if err != nil {
		return Reply{}, err
	}
	covers := make([]Reply, 0, 2*len(info.Covers))
	for _, t := range sortedKeys(info.Covers) {
		covers = append(covers, bulkString(t), integer(info.Covers[t]))
	}
	applied := make([]Reply, 0, 2*len(info.Applied))
	for _, d := range info.Applied {
		applied = append(applied, bulkString(strconv.FormatUint(uint64(d.Origin), 10)), integer(int64(d.Seq)))
	}
	return mapReply(
		bulkString("name"), bulkString(info.Name),
		bulkString("size"), integer(info.Size),
		bulkString("sha256"), bulkString(info.SHA256),
		bulkString("created"), bulkString(info.Created.UTC().Format(time.RFC3339Nano)),
		bulkString("region"), bulkString(info.Region),
		bulkString("topic"), bulkString(info.Topic),
		bulkString("partitions"), integer(int64(info.Partitions)),
		bulkString("keys"), integer(info.Keys),
		bulkString("covers"), mapReply(covers...),
		bulkString("applied"), mapReply(applied...),
	), nil
}

// validSnapshotName reports whether name is a plain file name: no path
// separator, no "..", not hidden. The node checks the rest.
func validSnapshotName(name string) bool {
	return name != "" && len(name) <= 255 && name[0] != '.' &&
		!strings.ContainsAny(name, "/\\\x00") && !strings.Contains(name, "..")
}

func snapshotRead(cl *call, name string, offArg, countArg []byte) (Reply, error) {
	if !validSnapshotName(name) {
		return Reply{}, ErrSnapshotName
	}
	off, err := strconv.ParseInt(string(offArg), 10, 64)
	if err != nil || off < 0 {
		return Reply{}, ErrNotInteger
	}
	count, err := strconv.ParseInt(string(countArg), 10, 64)
	if err != nil {
		return Reply{}, ErrNotInteger
	}
	if count < 1 || count > MaxSnapshotRead {
		return Reply{}, ErrSnapshotCount
	}
	f, err := cl.s.op.OpenSnapshot(name)
	if err != nil {
		return Reply{}, err
	}
	defer f.Close()
	size := f.Size()
	if off > size {
		return Reply{}, ErrOffsetRange
	}
	buf := make([]byte, min(count, size-off))
	n, err := f.ReadAt(buf, off)
	if err != nil && (err != io.EOF || n < len(buf)) {
		return Reply{}, err
	}
	return bulk(buf[:n]), nil
}
