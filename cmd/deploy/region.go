package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/georep/georep/bridge"
	"github.com/georep/georep/materializer"
	"github.com/georep/georep/server"
)

// RegionConfig configures one region's process.
type RegionConfig struct {
	Node   materializer.Config `embed:"" prefix:""`
	Server server.Config       `embed:"" prefix:""`
	// PeerBrokers maps each peer region to its cluster's bootstrap servers;
	// an inbound bridge runs for each unless ExternalMirror. The node also
	// reads the peers' own topics there for GEOREP SYNC and STATUS.
	PeerBrokers map[string][]string `kong:"-"`
	// ExternalMirror: something else mirrors the peers' topics (MirrorMaker
	// 2, standalone bridges); no bridge runs, PeerBrokers only serve to
	// watch the peers.
	ExternalMirror bool `kong:"-"`
}

// Region is one running region: node, server and inbound bridges.
type Region struct {
	Node    *materializer.Node
	Server  *server.Server
	bridges []*bridge.Bridge
	log     zerolog.Logger
}

// NewRegion builds a region. Nothing runs until Run.
func NewRegion(cfg RegionConfig, log zerolog.Logger) (*Region, error) {
	r := &Region{log: log}
	var inbound []materializer.Inbound
	cfg.Node.PeerBrokers = cfg.PeerBrokers
	for peer := range cfg.PeerBrokers {
		if !slices.Contains(cfg.Node.Peers, peer) {
			cfg.Node.Peers = append(cfg.Node.Peers, peer)
		}
	}
	for peer, brokers := range cfg.PeerBrokers {
		if cfg.ExternalMirror {
			continue
		}
		b, err := bridge.New(bridge.Config{
			Peer:          peer,
			Topic:         cfg.Node.Topic,
			SourceBrokers: brokers,
			TargetBrokers: cfg.Node.Brokers,
			Partitions:    cfg.Node.Partitions,
			FetchMaxWait:  cfg.Node.FetchMaxWait,
		}, log.With().Str("region", cfg.Node.Region).Logger())
		if err != nil {
			return nil, err
		}
		r.bridges = append(r.bridges, b)
		inbound = append(inbound, b)
	}
	n, err := materializer.New(cfg.Node, log, inbound...)
	if err != nil {
		return nil, err
	}
	r.Node = n
	st := store{n}
	// A command waits for its write's ack at least as long as the node lets
	// the write wait for Kafka: otherwise a write the node would still
	// complete is reported as timed out (outcome unknown) to the client.
	if cfg.Server.WriteTimeout < n.WriteTimeout() {
		cfg.Server.WriteTimeout = n.WriteTimeout()
	}
	srv, err := server.New(cfg.Server, log.With().Str("region", cfg.Node.Region).Logger(), st, st)
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	r.Server = srv
	return r, nil
}

// Run runs the region until ctx ends or a part fails.
func (r *Region) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Node.Run(ctx) })
	g.Go(func() error { return r.Server.Run(ctx) })
	for _, b := range r.bridges {
		g.Go(func() error { return b.Run(ctx) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("region %s: %w", r.Node.Region(), err)
	}
	return nil
}
