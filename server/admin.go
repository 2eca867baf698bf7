package server

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/georep/georep/crdt"
)

// Server commands: COMMAND, INFO, DBSIZE, TIME, FLUSHALL, FLUSHDB, CONFIG.
func addServerCommands(r *registry) {
	r.add(&command{name: "command", arity: -1, flags: flagLoading | flagStale, run: cmdCommand})
	cf := flagLoading | flagStale
	r.add(&command{name: "command|count", arity: 2, flags: cf, run: cmdCommandCount})
	r.add(&command{name: "command|info", arity: -2, flags: cf, run: cmdCommandInfo})
	r.add(&command{name: "command|docs", arity: -2, flags: cf, run: cmdCommandDocs})
	r.add(&command{name: "command|list", arity: -2, flags: cf, run: cmdCommandList})
	r.add(&command{name: "info", arity: -1, flags: flagLoading | flagStale | flagWait, run: cmdInfo})
	r.add(&command{name: "dbsize", arity: 1, flags: flagRead | flagFast, run: cmdDBSize})
	r.add(&command{name: "time", arity: 1, flags: flagLoading | flagStale | flagFast, run: cmdTime})
	r.add(&command{name: "flushall", arity: -1, flags: flagWrite | flagWait, run: cmdFlushAll})
	r.add(&command{name: "flushdb", arity: -1, flags: flagWrite | flagWait, run: cmdFlushAll})
	r.add(&command{name: "config", arity: -2})
	r.add(&command{name: "config|get", arity: -3, flags: flagAdmin | flagNoScript | flagLoading | flagStale, run: cmdConfigGet})
}

// allCommands returns every top-level command, sorted by name.
func (r *registry) allCommands() []*command {
	out := make([]*command, 0, len(r.cmds))
	for _, name := range sortedKeys(r.cmds) {
		out = append(out, r.cmds[name])
	}
	return out
}

// find resolves a name as COMMAND INFO/DOCS take it: "get" or
// "client|id", case-insensitive.
func (r *registry) find(name []byte) *command {
	parent, sub, isSub := strings.Cut(strings.ToLower(string(name)), "|")
	c := r.cmds[parent]
	if c == nil || !isSub {
		return c
	}
	return c.subs[sub]
}

func cmdCommand(cl *call) (Reply, error) {
	var out []Reply
	for _, c := range cl.s.reg.allCommands() {
		out = append(out, c.info)
	}
	return array(out...), nil
}

func cmdCommandCount(cl *call) (Reply, error) { return integer(int64(len(cl.s.reg.cmds))), nil }

func cmdCommandInfo(cl *call) (Reply, error) {
	if len(cl.args) == 2 {
		return cmdCommand(cl)
	}
	out := make([]Reply, 0, len(cl.args)-2)
	for _, name := range cl.args[2:] {
		if c := cl.s.reg.find(name); c != nil {
			out = append(out, c.info)
		} else {
			out = append(out, replyNull)
		}
	}
	return array(out...), nil
}

func cmdCommandDocs(cl *call) (Reply, error) {
	var out []Reply
	if len(cl.args) == 2 {
		for _, c := range cl.s.reg.allCommands() {
			out = append(out, bulkString(c.name), c.docs)
		}
		return mapReply(out...), nil
	}
	for _, name := range cl.args[2:] {
		if c := cl.s.reg.find(name); c != nil {
			out = append(out, bulkString(c.name), c.docs)
		}
	}
	return mapReply(out...), nil
}

func cmdCommandList(cl *call) (Reply, error) {
	var filter func(c *command) bool
	switch len(cl.args) {
	case 2:
	case 5:
		if !strings.EqualFold(string(cl.args[2]), "filterby") {
			return Reply{}, ErrSyntax
		}
		arg := string(cl.args[4])
		switch strings.ToLower(string(cl.args[3])) {
		case "module":
			filter = func(*command) bool { return false }
		case "aclcat":
			filter = func(c *command) bool { return c.inACLCategory(arg) }
		case "pattern":
			filter = func(c *command) bool { return stringMatch([]byte(arg), []byte(c.name), true) }
		default:
			return Reply{}, ErrSyntax
		}
	default:
		return Reply{}, ErrSyntax
	}
	var out []Reply
	add := func(c *command) {
		if filter == nil || filter(c) {
			out = append(out, bulkString(c.name))
		}
	}
	for _, c := range cl.s.reg.allCommands() {
		add(c)
		for _, name := range sortedKeys(c.subs) {
			add(c.subs[name])
		}
	}
	return array(out...), nil
}

// inACLCategory reports whether c's COMMAND INFO lists @cat.
func (c *command) inACLCategory(cat string) bool {
	for _, a := range c.info.elems[6].elems {
		if strings.EqualFold(a.str, "@"+cat) || strings.EqualFold(string(a.bulk), "@"+cat) {
			return true
		}
	}
	return false
}

// countKeys returns the number of visible keys and of those with a TTL.
func countKeys(v View) (keys, expires int64, err error) {
	now := v.Now()
	err = v.Scan(nil, func(_ []byte, k *crdt.Key) bool {
		if k.Type(now) != crdt.TypeNone {
			keys++
			if at, _ := k.Expiry(); at != 0 {
				expires++
			}
		}
		return true
	})
	return keys, expires, err
}

func cmdDBSize(cl *call) (Reply, error) {
	var n int64
	err := cl.view(func(v View) (err error) {
		n, _, err = countKeys(v)
		return err
	})
	return integer(n), err
}

func cmdTime(cl *call) (Reply, error) {
	var ms int64
	if err := cl.view(func(v View) error { ms = v.Now(); return nil }); err != nil {
		return Reply{}, err
	}
	return bulkStrings(strconv.FormatInt(ms/1000, 10), strconv.FormatInt(ms%1000*1000, 10)), nil
}

func cmdFlushAll(cl *call) (Reply, error) {
	if len(cl.args) > 2 {
		return Reply{}, ErrSyntax
	}
	if len(cl.args) == 2 {
		if m := strings.ToLower(string(cl.args[1])); m != "async" && m != "sync" {
			return Reply{}, ErrSyntax
		}
	}
	if err := cl.s.store.FlushAll(cl.ctx); err != nil {
		return Reply{}, err
	}
	return replyOK, nil
}

// configValues are the answers of CONFIG GET: the settings clients and
// tools commonly ask for, with the values that describe this server.
func (s *Server) configValues() map[string]string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return map[string]string{
		"maxmemory":               "0",
		"maxmemory-policy":        "noeviction",
		"save":                    "",
		"appendonly":              "no",
		"databases":               "1",
		"timeout":                 "0",
		"port":                    port,
		"maxclients":              strconv.Itoa(s.cfg.MaxClients),
		"proto-max-bulk-len":      strconv.Itoa(maxBulkLen),
		"cluster-enabled":         "no",
		"notify-keyspace-events":  "",
		"busy-reply-threshold":    "5000",
		"lua-time-limit":          "5000",
		"slowlog-log-slower-than": "10000",
		"slowlog-max-len":         "128",
		"tcp-keepalive":           "300",
		"hz":                      "10",
		"io-threads":              "1",
	}
}

func cmdConfigGet(cl *call) (Reply, error) {
	vals := cl.s.configValues()
	matched := map[string]bool{}
	for _, pat := range cl.args[2:] {
		for name := range vals {
			if stringMatch(pat, []byte(name), true) {
				matched[name] = true
			}
		}
	}
	var out []Reply
	for _, name := range sortedKeys(matched) {
		out = append(out, bulkString(name), bulkString(vals[name]))
	}
	return mapReply(out...), nil
}

// infoSections are the sections of INFO in order; "default" and "all"
// include every one.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace", "georep"}

func cmdInfo(cl *call) (Reply, error) {
	want := map[string]bool{}
	if len(cl.args) == 1 {
		want["default"] = true
	}
	for _, a := range cl.args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["default"] || want["all"] || want["everything"]
	var parts []string
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		text, err := cl.s.infoSection(cl, sec)
		if err != nil {
			return Reply{}, err
		}
		parts = append(parts, text)
	}
	return verbatim("txt", strings.Join(parts, "\r\n")), nil
}

// infoSection renders one INFO section ("# Name\r\nkey:value\r\n...").
func (s *Server) infoSection(cl *call, name string) (string, error) {
	var b strings.Builder
	title := strings.ToUpper(name[:1]) + name[1:]
	if name == "cpu" {
		title = "CPU"
	}
	fmt.Fprintf(&b, "# %s\r\n", title)
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	now := time.Now()
	switch name {
	case "server":
		uptime := int64(now.Sub(s.started) / time.Second)
		_, port, _ := net.SplitHostPort(s.Addr())
		kv("redis_version", Version)
		kv("redis_git_sha1", "00000000")
		kv("redis_git_dirty", 0)
		kv("redis_mode", "standalone")
		kv("georep_mode", "active-active")
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", 64)
		kv("go_version", runtime.Version())
		kv("process_id", os.Getpid())
		kv("tcp_port", port)
		kv("server_time_usec", now.UnixMicro())
		kv("uptime_in_seconds", uptime)
		kv("uptime_in_days", uptime/86400)
		kv("hz", 10)
	case "clients":
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		kv("connected_clients", n)
		kv("maxclients", s.cfg.MaxClients)
		kv("blocked_clients", s.blk.count())
		kv("tracking_clients", 0)
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		kv("used_memory", ms.HeapAlloc)
		kv("used_memory_human", humanBytes(ms.HeapAlloc))
		kv("used_memory_rss", ms.Sys)
		kv("maxmemory", 0)
		kv("maxmemory_human", "0B")
		kv("maxmemory_policy", "noeviction")
		kv("mem_allocator", "go")
	case "persistence":
		kv("loading", 0)
		kv("async_loading", 0)
		kv("rdb_changes_since_last_save", 0)
		kv("aof_enabled", 0)
	case "stats":
		kv("total_connections_received", s.totalConns.Load())
		kv("total_commands_processed", s.totalCmds.Load())
		kv("rejected_connections", s.rejectedConn.Load())
		kv("expired_keys", 0)
		kv("evicted_keys", 0)
		kv("keyspace_hits", 0)
		kv("keyspace_misses", 0)
	case "replication":
		kv("role", "master")
		kv("connected_slaves", 0)
		kv("master_failover_state", "no-failover")
		kv("master_repl_offset", 0)
	case "cpu":
		kv("used_cpu_sys", "0.000000")
		kv("used_cpu_user", "0.000000")
	case "keyspace":
		var keys, expires int64
		err := cl.view(func(v View) (err error) {
			keys, expires, err = countKeys(v)
			return err
		})
		if err != nil {
			return "", err
		}
		if keys > 0 {
			fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", keys, expires)
		}
	case "georep":
		st := s.op.Status(cl.ctx)
		kv("region", st.Region)
		kv("instance_id", st.InstanceID)
		kv("paused", boolInt(st.Paused))
		kv("writable", boolInt(st.Writable))
		kv("reason", st.Reason)
		kv("peers", len(st.Peers))
		for i, p := range st.Peers {
			fmt.Fprintf(&b, "peer%d:region=%s,instance_id=%d,lag_events=%d,lag_ms=%d,reachable=%d\r\n",
				i, p.Region, p.InstanceID, p.LagEvents, p.LagMillis, boolInt(p.Reachable))
		}
		kv("applied", formatClock(st.Applied))
		kv("bad_records", st.BadRecords)
		kv("tombstones", st.Tombstones)
		kv("events_total", st.EventsTotal)
		kv("changelog", boolInt(st.Changelog))
		if st.Changelog {
			kv("changelog_published", st.ChangelogPublished)
			kv("changelog_truncated", st.ChangelogTruncated)
			kv("changelog_pending", st.ChangelogPending)
		}
	}
	return b.String(), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// formatClock renders a clock as "1=5,2=7" (origin=seq).
func formatClock(c crdt.Clock) string {
	parts := make([]string, len(c))
	for i, d := range c {
		parts[i] = fmt.Sprintf("%d=%d", d.Origin, d.Seq)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
