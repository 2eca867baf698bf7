package integration

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The load generator runs in a child process (this test binary, re-executed
// with GEOREP_LOADGEN set): it writes to one region as fast as it can and
// prints every write the server acknowledged, until the server goes away.
func TestMain(m *testing.M) {
	if addr := os.Getenv("GEOREP_LOADGEN"); addr != "" {
		os.Exit(loadgen(addr))
	}
	os.Exit(m.Run())
}

func loadgen(addr string) int {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 16})
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	acks := make(chan string, 1024)
	errs := make(chan error, 16)
	for w := 0; w < 8; w++ {
		go func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("kill:%d:%d", w, i)
				if err := cl.Set(ctx, key, strconv.Itoa(i), 0).Err(); err != nil {
					errs <- err
					return
				}
				acks <- "set " + key + " " + strconv.Itoa(i)
				if err := cl.IncrBy(ctx, "kill:counter", 1).Err(); err != nil {
					errs <- err
					return
				}
				acks <- "incr kill:counter 1"
			}
		}()
	}
	failed := 0
	for {
		select {
		case a := <-acks:
			fmt.Fprintln(out, a)
		case <-errs:
			failed++
			if failed == 8 {
				for {
					select {
					case a := <-acks:
						fmt.Fprintln(out, a)
					default:
						return 0
					}
				}
			}
		}
	}
}

// freePorts returns a port p such that p..p+n-1 are free and none is in
// avoid. The ports lie below Linux's ephemeral range (32768 and up), so no
// outgoing connection takes one of them between this check and the
// restart that binds them again.
func freePorts(t *testing.T, n int, avoid ...int) int {
	t.Helper()
	for attempt := 0; attempt < 200; attempt++ {
		base := 20000 + rand.IntN(12000-n)
		ok := true
		var ls []net.Listener
		for p := base; p < base+n && ok; p++ {
			if slices.Contains(avoid, p) {
				ok = false
				break
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports", n)
	return 0
}

// buildGeorep builds the georep binary once per test run.
func buildGeorep(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "georep")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/georep")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build georep: %v", err)
	}
	return bin
}

// startDevProcess runs `georep dev` (plus extra flags) as a child and waits
// for its ready line.
func startDevProcess(t *testing.T, bin, dataDir string, port, kport int, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"--log-level", "warn", "dev", "--regions", "us,eu",
		"--port", strconv.Itoa(port), "--kafka-port", strconv.Itoa(kport), "--data-dir", dataDir}
	cmd := exec.Command(bin, append(args, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "regions ready") {
				signalled = true
				ready <- nil
			}
		}
		if !signalled {
			ready <- fmt.Errorf("georep dev exited before it was ready")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("georep dev not ready in 90s")
	}
	return cmd
}

// TestKill9DuringWriteLoad kills `georep dev` with SIGKILL while a child
// process writes to it, restarts it on the same data directory, and checks
// that every acknowledged write is there in every region.
func TestKill9DuringWriteLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if os.Getenv("GEOREP_KAFKA") != "" {
		t.Skip("embedded mode only")
	}
	bin := buildGeorep(t)
	dataDir := t.TempDir()
	port := freePorts(t, 2) // RESP ports of us and eu
	kport := freePorts(t, 2, port, port+1)
	dev := startDevProcess(t, bin, dataDir, port, kport)
	defer dev.Process.Kill()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(self, "-test.run=^$")
	gen.Env = append(os.Environ(), "GEOREP_LOADGEN=127.0.0.1:"+strconv.Itoa(port))
	genOut, err := gen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{}
	incrs := 0
	lines := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(genOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	killed := false
	for line := range lines {
		f := strings.Fields(line)
		switch f[0] {
		case "set":
			acked[f[1]] = f[2]
		case "incr":
			incrs++
		}
		if !killed && len(acked) >= 2000 {
			if err := dev.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = gen.Wait()
	_ = dev.Wait()
	if !killed {
		t.Fatalf("load generator stopped after %d writes, before the kill", len(acked))
	}
	t.Logf("killed after %d acknowledged SETs and %d INCRs", len(acked), incrs)

	dev2 := startDevProcess(t, bin, dataDir, port, kport)
	defer func() {
		dev2.Process.Signal(syscall.SIGTERM)
		dev2.Wait()
	}()
	ctx := context.Background()
	for i, addr := range []string{"127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port+1)} {
		cl := redis.NewClient(&redis.Options{Addr: addr})
		defer cl.Close()
		if err := cl.Do(ctx, "GEOREP", "SYNC", "30000").Err(); err != nil {
			t.Fatalf("region %d sync: %v", i, err)
		}
		keys := make([]string, 0, len(acked))
		for k := range acked {
			keys = append(keys, k)
		}
		for start := 0; start < len(keys); start += 500 {
			batch := keys[start:min(start+500, len(keys))]
			vals, err := cl.MGet(ctx, batch...).Result()
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range vals {
				if v != acked[batch[j]] {
					t.Fatalf("region %d: acknowledged %s = %s lost (got %v)", i, batch[j], acked[batch[j]], v)
				}
			}
		}
		n, err := cl.Get(ctx, "kill:counter").Int()
		if err != nil {
			t.Fatal(err)
		}
		if n < incrs {
			t.Fatalf("region %d: counter %d < %d acknowledged increments", i, n, incrs)
		}
	}
}
