package server_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/georep/georep/server"
)

// TestRedisCLI drives the server with redis-cli when it is installed.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	e := newEnv(t, server.Config{RequirePass: "pw"})
	_, port, _ := strings.Cut(e.addr, ":")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-p", port, "--no-auth-warning", "-a", "pw"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "k", "v"}, "OK"},
		{[]string{"--no-raw", "GET", "k"}, `"v"`},
		{[]string{"--no-raw", "GET", "nokey"}, "(nil)"},
		{[]string{"--no-raw", "INCRBYFLOAT", "f", "1.5"}, `"1.5"`},
		{[]string{"--no-raw", "GET", "k", "x"}, "(error) ERR wrong number of arguments for 'get' command"},
		{[]string{"-3", "--no-raw", "MGET", "k", "nokey"}, "1) \"v\"\n2) (nil)"},
		{[]string{"-3", "--no-raw", "CONFIG", "GET", "maxmemory"}, "1# \"maxmemory\" => \"0\""},
		{[]string{"--no-raw", "GEOREP", "STATUS"}, ""},
		{[]string{"DBSIZE"}, "2"},
	} {
		got := run(tc.args...)
		if tc.want != "" && got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
}
