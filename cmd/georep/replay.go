package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/materializer"
)

// ReplayCmd rebuilds a region's state from the topics of its Kafka cluster.
type ReplayCmd struct {
	Brokers    []string      `help:"Bootstrap servers of the region's Kafka cluster (for georep dev: its Kafka port, 19092 for the first region)." required:"" sep:","`
	Region     string        `help:"Region whose state is rebuilt." required:""`
	DataDir    string        `help:"State directory to build: empty, or holding an interrupted replay, which continues." required:"" name:"data-dir" type:"path"`
	Peers      []string      `help:"Peer regions whose mirrored topics are consumed (default: every <peer>.<topic> in the cluster)." sep:","`
	Partitions int32         `help:"Partitions of georep topics (default: the topics' own count)."`
	Topic      string        `help:"Name of every region's topic." default:"georep.ops"`
	Snapshot   string        `help:"Restore this snapshot first, then replay only what came after it." type:"existingfile"`
	Force      bool          `help:"Replay into a non-empty directory: keep its state and continue from its stored offsets."`
	AllowGaps  bool          `help:"Replay even when retention deleted events the state lacks (the result misses them)." name:"allow-gaps"`
	Progress   string        `help:"Progress display: auto (a bar on a terminal, lines otherwise), bar, lines or none." default:"auto" enum:"auto,bar,lines,none"`
	Interval   time.Duration `help:"Time between progress lines." default:"5s" name:"progress-interval"`
}

// Run replays until every partition reaches the end offsets listed at the
// start, or ctx ends (then it can be run again to continue).
func (c *ReplayCmd) Run(ctx context.Context, log zerolog.Logger, status *statusLine) error {
	if os.Getenv("GOGC") == "" {
		// Replay allocates fast against a small live heap: collecting less
		// often saves about a tenth of its CPU for a few hundred MB.
		debug.SetGCPercent(400)
	}
	mode := c.Progress
	if mode == "auto" {
		mode = "lines"
		if isatty.IsTerminal(os.Stderr.Fd()) {
			mode = "bar"
		}
	}
	return c.run(ctx, log, os.Stdout, status, mode)
}

func (c *ReplayCmd) run(ctx context.Context, log zerolog.Logger, out io.Writer, status *statusLine, mode string) (err error) {
	// A replay refused or failed before it restored or consumed anything
	// removes the directories it created (never one that was there).
	created, err := firstMissing(c.DataDir)
	if err != nil {
		return err
	}
	consumed := false
	defer func() {
		if err != nil && !consumed && created != "" {
			if rerr := os.RemoveAll(created); rerr != nil {
				log.Warn().Err(rerr).Str("dir", created).Msg("cannot remove the directory the refused replay created")
			}
		}
	}()
	r, err := materializer.NewReplay(materializer.ReplayConfig{
		Region:     c.Region,
		Brokers:    c.Brokers,
		DataDir:    c.DataDir,
		Topic:      c.Topic,
		Peers:      c.Peers,
		Partitions: c.Partitions,
		Force:      c.Force,
		AllowGaps:  c.AllowGaps,
	}, log)
	if err != nil {
		return err
	}
	defer r.Close()
	if r.Resumed() {
		fmt.Fprintf(out, "continuing the interrupted replay in %s\n", c.DataDir)
	}
	if c.Snapshot != "" {
		if err := c.restore(ctx, r, out); err != nil {
			return err
		}
		// The restored state is kept: run again, the replay continues
		// from it ("was restored by the interrupted run").
		consumed = true
	}
	stop := showProgress(r, c.Region, status, mode, c.Interval)
	res, err := r.Run(ctx)
	stop()
	consumed = consumed || res.Read > 0
	printSummary(out, c.Region, c.DataDir, res)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("replay interrupted; run the same command again to continue")
		}
		if re := (*materializer.RegionError)(nil); errors.As(err, &re) {
			return c.regionError(re)
		}
		return err
	}
	return r.Close()
}

// regionError explains that the brokers hold another region's events.
func (c *ReplayCmd) regionError(e *materializer.RegionError) error {
	brokers := strings.Join(c.Brokers, ",")
	if len(e.Found) == 1 {
		return &explainedError{fmt.Sprintf("replay: topic %s on %s holds region %s's events, not %s's (use --region %s)", e.Topic, brokers, e.Found[0], c.Region, e.Found[0]), e}
	}
	return &explainedError{fmt.Sprintf("replay: topic %s on %s holds the events of regions %s, not only %s's", e.Topic, brokers, strings.Join(e.Found, ", "), c.Region), e}
}

// explainedError is err told in the CLI's words.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// firstMissing returns the outermost of dir and its parents that does not
// exist ("" when dir exists): what creating dir creates.
func firstMissing(dir string) (string, error) {
	missing := ""
	for d := filepath.Clean(dir); ; {
		_, err := os.Lstat(d)
		if err == nil {
			return missing, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		missing = d
		parent := filepath.Dir(d)
		if parent == d {
			return missing, nil
		}
		d = parent
	}
}

func (c *ReplayCmd) restore(ctx context.Context, r *materializer.Replay, out io.Writer) error {
	f, err := os.Open(c.Snapshot)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr, restored, err := r.Restore(ctx, f, filepath.Base(c.Snapshot))
	if err != nil {
		return fmt.Errorf("restore %s: %w", c.Snapshot, err)
	}
	if restored {
		fmt.Fprintf(out, "restored snapshot %s (region %s, taken %s, applied %s)\n",
			c.Snapshot, orUnknown(hdr.Region), hdr.Created.Format(time.RFC3339), formatClock(hdr.Applied(), hdr.Origins))
	} else {
		fmt.Fprintf(out, "snapshot %s was restored by the interrupted run\n", c.Snapshot)
	}
	return nil
}

// showProgress reports r's progress until the returned func is called: a
// redrawn bar (mode "bar") or a plain line every interval ("lines").
func showProgress(r *materializer.Replay, region string, status *statusLine, mode string, interval time.Duration) func() {
	if mode == "none" || status == nil {
		return func() {}
	}
	every := interval
	if mode == "bar" {
		every = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				status.Clear()
				return
			case <-t.C:
			}
			p := r.Progress()
			if p.Total == 0 && p.Events == 0 {
				continue
			}
			if mode == "bar" {
				status.Set(progressBar(region, p, 30))
			} else {
				fmt.Fprintln(status, progressLine(region, p))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// rate is events applied per second so far.
func rate(p materializer.ReplayProgress) float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// eta estimates the time left from the records read so far.
func eta(p materializer.ReplayProgress) time.Duration {
	if p.Read == 0 || p.Elapsed <= 0 {
		return -1
	}
	return time.Duration(float64(p.Elapsed) * float64(p.Remaining) / float64(p.Read)).Round(time.Second)
}

func percent(p materializer.ReplayProgress) float64 {
	if p.Total == 0 {
		return 100
	}
	return 100 * float64(p.Read) / float64(p.Total)
}

func progressBar(region string, p materializer.ReplayProgress, width int) string {
	filled := int(float64(width) * percent(p) / 100)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	if filled > 0 && filled < width {
		bar = bar[:filled-1] + ">" + bar[filled:]
	}
	left := "?"
	if d := eta(p); d >= 0 {
		left = d.String()
	}
	return fmt.Sprintf("replay %s [%s] %5.1f%%  %s events  %s/s  %s records left  ETA %s",
		region, bar, percent(p), humanize.Comma(p.Events), humanize.Comma(int64(rate(p))), humanize.Comma(p.Remaining), left)
}

func progressLine(region string, p materializer.ReplayProgress) string {
	return fmt.Sprintf("replay %s: %.1f%%, %s events applied, %s events/s, %s records remaining",
		region, percent(p), humanize.Comma(p.Events), humanize.Comma(int64(rate(p))), humanize.Comma(p.Remaining))
}

func printSummary(out io.Writer, region, dir string, res materializer.ReplayResult) {
	var b strings.Builder
	switch {
	case res.Complete:
		fmt.Fprintf(&b, "replay of region %s complete in %s\n", region, res.Elapsed.Round(time.Millisecond))
	case res.Total == 0 && res.Read == 0 && len(res.Topics) == 0:
		return // failed before consuming anything: the error says why
	default:
		fmt.Fprintf(&b, "replay of region %s stopped after %s at %.1f%% (%s records left)\n", region, res.Elapsed.Round(time.Millisecond), percent(res.ReplayProgress), humanize.Comma(res.Remaining))
	}
	for _, t := range res.Topics {
		from := "own topic"
		if t.Peer != "" {
			from = "mirror of " + t.Peer
		}
		fmt.Fprintf(&b, "  %-24s %-16s %d partitions, %s records read\n", t.Name, from, t.Partitions, humanize.Comma(t.Read))
	}
	fmt.Fprintf(&b, "  events applied     %s (%s/s)\n", humanize.Comma(res.Events), humanize.Comma(int64(rate(res.ReplayProgress))))
	if skipped := res.Read - res.Events - res.BadRecords; skipped > 0 {
		fmt.Fprintf(&b, "  already applied    %s records (duplicates, transaction markers)\n", humanize.Comma(skipped))
	}
	fmt.Fprintf(&b, "  bad records        %s", humanize.Comma(res.BadRecords))
	if res.BadRecords > 0 {
		fmt.Fprintf(&b, " skipped (the log names each one's topic, partition and offset, up to %d a second per partition)", materializer.BadRecordLogLimit)
	}
	b.WriteString("\n")
	for _, g := range res.Gaps {
		fmt.Fprintf(&b, "  MISSING            %s (retention)\n", g)
	}
	fmt.Fprintf(&b, "  applied vector     %s\n", formatClock(res.Applied, res.Origins))
	if res.Complete {
		fmt.Fprintf(&b, "  state in %s (georep digest --data-dir %s hashes it; a node can start on it)\n", dir, dir)
	}
	io.WriteString(out, b.String())
}

// formatClock prints a version vector as region(id)=seq, by instance ID.
func formatClock(c crdt.Clock, names map[crdt.ReplicaID]string) string {
	if len(c) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(c))
	for _, d := range c {
		if n := names[d.Origin]; n != "" {
			parts = append(parts, fmt.Sprintf("%s(%d)=%d", n, d.Origin, d.Seq))
		} else {
			parts = append(parts, fmt.Sprintf("%d=%d", d.Origin, d.Seq))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// statusLine is stderr with an optional status line (the replay progress
// bar) kept at the bottom: whatever else is written, logs included, goes
// above it.
type statusLine struct {
	mu   sync.Mutex
	w    io.Writer
	line string
}

func newStatusLine(w io.Writer) *statusLine { return &statusLine{w: w} }

const clearLine = "\r\033[K"

func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		io.WriteString(s.w, clearLine)
	}
	n, err := s.w.Write(p)
	if s.line != "" {
		io.WriteString(s.w, s.line)
	}
	return n, err
}

// Set replaces the status line.
func (s *statusLine) Set(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = line
	io.WriteString(s.w, clearLine+line)
}

// Clear removes the status line.
func (s *statusLine) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		io.WriteString(s.w, clearLine)
	}
	s.line = ""
}
