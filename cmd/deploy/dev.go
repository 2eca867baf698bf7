package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
	// WriteTimeout of each node (default 5s).
	WriteTimeout time.Duration
	// RequirePass for every region's server.
	RequirePass string
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
		d.Regions = append(d.Regions, &DevRegion{Name: name, InstanceID: uint32(i + 1), Brokers: c.ListenAddrs(), Cluster: c})
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

				SnapshotInterval: cfg.SnapshotInterval,
				SnapshotKeep:     cfg.SnapshotKeep,

				Changelog:      cfg.Changelog,
				ChangelogTopic: cfg.ChangelogTopic,
			},
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
