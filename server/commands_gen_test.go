package server

import (
	"bufio"
	"flag"
	"net"
	"os"
	"testing"
	"time"
)

var genCommands = flag.String("gen-commands", "", "address of a redis-server 7 to regenerate commands.resp from")

// TestGenerateCommandSpecs regenerates commands.resp, Redis's COMMAND INFO
// and COMMAND DOCS entries for every command and subcommand in the table:
//
//	redis-server --port 6390 --save '' --daemonize yes
//	go test ./server -run TestGenerateCommandSpecs -gen-commands 127.0.0.1:6390
//
// Commands Redis does not have keep their entries built from the table.
func TestGenerateCommandSpecs(t *testing.T) {
	if *genCommands == "" {
		t.Skip("-gen-commands not set")
	}
	nc, err := net.DialTimeout("tcp", *genCommands, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rd := bufio.NewReader(nc)
	query := func(args ...string) Reply {
		t.Helper()
		var req []byte
		req = appendHeader(req, '*', len(args))
		for _, a := range args {
			req = appendBulk(req, []byte(a))
		}
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			buf = append(buf, line...)
			r, n, err := parseReply(buf)
			if err == nil && n == len(buf) {
				return r
			}
			if err != nil && err != errIncomplete {
				// a bulk payload containing "\n": keep reading
				continue
			}
		}
	}
	query("HELLO", "3")
	reg := newRegistry()
	var out []byte
	var names []string
	for _, c := range reg.allCommands() {
		names = append(names, c.name)
		for _, sub := range sortedKeys(c.subs) {
			names = append(names, c.subs[sub].name)
		}
	}
	for _, name := range names {
		info := query("COMMAND", "INFO", name)
		if len(info.elems) != 1 || info.elems[0].kind != kindArray {
			t.Logf("%s: not in redis, entry built from the table", name)
			continue
		}
		docs := query("COMMAND", "DOCS", name)
		if len(docs.elems) != 2 {
			t.Fatalf("%s: docs %v", name, docs)
		}
		out = appendReply(out, array(bulkString(name), info.elems[0], docs.elems[1]), 3)
	}
	if err := os.WriteFile("commands.resp", out, 0o644); err != nil {
		t.Fatal(err)
	}
}
