// Command georep-bench measures a running georep deployment.
//
//	georep-bench latency --write-addr 127.0.0.1:7001 --read-addr 127.0.0.1:7002 --rate 5000 --duration 20s
//	georep-bench load --addr 127.0.0.1:7001 -c 50 -P 16 -n 200000 --tests set,get,incr
//
// latency writes at a steady rate to one region and reports how long each
// write took to be acknowledged there and then to become visible in another
// region. load is a small redis-benchmark. scripts/bench.sh runs both against
// a fresh `georep dev` next to redis-server; BENCHMARKS.md has the numbers.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// CLI is georep-bench's command line.
type CLI struct {
	Latency LatencyCmd `cmd:"" help:"Cross-region visibility delay under a steady write rate."`
	Load    LoadCmd    `cmd:"" help:"Pipelined SET/GET/INCR throughput (a small redis-benchmark)."`
}

func main() {
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("georep-bench"),
		kong.Description("Measure a running georep deployment (see BENCHMARKS.md)."),
		kong.UsageOnError(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	kctx.BindTo(os.Stdout, (*io.Writer)(nil))
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "georep-bench:", err)
		os.Exit(1)
	}
}
