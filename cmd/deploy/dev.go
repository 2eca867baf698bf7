package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/georep/georep/materializer"
	"github.com/georep/georep/oplog"
	"github.com/georep/georep/server"
)

// DevConfig configures an embedded multi-region deployment.
type DevConfig struct {
	// Regions, in instance-ID order (the first is 1).
	Regions []string
	// Host to listen on (default 127.0.0.1).
	Host string
	// Port is the first region's RESP port; the others follow. 0 picks free
	// ports.
	Port int
	// KafkaPort is the first region's broker port; the others follow. 0
	// picks free ports.
	KafkaPort int
	// DataDir holds each region's broker log and state; empty keeps all in
	// memory (tests).
	DataDir string
	// ClockOffsets shift regions' wall clocks.
	ClockOffsets map[string]time.Duration
	// Partitions of the topics (default 8).
	Partitions int32
	// WriteTimeout of each node and of its server's commands (default 5s).
	WriteTimeout time.Duration
	// RequirePass for every region's server.
	RequirePass string
	// StartPaused names regions whose inbound replication starts paused
	// (GEOREP RESUME starts it): tests of a new region catching up.
	StartPaused []string
	// NoBridges leaves mirroring to someone else (tests of faults); the
	// nodes still watch the peers' clusters for GEOREP SYNC and STATUS.
	NoBridges bool
	// SnapshotDir holds each region's snapshots in a subdirectory named
	// after it (default: DataDir/<region>/snapshots; none in memory).
	SnapshotDir string
	// SnapshotInterval and SnapshotKeep are every node's periodic
	// snapshots (materializer.Config).
	SnapshotInterval time.Duration
	SnapshotKeep     int
	// Changelog makes every node publish a changelog (docs/cdc.md) to
	// ChangelogTopic (default georep.changelog) in its region's broker.
	Changelog      bool
	ChangelogTopic string
}

// Validate reports a configuration error.
func (c DevConfig) Validate() error {
	if len(c.Regions) < 1 || len(c.Regions) > 8 {
		return fmt.Errorf("between 1 and 8 regions are supported, got %d", len(c.Regions))
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if r == "" || seen[r] {
			return fmt.Errorf("region names must be unique and non-empty: %q", c.Regions)
		}
		seen[r] = true
	}
	for r := range c.ClockOffsets {
		if !seen[r] {
			return fmt.Errorf("--clock-offset names unknown region %q", r)
		}
	}
	for _, r := range c.StartPaused {
		if !seen[r] {
			return fmt.Errorf("start-paused names unknown region %q", r)
		}
	}
	return nil
}

// DevRegion is one region of a dev deployment.
type DevRegion struct {
	Name       string
	InstanceID uint32
	Brokers    []string
	Region     *Region
	Cluster    *kfake.Cluster
}

// Dev is an embedded deployment: one kfake broker and one region per name.
type Dev struct {
	cfg     DevConfig
	log     zerolog.Logger
	Regions []*DevRegion
}

// NewDev starts the embedded brokers (they run as soon as they exist) and
// builds the regions; Run runs the regions.
func NewDev(cfg DevConfig, log zerolog.Logger) (*Dev, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = oplog.DefaultPartitions
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Dev{cfg: cfg, log: log}
	ids, err := instanceIDs(cfg.DataDir, cfg.Regions)
	if err != nil {
		return nil, err
	}
	for i, name := range cfg.Regions {
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.ClusterID("georep-" + name), kfake.DefaultNumPartitions(int(cfg.Partitions))}
		if cfg.KafkaPort != 0 {
			opts = append(opts, kfake.Ports(cfg.KafkaPort+i))
		}
		if cfg.DataDir != "" {
			dir := filepath.Join(cfg.DataDir, name, "kafka")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				d.Close()
				return nil, err
			}
			opts = append(opts, kfake.DataDir(dir), kfake.SyncWrites())
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("start embedded Kafka for %s: %w", name, err)
		}
		d.Regions = append(d.Regions, &DevRegion{Name: name, InstanceID: ids[i], Brokers: c.ListenAddrs(), Cluster: c})
	}
	for i, dr := range d.Regions {
		rc := RegionConfig{
			Node: materializer.Config{
				Region:       dr.Name,
				InstanceID:   dr.InstanceID,
				Brokers:      dr.Brokers,
				Partitions:   cfg.Partitions,
				WriteTimeout: cfg.WriteTimeout,
				ClockOffset:  cfg.ClockOffsets[dr.Name],
				FetchMaxWait: 100 * time.Millisecond,
				StartPaused:  slices.Contains(cfg.StartPaused, dr.Name),

				SnapshotInterval: cfg.SnapshotInterval,
				SnapshotKeep:     cfg.SnapshotKeep,

				Changelog:      cfg.Changelog,
				ChangelogTopic: cfg.ChangelogTopic,
			},
			// The server's WriteTimeout is the node's (NewRegion).
			Server: server.Config{Addr: net.JoinHostPort(cfg.Host, strconv.Itoa(portOr0(cfg.Port, i))), RequirePass: cfg.RequirePass},
		}
		if cfg.DataDir != "" {
			rc.Node.DataDir = filepath.Join(cfg.DataDir, dr.Name, "state")
			rc.Node.SnapshotDir = filepath.Join(cfg.DataDir, dr.Name, "snapshots")
		}
		if cfg.SnapshotDir != "" {
			rc.Node.SnapshotDir = filepath.Join(cfg.SnapshotDir, dr.Name)
		}
		rc.PeerBrokers = map[string][]string{}
		rc.ExternalMirror = cfg.NoBridges
		for _, peer := range d.Regions {
			if peer == dr {
				continue
			}
			rc.Node.Peers = append(rc.Node.Peers, peer.Name)
			rc.PeerBrokers[peer.Name] = peer.Brokers
		}
		r, err := NewRegion(rc, log.With().Str("region", dr.Name).Logger())
		if err != nil {
			d.Close()
			return nil, err
		}
		dr.Region = r
	}
	return d, nil
}

func portOr0(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// Run runs every region until ctx ends, then stops the brokers.
func (d *Dev) Run(ctx context.Context) error {
	defer d.Close()
	g, ctx := errgroup.WithContext(ctx)
	for _, dr := range d.Regions {
		if dr.Region == nil {
			continue
		}
		g.Go(func() error { return dr.Region.Run(ctx) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close stops the embedded brokers (persisting their logs).
func (d *Dev) Close() {
	for _, dr := range d.Regions {
		if dr.Cluster != nil {
			dr.Cluster.Close()
			dr.Cluster = nil
		}
	}
}

// instanceIDFile holds a dev region's instance ID in its directory.
const instanceIDFile = "instance-id"

// instanceIDs returns the regions' instance IDs. Without a data directory
// they follow the regions' order (1, 2, ...). With one, a region keeps the ID
// recorded in its directory, so regions can be added, removed or reordered
// between runs: a region that has none yet gets the next ID never used in
// the data directory (a region's directory with state but no recorded ID
// predates the file and keeps its position's ID). The IDs are recorded
// before any region starts.
func instanceIDs(dataDir string, regions []string) ([]uint32, error) {
	ids := make([]uint32, len(regions))
	if dataDir == "" {
		for i := range regions {
			ids[i] = uint32(i + 1)
		}
		return ids, nil
	}
	used := map[uint32]string{}
	ents, err := os.ReadDir(dataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id, ok, err := readInstanceID(filepath.Join(dataDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if ok {
			if other, dup := used[id]; dup {
				return nil, fmt.Errorf("regions %s and %s of %s both have instance ID %d", other, e.Name(), dataDir, id)
			}
			used[id] = e.Name()
		}
	}
	var next uint32
	for id := range used {
		next = max(next, id)
	}
	// Recorded IDs and state from before IDs were recorded first, then the
	// new regions.
	for i, r := range regions {
		id, ok, err := readInstanceID(filepath.Join(dataDir, r))
		if err != nil {
			return nil, err
		}
		if ok {
			ids[i] = id
			continue
		}
		if _, err := os.Stat(filepath.Join(dataDir, r, "state")); err != nil {
			continue
		}
		id = uint32(i + 1)
		if other, dup := used[id]; dup && other != r {
			return nil, fmt.Errorf("region %s in %s has state but no %s file, and its position's ID %d belongs to %s: write the ID it had into %s",
				r, dataDir, instanceIDFile, id, other, filepath.Join(dataDir, r, instanceIDFile))
		}
		ids[i] = id
		used[id] = r
		next = max(next, id)
	}
	for i, r := range regions {
		if ids[i] == 0 {
			next++
			ids[i] = next
			used[next] = r
		}
	}
	for i, r := range regions {
		dir := filepath.Join(dataDir, r)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if _, ok, _ := readInstanceID(dir); !ok {
			if err := os.WriteFile(filepath.Join(dir, instanceIDFile), []byte(strconv.FormatUint(uint64(ids[i]), 10)+"\n"), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

func readInstanceID(dir string) (uint32, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, instanceIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || id == 0 {
		return 0, false, fmt.Errorf("%s: not an instance ID: %q", filepath.Join(dir, instanceIDFile), b)
	}
	return uint32(id), true, nil
}
