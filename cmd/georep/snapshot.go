package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"

	"github.com/georep/georep/materializer"
)

// SnapshotCmd writes a snapshot of a region's state: the state with the log
// offsets and watermarks it covers, which georep replay --snapshot restores.
type SnapshotCmd struct {
	Out        string        `help:"Snapshot file to write (replaced atomically)." required:"" type:"path"`
	DataDir    string        `help:"State directory of a stopped node or a finished replay (give this or --addr)." name:"data-dir" type:"existingdir" xor:"source"`
	Addr       string        `help:"RESP address of a running node: it writes a snapshot into its snapshot directory (GEOREP SNAPSHOT), which is then copied to --out here over RESP (give this or --data-dir)." xor:"source"`
	Password   string        `help:"AUTH password, if the node requires one." env:"GEOREP_REQUIREPASS"`
	Region     string        `help:"Region whose state it is (recorded in the snapshot and checked on restore; --data-dir)."`
	Partitions int32         `help:"Partitions of georep topics (--data-dir)." default:"8"`
	Topic      string        `help:"Name of every region's topic (--data-dir)." default:"georep.ops"`
	Timeout    time.Duration `help:"How long a running node may take to write the snapshot, and each read of it (--addr)." default:"30m"`
}

// Validate demands exactly one source: kong's xor group refuses both, and
// kong would list both as required in the usage line were they tagged so.
func (c *SnapshotCmd) Validate() error {
	if c.DataDir == "" && c.Addr == "" {
		return errors.New("give --data-dir (a stopped node's state directory) or --addr (a running node's RESP address)")
	}
	return nil
}

// Run writes the snapshot.
func (c *SnapshotCmd) Run(ctx context.Context, log zerolog.Logger) error {
	return c.run(ctx, log, os.Stdout)
}

func (c *SnapshotCmd) run(ctx context.Context, log zerolog.Logger, out io.Writer) error {
	if c.Addr != "" {
		return c.remote(ctx, out)
	}
	s, err := openState(c.DataDir, log)
	if err != nil {
		return err
	}
	defer s.Close()
	var hdr materializer.SnapshotHeader
	var st materializer.SnapshotStats
	size, err := writeFileAtomic(c.Out, func(w io.Writer) error {
		var err error
		hdr, st, err = s.WriteSnapshot(ctx, materializer.SnapshotHeader{Region: c.Region, Topic: c.Topic, Partitions: c.Partitions}, w)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "snapshot of %s written to %s: %s keys, %s\n", c.DataDir, c.Out, humanize.Comma(st.Keys), humanize.IBytes(uint64(size)))
	printCoverage(out, hdr)
	return s.Close()
}

// remote asks a running node to write a snapshot into its snapshot
// directory, then copies it here over RESP (GEOREP SNAPSHOT READ, in chunks)
// and checks its SHA-256.
func (c *SnapshotCmd) remote(ctx context.Context, out io.Writer) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.Timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	rd := bufio.NewReaderSize(conn, 1<<20)
	if c.Password != "" {
		if _, err := roundTrip(conn, rd, "AUTH", c.Password); err != nil {
			return err
		}
	}
	v, err := roundTrip(conn, rd, "GEOREP", "SNAPSHOT")
	var re replyError
	if errors.As(err, &re) {
		return fmt.Errorf("node %s: %w", c.Addr, err)
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", c.Addr, ctxErr(ctx, err))
	}
	snap, err := parseSnapshotReply(v)
	if err != nil {
		return fmt.Errorf("node %s: GEOREP SNAPSHOT reply: %w", c.Addr, err)
	}
	size, err := writeFileAtomic(c.Out, func(w io.Writer) error {
		return c.copySnapshot(ctx, conn, rd, snap, w)
	})
	if err != nil {
		return fmt.Errorf("copy snapshot %s from %s: %w", snap.name, c.Addr, ctxErr(ctx, err))
	}
	f, err := os.Open(c.Out)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr, err := materializer.ReadSnapshotHeader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: %w", c.Out, err)
	}
	fmt.Fprintf(out, "snapshot %s of %s copied to %s: %s keys, %s, sha256 %s\n", snap.name, c.Addr, c.Out,
		humanize.Comma(snap.keys), humanize.IBytes(uint64(size)), snap.sha256)
	printCoverage(out, hdr)
	return nil
}

// snapshotChunk is the size of each GEOREP SNAPSHOT READ; snapshotAhead
// reads are kept in flight.
const (
	snapshotChunk = 1 << 20
	snapshotAhead = 4
)

// copySnapshot reads the snapshot from the node into w and checks its size
// and SHA-256. Each read gets a fresh deadline, so ctx is checked after
// setting it: remote's AfterFunc may have set its own just before.
func (c *SnapshotCmd) copySnapshot(ctx context.Context, conn net.Conn, rd *bufio.Reader, snap remoteSnapshot, w io.Writer) error {
	h := sha256.New()
	var sent, got int64
	for got < snap.size {
		for sent < snap.size && sent-got < snapshotAhead*snapshotChunk {
			if err := writeCommand(conn, "GEOREP", "SNAPSHOT", "READ", snap.name, strconv.FormatInt(sent, 10), strconv.Itoa(snapshotChunk)); err != nil {
				return err
			}
			sent += snapshotChunk
		}
		_ = conn.SetDeadline(time.Now().Add(c.Timeout))
		// A cancellation whose deadline this one just replaced.
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := readReply(rd)
		if err != nil {
			return err
		}
		chunk, ok := v.(string)
		if want := min(snapshotChunk, snap.size-got); !ok || int64(len(chunk)) != want {
			return fmt.Errorf("read at offset %d: got %d bytes, expected %d (the snapshot changed or was removed on the node?)", got, len(chunk), want)
		}
		h.Write([]byte(chunk))
		if _, err := io.WriteString(w, chunk); err != nil {
			return err
		}
		got += int64(len(chunk))
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != snap.sha256 {
		return fmt.Errorf("checksum mismatch: copied %d bytes with SHA-256 %s, the node reported %s", got, sum, snap.sha256)
	}
	return nil
}

// remoteSnapshot is what GEOREP SNAPSHOT replied.
type remoteSnapshot struct {
	name, sha256 string
	size, keys   int64
}

func parseSnapshotReply(v any) (remoteSnapshot, error) {
	var s remoteSnapshot
	kv, ok := v.([]any)
	if !ok || !isPairs(kv) {
		return s, fmt.Errorf("unexpected reply %v", v)
	}
	for i := 0; i < len(kv); i += 2 {
		switch kv[i].(string) {
		case "name":
			s.name, _ = kv[i+1].(string)
		case "sha256":
			s.sha256, _ = kv[i+1].(string)
		case "size":
			s.size, _ = kv[i+1].(int64)
		case "keys":
			s.keys, _ = kv[i+1].(int64)
		}
	}
	if s.name == "" || s.sha256 == "" || s.size <= 0 {
		return s, fmt.Errorf("no name, size or sha256 in %v", v)
	}
	return s, nil
}

// ctxErr prefers ctx's error to the network error its cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func printCoverage(out io.Writer, hdr materializer.SnapshotHeader) {
	fmt.Fprintf(out, "  region %s, topic %s, %d partitions\n", orUnknown(hdr.Region), hdr.Topic, hdr.Partitions)
	for _, t := range sortedKeys(hdr.Offsets) {
		var sum int64
		for _, off := range hdr.Offsets[t] {
			sum += off
		}
		fmt.Fprintf(out, "  covers %-24s %s records\n", t, humanize.Comma(sum))
	}
	fmt.Fprintf(out, "  applied vector %s\n", formatClock(hdr.Applied(), nil))
}

// writeFileAtomic writes path through fn via a temporary file renamed into
// place once synced; it returns the size written.
func writeFileAtomic(path string, fn func(w io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	cw := &countingWriter{w: bufio.NewWriterSize(tmp, 1<<20)}
	if err := fn(cw); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return cw.n, os.Rename(tmp.Name(), path)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
