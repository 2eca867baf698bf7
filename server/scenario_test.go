package server_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/georep/georep/crdt"
	"github.com/georep/georep/server"
)

var (
	rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations with the actual replies")
	against = flag.String("against", "", "run the testdata scenarios against this redis-server instead (lines marked >! and @ directives are skipped)")
)

// TestScenarios runs testdata/*.txt: raw RESP in, exact reply bytes out.
//
//	# comment          ("#t" and "#f" are RESP3 replies)
//	> SET k v          a command (args split on spaces; "quoted" Go strings)
//	+OK                its exact reply, CRLF shown as line ends, other
//	                   control and non-ASCII bytes as \xNN, '\' as \\,
//	                   an empty line as ∅, a leading '>', '@', "# " escaped
//	>! CLIENT ID       georep-only: skipped with -against
//	@conn 2            switch to connection 2 (dialled on first use)
//	@raw 1 "PING\r\n"  send raw bytes, then read 1 reply
//	@raw! 1 "..."      georep-only @raw
//	@hello 3           HELLO 3 (or 2), reply not shown
//	@closed            the current connection is closed by the server
//	@advance 1500      advance the fake clock by 1500 ms
//	@type k set        give k live state of a collection type
//	@config requirepass secret   server config for the file
//	@georep            georep-only file: skipped with -against
//
// Blank lines end an expectation. -rewrite regenerates the expectations
// (with -against, from that redis-server, georep-only lines kept); read the
// diff before committing.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

type step struct {
	line   int
	text   string // the command or directive line
	expect []string
}

func parseScenario(t *testing.T, data string) (header []string, steps []step) {
	lines := strings.Split(data, "\n")
	var cur *step
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, ">") || strings.HasPrefix(l, "@"):
			steps = append(steps, step{line: i + 1, text: l})
			cur = &steps[len(steps)-1]
		case l == "":
			cur = nil
		case l == "#" || strings.HasPrefix(l, "# "):
			cur = nil
		case cur != nil:
			cur.expect = append(cur.expect, l)
		default:
			t.Fatalf("line %d: unexpected %q", i+1, l)
		}
	}
	return header, steps
}

// splitArgs splits a command line on spaces; "..." args are Go strings.
func splitArgs(t *testing.T, s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := 1
			for ; end < len(s); end++ {
				if s[end] == '\\' {
					end++
				} else if s[end] == '"' {
					break
				}
			}
			v, err := strconv.Unquote(s[:end+1])
			if err != nil {
				t.Fatalf("bad quoted arg in %q: %v", s, err)
			}
			out = append(out, v)
			s = s[end+1:]
			continue
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// render shows raw reply bytes as expectation lines.
func render(raw string) []string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r' && i+1 < len(raw) && raw[i+1] == '\n':
			b.WriteByte('\n')
			i++
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i, l := range lines {
		switch {
		case l == "":
			lines[i] = emptyLine
		case l[0] == '>' || l[0] == '@' || l == "#" || strings.HasPrefix(l, "# "):
			lines[i] = fmt.Sprintf(`\x%02x`, l[0]) + l[1:]
		}
	}
	return lines
}

// emptyLine shows an empty reply line (blank lines end expectations);
// non-ASCII bytes are escaped, so it cannot be confused with a reply.
const emptyLine = "∅"

func runScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, steps := parseScenario(t, string(data))
	var cfg server.Config
	for _, st := range steps {
		if f := strings.Fields(st.text); f[0] == "@config" && len(f) == 3 && f[1] == "requirepass" {
			cfg.RequirePass = f[2]
		}
	}
	var e *env
	addr := *against
	if addr == "" {
		e = newEnv(t, cfg)
		addr = e.addr
	} else if cfg.RequirePass != "" || strings.Contains(string(data), "\n@georep\n") {
		t.Skip("georep-only or needs server config")
	}
	conns := map[string]*client{}
	cur := "1"
	conn := func() *client {
		if conns[cur] == nil {
			conns[cur] = dialAddr(t, addr)
			if *against != "" {
				conns[cur].do("FLUSHALL")
			}
		}
		return conns[cur]
	}
	lines := strings.Split(string(data), "\n")
	var out []string
	last := 0
	for _, st := range steps {
		out = append(out, lines[last:st.line]...)
		last = st.line + len(st.expect)
		var got []string
		f := strings.Fields(st.text)
		switch {
		case strings.HasPrefix(st.text, ">!") && *against != "":
			got = st.expect
		case strings.HasPrefix(st.text, ">"):
			args := splitArgs(t, strings.TrimPrefix(strings.TrimPrefix(st.text, ">!"), ">"))
			got = render(conn().do(args...))
		case f[0] == "@conn":
			cur = f[1]
		case f[0] == "@raw!" && *against != "":
			got = st.expect
		case f[0] == "@hello":
			conn().do("HELLO", f[1])
		case f[0] == "@raw" || f[0] == "@raw!":
			n, _ := strconv.Atoi(f[1])
			raw, err := strconv.Unquote(strings.TrimSpace(strings.SplitN(st.text, " ", 3)[2]))
			if err != nil {
				t.Fatalf("%s:%d: %v", file, st.line, err)
			}
			c := conn()
			c.send([]byte(raw))
			var all string
			for i := 0; i < n; i++ {
				all += c.read()
			}
			if n > 0 {
				got = render(all)
			}
		case f[0] == "@closed":
			conn().expectClosed()
		case *against != "":
			got = st.expect
		case f[0] == "@advance":
			ms, _ := strconv.ParseInt(f[1], 10, 64)
			e.store.Clock.Advance(ms)
		case f[0] == "@type":
			e.store.MakeType(f[1], map[string]crdt.Type{"hash": crdt.TypeHash, "set": crdt.TypeSet, "zset": crdt.TypeZSet, "list": crdt.TypeList}[f[2]])
		case f[0] == "@config" || f[0] == "@georep":
		default:
			t.Fatalf("%s:%d: unknown directive %q", file, st.line, st.text)
		}
		if !*rewrite && strings.Join(got, "\n") != strings.Join(st.expect, "\n") {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", file, st.line, st.text,
				strings.Join(got, "\n"), strings.Join(st.expect, "\n"))
		}
		out = append(out, got...)
	}
	out = append(out, lines[last:]...)
	if *rewrite {
		newData := []byte(strings.Join(out, "\n"))
		if !bytes.Equal(newData, data) {
			if err := os.WriteFile(file, newData, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
