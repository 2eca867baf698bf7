package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/georep/georep/cmd/deploy"
)

// DevCmd runs an embedded deployment.
type DevCmd struct {
	Regions      []string          `help:"Region names, in instance-ID order (1 to 8)." default:"us,eu,ap" sep:","`
	Host         string            `help:"Address to listen on (loopback only is sensible)." default:"127.0.0.1"`
	Port         int               `help:"First region's RESP port; the others follow." default:"7001"`
	KafkaPort    int               `help:"First region's embedded Kafka port; the others follow." default:"19092" name:"kafka-port"`
	DataDir      string            `help:"Data directory (brokers' logs and state); reused on restart." default:"./georep-data" name:"data-dir" type:"path"`
	ClockOffset  map[string]string `help:"Shift a region's wall clock, e.g. eu=-10s (repeatable)." name:"clock-offset" mapsep:","`
	Partitions   int32             `help:"Partitions of georep topics." default:"8"`
	WriteTimeout time.Duration     `help:"How long a write may wait for Kafka before failing." default:"5s" name:"write-timeout"`
	RequirePass  string            `help:"Password clients must AUTH with." name:"requirepass" env:"GEOREP_REQUIREPASS"`

	SnapshotDir      string        `help:"Directory of the regions' snapshots (GEOREP SNAPSHOT, --snapshot-interval), one subdirectory per region (default: <data-dir>/<region>/snapshots)." name:"snapshot-dir" type:"path"`
	SnapshotInterval time.Duration `help:"Each region writes a snapshot this often (0: never)." name:"snapshot-interval"`
	SnapshotKeep     int           `help:"Snapshots each region keeps: each periodic snapshot removes all but the newest this many." default:"2" name:"snapshot-keep"`

	Changelog      bool   `help:"Publish each changed key's new value to every region's changelog topic (docs/cdc.md)."`
	ChangelogTopic string `help:"Topic of the changelog." default:"georep.changelog" name:"changelog-topic"`
}

// Run starts the deployment and blocks until ctx ends.
func (c *DevCmd) Run(ctx context.Context, log zerolog.Logger) error {
	return c.run(ctx, log, os.Stdout)
}

func (c *DevCmd) run(ctx context.Context, log zerolog.Logger, out io.Writer) error {
	offsets := map[string]time.Duration{}
	for r, v := range c.ClockOffset {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("--clock-offset %s=%s: %w", r, v, err)
		}
		offsets[r] = d
	}
	d, err := deploy.NewDev(deploy.DevConfig{
		Regions:      c.Regions,
		Host:         c.Host,
		Port:         c.Port,
		KafkaPort:    c.KafkaPort,
		DataDir:      c.DataDir,
		ClockOffsets: offsets,
		Partitions:   c.Partitions,
		WriteTimeout: c.WriteTimeout,
		RequirePass:  c.RequirePass,

		SnapshotDir:      c.SnapshotDir,
		SnapshotInterval: c.SnapshotInterval,
		SnapshotKeep:     c.SnapshotKeep,

		Changelog:      c.Changelog,
		ChangelogTopic: c.ChangelogTopic,
	}, log)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	for _, r := range d.Regions {
		select {
		case <-r.Region.Node.Ready():
		case err := <-errc:
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "georep dev: %d regions ready (data in %s)\n", len(d.Regions), c.DataDir)
	for _, r := range d.Regions {
		fmt.Fprintf(&b, "  %-4s instance %d  redis-cli -p %s   kafka %s\n", r.Name, r.InstanceID, portOf(r.Region.Server.Addr()), strings.Join(r.Brokers, ","))
	}
	b.WriteString("Ctrl-C stops all regions.\n")
	fmt.Fprint(out, b.String())
	return <-errc
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
