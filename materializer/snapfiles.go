package materializer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/georep/georep/crdt"
)

// Snapshots of a running node: GEOREP SNAPSHOT and the periodic snapshots
// (Config.SnapshotInterval) write the node's state, in the snapshot file
// format (snapshot.go), into Config.SnapshotDir. A file is written under a
// temporary name, synced and renamed, so the directory only ever holds
// complete snapshots; readers (GEOREP SNAPSHOT READ) open them by name.

// Snapshot directory errors.
var (
	// ErrSnapshotsOff is returned when the node has no snapshot directory
	// (its state is in memory and none was configured).
	ErrSnapshotsOff = errors.New("materializer: snapshots are off (no snapshot directory)")
	// ErrNoSnapshot is returned for a snapshot name the directory does not
	// hold.
	ErrNoSnapshot = errors.New("materializer: no such snapshot")
	// ErrSnapshotName is returned for a name that is not a snapshot file
	// name (path separators, "..", another suffix).
	ErrSnapshotName = errors.New("materializer: invalid snapshot name")
)

// SnapshotSuffix ends the name of every snapshot file a node writes.
const SnapshotSuffix = ".snap"

// SavedSnapshot is a snapshot file in the node's snapshot directory.
type SavedSnapshot struct {
	// Name is the file name in the snapshot directory.
	Name string
	// Size in bytes.
	Size int64
	// SHA256 of the file, hex.
	SHA256 string
	// Header says whose state it is and which part of the log it covers.
	Header SnapshotHeader
	Stats  SnapshotStats
}

// ValidSnapshotName reports whether name can be a snapshot file's name: a
// plain file name (no path separator, not "." or "..", not hidden) ending
// in SnapshotSuffix.
func ValidSnapshotName(name string) bool {
	return len(name) > len(SnapshotSuffix) && len(name) <= 255 &&
		strings.HasSuffix(name, SnapshotSuffix) &&
		!strings.ContainsAny(name, "/\\\x00") && !strings.Contains(name, "..") &&
		name[0] != '.'
}

// SaveSnapshot writes a consistent snapshot of the applied state into the
// snapshot directory (temporary file, fsync, rename) and returns it. One
// snapshot is written at a time; a second call waits for the first.
func (n *Node) SaveSnapshot(ctx context.Context) (SavedSnapshot, error) {
	var out SavedSnapshot
	dir := n.cfg.SnapshotDir
	if dir == "" {
		return out, ErrSnapshotsOff
	}
	select {
	case n.snapMu <- struct{}{}:
		defer func() { <-n.snapMu }()
	case <-ctx.Done():
		return out, ctx.Err()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, fmt.Errorf("snapshot directory: %w", err)
	}
	n.removeSnapshotTemps(dir)
	now := time.Now().UTC()
	out.Name = n.cfg.Region + "-" + now.Format("20060102T150405.000Z") + SnapshotSuffix
	for i := 2; ; i++ { // two snapshots in one millisecond
		if _, err := os.Stat(filepath.Join(dir, out.Name)); errors.Is(err, os.ErrNotExist) {
			break
		}
		out.Name = fmt.Sprintf("%s-%s-%d%s", n.cfg.Region, now.Format("20060102T150405.000Z"), i, SnapshotSuffix)
	}
	tmp, err := os.CreateTemp(dir, "."+out.Name+".*.tmp")
	if err != nil {
		return out, err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	out.Header, out.Stats, err = n.WriteSnapshot(ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			out.Size = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return out, fmt.Errorf("write snapshot %s: %w", out.Name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, out.Name)); err != nil {
		return out, fmt.Errorf("write snapshot %s: %w", out.Name, err)
	}
	syncDir(dir)
	out.SHA256 = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// removeSnapshotTemps removes temporary files an interrupted snapshot left
// (caller holds snapMu).
func (n *Node) removeSnapshotTemps(dir string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, ".*"+SnapshotSuffix+".*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

// syncDir makes a rename in dir durable (best effort: not every platform
// can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// SnapshotFile is an open snapshot file of the snapshot directory.
type SnapshotFile struct {
	f    *os.File
	size int64
}

// ReadAt implements io.ReaderAt.
func (f *SnapshotFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Size is the file's size in bytes.
func (f *SnapshotFile) Size() int64 { return f.size }

// Close closes the file.
func (f *SnapshotFile) Close() error { return f.f.Close() }

// OpenSnapshot opens the snapshot called name in the snapshot directory.
// It returns ErrSnapshotName for a name that is not a snapshot file name
// (so no path outside the directory can be opened), ErrNoSnapshot when the
// directory does not hold it. Safe for concurrent use.
func (n *Node) OpenSnapshot(name string) (*SnapshotFile, error) {
	dir := n.cfg.SnapshotDir
	switch {
	case dir == "":
		return nil, ErrSnapshotsOff
	case !ValidSnapshotName(name):
		return nil, fmt.Errorf("%w: %q", ErrSnapshotName, name)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNoSnapshot, name)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %q", ErrNoSnapshot, name)
	}
	return &SnapshotFile{f: f, size: st.Size()}, nil
}

// SnapshotNames lists the snapshots in the snapshot directory, oldest
// first (names sort by creation time).
func (n *Node) SnapshotNames() ([]string, error) {
	dir := n.cfg.SnapshotDir
	if dir == "" {
		return nil, ErrSnapshotsOff
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && ValidSnapshotName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// pruneSnapshots removes all but the newest keep snapshots of the region.
func (n *Node) pruneSnapshots(keep int) error {
	names, err := n.SnapshotNames()
	if err != nil {
		return err
	}
	var own []string
	for _, name := range names {
		if strings.HasPrefix(name, n.cfg.Region+"-") {
			own = append(own, name)
		}
	}
	for len(own) > keep {
		if err := os.Remove(filepath.Join(n.cfg.SnapshotDir, own[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		own = own[1:]
	}
	return nil
}

// snapshotLoop writes a snapshot every SnapshotInterval once the node is in
// sync, keeping the newest SnapshotKeep. A failed snapshot is logged and
// retried at the next tick: it must not stop the node.
func (n *Node) snapshotLoop(ctx context.Context) error {
	select {
	case <-n.ready:
	case <-ctx.Done():
		return nil
	}
	tick := time.NewTicker(n.cfg.SnapshotInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s, err := n.SaveSnapshot(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			n.log.Error().Err(err).Msg("periodic snapshot")
			continue
		}
		n.log.Debug().Str("snapshot", s.Name).Int64("bytes", s.Size).Msg("periodic snapshot written")
		if err := n.pruneSnapshots(n.cfg.SnapshotKeep); err != nil {
			n.log.Error().Err(err).Msg("remove old snapshots")
		}
	}
}

// Applied is the per-origin greatest sequence the snapshot covers.
func (s SavedSnapshot) Applied() crdt.Clock { return s.Header.Applied() }
