package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/georep/georep/bridge"
	"github.com/georep/georep/cmd/deploy"
)

// NodeCmd runs one region against real Kafka.
type NodeCmd struct {
	deploy.RegionConfig `embed:"" envprefix:"GEOREP_"`
	PeerBrokers         map[string]string `help:"Peers' clusters, as region=host:port[;host:port] (repeatable, or comma-separated): in-process bridges mirror from them (--mirror bridge), and GEOREP SYNC/STATUS read the peers' topics there." name:"peer-brokers" env:"GEOREP_PEER_BROKERS" mapsep:","`
	Mirror              string            `help:"Who mirrors the peers' topics into this cluster: bridge (in-process bridges from --peer-brokers) or external (MirrorMaker 2 or standalone georep bridge processes; --peer-brokers then only serve SYNC and STATUS)." default:"bridge" enum:"bridge,external" env:"GEOREP_MIRROR"`
}

// Run runs the region until ctx ends.
func (c *NodeCmd) Run(ctx context.Context, log zerolog.Logger) error {
	c.RegionConfig.PeerBrokers = map[string][]string{}
	c.RegionConfig.ExternalMirror = c.Mirror == "external"
	for peer, list := range c.PeerBrokers {
		c.RegionConfig.PeerBrokers[peer] = strings.Split(list, ";")
	}
	r, err := deploy.NewRegion(c.RegionConfig, log.With().Str("region", c.Node.Region).Logger())
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	// Reads are served from now on; writes once the node is ready (a new
	// region first catches up with its peers, docs/regions.md).
	fmt.Printf("georep node %s (instance %d) listening: RESP on %s\n", c.Node.Region, c.Node.InstanceID, r.Server.Addr())
	select {
	case <-r.Node.Ready():
		fmt.Printf("georep node %s (instance %d) ready: RESP on %s\n", c.Node.Region, c.Node.InstanceID, r.Server.Addr())
	case err := <-errc:
		return err
	}
	return <-errc
}

// BridgeCmd runs one bridge.
type BridgeCmd struct {
	bridge.Config `embed:"" envprefix:"GEOREP_BRIDGE_"`
}

// Run mirrors until ctx ends.
func (c *BridgeCmd) Run(ctx context.Context, log zerolog.Logger) error {
	b, err := bridge.New(c.Config, log)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
