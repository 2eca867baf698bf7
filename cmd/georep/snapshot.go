package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"

	"github.com/georep/georep/materializer"
)

// SnapshotCmd writes a snapshot of a region's state: the state with the log
// offsets and watermarks it covers, which georep replay --snapshot restores.
type SnapshotCmd struct {
	Out        string        `help:"Snapshot file to write (replaced atomically)." required:"" type:"path"`
	DataDir    string        `help:"State directory of a stopped node or a finished replay." name:"data-dir" type:"existingdir" xor:"source" required:""`
	Addr       string        `help:"RESP address of a running node: it writes the snapshot itself (GEOREP SNAPSHOT), to --out on its own host." xor:"source" required:""`
	Password   string        `help:"AUTH password, if the node requires one." env:"GEOREP_REQUIREPASS"`
	Region     string        `help:"Region whose state it is (recorded in the snapshot and checked on restore)."`
	Partitions int32         `help:"Partitions of georep topics." default:"8"`
	Topic      string        `help:"Name of every region's topic." default:"georep.ops"`
	Timeout    time.Duration `help:"How long a running node may take (--addr)." default:"10m"`
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

// remote asks a running node to write the snapshot.
func (c *SnapshotCmd) remote(ctx context.Context, out io.Writer) error {
	path, err := filepath.Abs(c.Out)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.Timeout))
	rd := bufio.NewReader(conn)
	if c.Password != "" {
		if _, err := roundTrip(conn, rd, "AUTH", c.Password); err != nil {
			return err
		}
	}
	v, err := roundTrip(conn, rd, "GEOREP", "SNAPSHOT", path)
	var re replyError
	if errors.As(err, &re) {
		return fmt.Errorf("node %s: %w (a node without GEOREP SNAPSHOT: stop it and use --data-dir)", c.Addr, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(out, render(v, ""))
	return nil
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
