// Command georep runs georep: an embedded multi-region deployment (dev), one
// region's node against real Kafka (node), a standalone bridge (bridge),
// operator commands against a running node (ctl), and the log tools: replay
// (rebuild a region's state from its topics), tail (print events), digest
// and snapshot (of a state directory).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
)

// CLI is georep's command line.
type CLI struct {
	LogLevel  string           `help:"Log level (trace, debug, info, warn, error)." default:"info" env:"GEOREP_LOG_LEVEL"`
	LogFormat string           `help:"Log format: console or json." default:"console" enum:"console,json" env:"GEOREP_LOG_FORMAT"`
	Config    kong.ConfigFlag  `help:"Read flags from a JSON config file (see configs/)." type:"existingfile"`
	Version   kong.VersionFlag `help:"Print the version."`

	Dev    DevCmd    `cmd:"" help:"Run a whole multi-region deployment in one process on embedded Kafka."`
	Node   NodeCmd   `cmd:"" help:"Run one region's node against real Kafka brokers."`
	Bridge BridgeCmd `cmd:"" help:"Mirror one peer region's topic into the local Kafka cluster."`
	Ctl    CtlCmd    `cmd:"" help:"Operator commands against a running node (status, pause, resume, sync, digest)."`

	Replay   ReplayCmd   `cmd:"" help:"Rebuild a region's state from the topics of its Kafka cluster."`
	Tail     TailCmd     `cmd:"" help:"Print the events of a region's Kafka cluster, as text or JSON."`
	Digest   DigestCmd   `cmd:"" help:"Print the digest of a state directory (what GEOREP DIGEST gives for it)."`
	Snapshot SnapshotCmd `cmd:"" help:"Write a snapshot of a state directory, or copy one from a running node, for replay --snapshot."`
}

const version = "0.1.0"

func main() {
	var cli CLI
	parser, err := newParser(&cli)
	if err != nil {
		fmt.Fprintln(os.Stderr, "georep:", err)
		os.Exit(1)
	}
	kctx, err := parser.Parse(os.Args[1:])
	parser.FatalIfErrorf(err)
	status := newStatusLine(os.Stderr)
	logger, err := newLogger(cli.LogLevel, cli.LogFormat, status)
	kctx.FatalIfErrorf(err)
	log.Logger = logger
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(logger, status); err != nil {
		fmt.Fprintln(os.Stderr, "georep:", err)
		os.Exit(1)
	}
}

// newParser returns georep's command-line parser for cli; opts are added
// to georep's own (tests redirect its output and exit).
func newParser(cli *CLI, opts ...kong.Option) (*kong.Kong, error) {
	return kong.New(cli, append([]kong.Option{
		kong.Name("georep"),
		kong.Description("georep: an open-source Active-Active database speaking the Redis protocol, replicating through Kafka."),
		kong.UsageOnError(),
		kong.Configuration(kong.JSON),
		kong.Vars{"version": version},
	}, opts...)...)
}

func newLogger(level, format string, stderr io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	var l zerolog.Logger
	if format == "json" {
		l = zerolog.New(stderr)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly})
	}
	return l.Level(lvl).With().Timestamp().Logger(), nil
}
