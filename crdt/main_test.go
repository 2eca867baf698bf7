package crdt_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain raises rapid's default number of checks (100) for this package:
// the convergence properties need a few hundred random programs to reach
// the interleavings that matter. -rapid.checks or RAPID_CHECKS override it;
// -short keeps rapid's default.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if _, env := os.LookupEnv("RAPID_CHECKS"); !set && !env && !testing.Short() {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
