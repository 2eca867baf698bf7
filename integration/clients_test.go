package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientSmoke is one client library's smoke program under clients/.
type clientSmoke struct {
	name    string
	runtime string       // the interpreter that must be on PATH
	lib     func() error // reports a missing library
	cmd     func(host, port, prefix string) []string
	dir     string
	keys    []string // key suffixes the program writes, one per protocol run
}

var clientSmokes = []clientSmoke{
	{
		name:    "redis-py",
		runtime: "python3",
		dir:     "clients/python",
		lib: func() error {
			out, err := exec.Command("python3", "-c", "import redis; print(redis.__version__)").CombinedOutput()
			if err != nil {
				return fmt.Errorf("redis-py is not installed (%s)", strings.TrimSpace(string(out)))
			}
			return nil
		},
		cmd:  func(h, p, k string) []string { return []string{"python3", "smoke.py", h, p, k} },
		keys: []string{":2", ":3"},
	},
	{
		name:    "ioredis",
		runtime: "node",
		dir:     "clients/node",
		lib: func() error {
			if _, err := os.Stat("clients/node/node_modules/ioredis/package.json"); err != nil {
				return fmt.Errorf("ioredis is not installed in clients/node/node_modules")
			}
			return nil
		},
		cmd:  func(h, p, k string) []string { return []string{"node", "smoke.js", h, p, k} },
		keys: []string{":js"},
	},
	{
		name:    "Jedis",
		runtime: "java",
		dir:     "clients/jedis",
		lib: func() error {
			jars, _ := filepath.Glob("clients/jedis/target/lib/jedis-*.jar")
			if len(jars) == 0 {
				return fmt.Errorf("Jedis is not in clients/jedis/target/lib")
			}
			return nil
		},
		cmd: func(h, p, k string) []string {
			return []string{"java", "-cp", filepath.Join("target", "lib", "*"), "Smoke.java", h, p, k}
		},
		keys: []string{":java2", ":java3"},
	},
}

// TestClients runs the smoke program of each client library against one
// region and checks that its writes replicated to the other. A test skips
// only when the library's runtime is missing; a missing library fails it
// (clients/install.sh installs them, .ci/run calls it).
func TestClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs other runtimes")
	}
	c := startCluster(t, []string{"us", "eu"})
	host, port, err := net.SplitHostPort(c.r("us").Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range clientSmokes {
		t.Run(cs.name, func(t *testing.T) {
			if _, err := exec.LookPath(cs.runtime); err != nil {
				t.Skipf("%s is not installed: the %s smoke test needs it", cs.runtime, cs.name)
			}
			if err := cs.lib(); err != nil {
				t.Fatalf("%v: run integration/clients/install.sh", err)
			}
			prefix := "client:" + cs.name
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			argv := cs.cmd(host, port, prefix)
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Dir = cs.dir
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
			}
			c.syncOnly("eu")
			for _, suffix := range cs.keys {
				k := prefix + suffix
				c.expect("eu", "v", "GET", k+":s")
				c.expect("eu", "42", "GET", k+":n")
				c.expect("eu", "1.5", "GET", k+":f")
				c.expect("eu", "2", "GET", k+":pn")
				c.expect("eu", "[<nil> 2 x]", "MGET", k+":a", k+":b", k+":p")
				c.ttlIn(k+":s", 900, 1000)
			}
		})
	}
}
