package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/georep/georep/materializer"
)

// DigestCmd prints the digest of a state directory.
type DigestCmd struct {
	DataDir string `help:"State directory of a stopped node or a finished replay." required:"" name:"data-dir" type:"existingdir"`
}

// Run prints the digest GEOREP DIGEST gives for a node with this state.
func (c *DigestCmd) Run(ctx context.Context, log zerolog.Logger) error {
	return c.run(ctx, log, os.Stdout)
}

func (c *DigestCmd) run(_ context.Context, log zerolog.Logger, out io.Writer) error {
	s, err := openState(c.DataDir, log)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.Digest(time.Now().UnixMilli())
	if err != nil {
		return err
	}
	fmt.Fprintln(out, d)
	return s.Close()
}

// openState opens a state directory for an offline tool, explaining the
// usual failure: a node still running on it.
func openState(dir string, log zerolog.Logger) (*materializer.State, error) {
	s, err := materializer.OpenState(dir, log)
	if err != nil {
		if _, statErr := os.Stat(dir + "/LOCK"); statErr == nil {
			return nil, fmt.Errorf("%w (is a node running on it? stop it, or ask it with georep ctl)", err)
		}
		return nil, err
	}
	return s, nil
}
