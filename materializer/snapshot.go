package materializer

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/oplog"
)

// A snapshot file is a region's whole state at one instant, with the log
// positions it covers, so that a replay restores it and consumes only what
// came after:
//
//	"GEOREP-SNAPSHOT\n"          magic
//	uvarint n, n bytes           SnapshotHeader as JSON
//	zstd stream of               every Badger entry of the state, in key order:
//	  uvarint len(k), k, uvarint len(v), v
//	  ... then uvarint 0, uvarint entry count
//
// The header and the entries come from one read transaction, so the offsets
// and watermarks in the header are exactly those stored with the state. A
// truncated or corrupt file fails the zstd checksum or the end marker.
const snapshotMagic = "GEOREP-SNAPSHOT\n"

// SnapshotFormat is the version of the snapshot file format this build
// writes and reads.
const SnapshotFormat = 1

// Snapshot errors.
var (
	// ErrBadSnapshot is returned for a file that is not a complete snapshot
	// this build reads.
	ErrBadSnapshot = errors.New("materializer: bad snapshot file")
	// ErrSnapshotMismatch is returned when a snapshot does not fit the
	// replay it is given to (another region, topic or partition count).
	ErrSnapshotMismatch = errors.New("materializer: snapshot does not match")
)

// SnapshotHeader describes a snapshot: whose state it is and which part of
// the log it covers.
type SnapshotHeader struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Region is the region whose state this is ("" when the tool that wrote
	// it did not know).
	Region string `json:"region,omitempty"`
	// Topic is the regions' topic name.
	Topic string `json:"topic"`
	// Partitions of the topics.
	Partitions int32 `json:"partitions"`
	// Offsets is, per consumed topic and partition, the next offset to
	// consume: everything before it is in the state.
	Offsets oplog.Offsets `json:"offsets"`
	// Watermarks is, per partition and origin, the greatest sequence
	// applied.
	Watermarks map[int32]map[crdt.ReplicaID]uint64 `json:"watermarks"`
	// Origins names the origin instance IDs, as the record headers did
	// (empty when the tool that wrote it did not know them).
	Origins map[crdt.ReplicaID]string `json:"origins,omitempty"`
}

// Applied returns the per-origin greatest sequence over every partition.
func (h *SnapshotHeader) Applied() crdt.Clock {
	var c crdt.Clock
	for _, wm := range h.Watermarks {
		for o, seq := range wm {
			c = c.With(o, seq)
		}
	}
	return c
}

// SnapshotStats is what writing or restoring a snapshot did.
type SnapshotStats struct {
	Entries int64 // Badger entries (state, offsets, watermarks, indexes)
	Keys    int64 // Redis keys
}

// WriteSnapshot writes the node's applied state to w as a snapshot file. It
// runs alongside writes and replication: the snapshot is one consistent
// read transaction.
func (n *Node) WriteSnapshot(ctx context.Context, w io.Writer) (SnapshotHeader, SnapshotStats, error) {
	hdr := SnapshotHeader{Region: n.cfg.Region, Topic: n.cfg.Topic, Partitions: n.cfg.Partitions}
	n.originNames.Range(func(k, v any) bool {
		if hdr.Origins == nil {
			hdr.Origins = map[crdt.ReplicaID]string{}
		}
		hdr.Origins[k.(crdt.ReplicaID)] = v.(string)
		return true
	})
	return writeSnapshot(ctx, n.db, hdr, w)
}

// State is a stopped node's (or a finished replay's) state directory, opened
// by an offline tool. It holds the directory's lock: a running node on the
// same directory makes OpenState fail.
type State struct {
	db *badger.DB
}

// ErrNoState is returned by OpenState for a directory holding no state.
var ErrNoState = errors.New("materializer: no state in directory")

// OpenState opens the state in dir, which must exist and hold a state.
func OpenState(dir string, log zerolog.Logger) (*State, error) {
	if _, err := os.Stat(filepath.Join(dir, badger.ManifestFilename)); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrNoState, dir, err)
	}
	db, err := openBadger(dir, log.With().Str("component", "materializer").Logger())
	if err != nil {
		return nil, err
	}
	return &State{db: db}, nil
}

// Digest returns the state's digest at wall-clock time now (ms), the same
// hash GEOREP DIGEST gives for a node holding this state.
func (s *State) Digest(now int64) (string, error) { return Digest(s.db, now) }

// Positions returns the stored next offset of every consumed topic
// partition.
func (s *State) Positions() (oplog.Offsets, error) {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return readPositions(txn)
}

// WriteSnapshot writes the state to w as a snapshot file; hdr gives the
// region, topic and partition count (offsets and watermarks are read from
// the state).
func (s *State) WriteSnapshot(ctx context.Context, hdr SnapshotHeader, w io.Writer) (SnapshotHeader, SnapshotStats, error) {
	return writeSnapshot(ctx, s.db, hdr, w)
}

// Close closes the state.
func (s *State) Close() error { return s.db.Close() }

func readPositions(txn *badger.Txn) (oplog.Offsets, error) {
	out := oplog.Offsets{}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixOffset}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) < 5 {
			continue
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		if len(v) == 8 {
			out.Set(string(k[5:]), int32(beUint32(k[1:5])), int64(beUint64(v)))
		}
	}
	return out, nil
}

func readWatermarks(txn *badger.Txn) (map[int32]map[crdt.ReplicaID]uint64, error) {
	out := map[int32]map[crdt.ReplicaID]uint64{}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixWatermark}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != 9 {
			continue
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		if len(v) == 16 {
			p := int32(beUint32(k[1:5]))
			if out[p] == nil {
				out[p] = map[crdt.ReplicaID]uint64{}
			}
			out[p][crdt.ReplicaID(beUint32(k[5:9]))] = beUint64(v)
		}
	}
	return out, nil
}

// writeSnapshot writes db's state in one read transaction.
func writeSnapshot(ctx context.Context, db *badger.DB, hdr SnapshotHeader, w io.Writer) (SnapshotHeader, SnapshotStats, error) {
	var st SnapshotStats
	txn := db.NewTransaction(false)
	defer txn.Discard()
	var err error
	if hdr.Offsets, err = readPositions(txn); err != nil {
		return hdr, st, err
	}
	if hdr.Watermarks, err = readWatermarks(txn); err != nil {
		return hdr, st, err
	}
	for t, parts := range hdr.Offsets {
		for p := range parts {
			if p >= hdr.Partitions {
				return hdr, st, fmt.Errorf("%w: the state has offsets of %s partition %d, more than the %d partitions given", ErrSnapshotMismatch, t, p, hdr.Partitions)
			}
		}
	}
	hdr.Format = SnapshotFormat
	hdr.Created = time.Now().UTC()
	js, err := json.Marshal(hdr)
	if err != nil {
		return hdr, st, err
	}
	head := append([]byte(snapshotMagic), binary.AppendUvarint(nil, uint64(len(js)))...)
	if _, err := w.Write(append(head, js...)); err != nil {
		return hdr, st, err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return hdr, st, err
	}
	defer zw.Close()
	bw := bufio.NewWriterSize(zw, 1<<16)
	var lenBuf [binary.MaxVarintLen64]byte
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if st.Entries%4096 == 0 && ctx.Err() != nil {
			return hdr, st, ctx.Err()
		}
		item := it.Item()
		k := item.Key()
		bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		bw.Write(k)
		err := item.Value(func(v []byte) error {
			bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(v)))])
			_, err := bw.Write(v)
			return err
		})
		if err != nil {
			return hdr, st, err
		}
		st.Entries++
		if len(k) > 0 && k[0] == prefixMeta {
			st.Keys++
		}
	}
	bw.Write(binary.AppendUvarint([]byte{0}, uint64(st.Entries)))
	if err := bw.Flush(); err != nil {
		return hdr, st, err
	}
	if err := zw.Close(); err != nil {
		return hdr, st, err
	}
	return hdr, st, nil
}

// ReadSnapshotHeader reads a snapshot file's header, leaving r at the
// start of its entries.
func ReadSnapshotHeader(r *bufio.Reader) (SnapshotHeader, error) {
	var hdr SnapshotHeader
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return hdr, fmt.Errorf("%w: not a georep snapshot", ErrBadSnapshot)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 64<<20 {
		return hdr, fmt.Errorf("%w: header length", ErrBadSnapshot)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return hdr, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if err := json.Unmarshal(js, &hdr); err != nil {
		return hdr, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if hdr.Format != SnapshotFormat {
		return hdr, fmt.Errorf("%w: format %d, this build reads %d", ErrBadSnapshot, hdr.Format, SnapshotFormat)
	}
	return hdr, nil
}

// loadSnapshot writes a snapshot's entries (r positioned after the header)
// into db, which must be empty.
func loadSnapshot(ctx context.Context, db *badger.DB, r io.Reader) (SnapshotStats, error) {
	var st SnapshotStats
	zr, err := zstd.NewReader(r)
	if err != nil {
		return st, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 1<<16)
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	bad := func(what string, err error) (SnapshotStats, error) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return st, fmt.Errorf("%w: %s after %d entries: %v", ErrBadSnapshot, what, st.Entries, err)
	}
	for {
		if st.Entries%4096 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		kl, err := binary.ReadUvarint(br)
		if err != nil {
			return bad("entry", err)
		}
		if kl == 0 {
			break
		}
		if kl > 1<<20 {
			return bad("key length", nil)
		}
		k := make([]byte, kl)
		if _, err := io.ReadFull(br, k); err != nil {
			return bad("key", err)
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil || vl > 1<<30 {
			return bad("value length", err)
		}
		v := make([]byte, vl)
		if _, err := io.ReadFull(br, v); err != nil {
			return bad("value", err)
		}
		if err := wb.Set(k, v); err != nil {
			return st, fmt.Errorf("restore: %w", err)
		}
		st.Entries++
		if k[0] == prefixMeta {
			st.Keys++
		}
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return bad("end marker", err)
	}
	if count != uint64(st.Entries) {
		return st, fmt.Errorf("%w: %d entries, the end marker says %d", ErrBadSnapshot, st.Entries, count)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		// Reading to the end checks the zstd frame checksum.
		return bad("trailing data or checksum", err)
	}
	if err := wb.Flush(); err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	return st, nil
}
