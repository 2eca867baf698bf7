package server_test

import (
	"strconv"
	"testing"

	"github.com/georep/georep/server"
)

// BenchmarkPipeline measures commands per second over one connection with
// pipelines of 16, against the in-memory store.
func BenchmarkPipeline(b *testing.B) {
	for _, cmd := range []string{"SET", "GET", "INCR"} {
		b.Run(cmd, func(b *testing.B) {
			e := newEnv(b, server.Config{})
			c := dialAddr(b, e.addr)
			var req []byte
			for i := 0; i < 16; i++ {
				switch cmd {
				case "SET":
					req = append(req, encode("SET", "k"+strconv.Itoa(i), "value")...)
				case "GET":
					req = append(req, encode("GET", "k"+strconv.Itoa(i))...)
				default:
					req = append(req, encode("INCR", "n")...)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.send(req)
				for j := 0; j < 16; j++ {
					c.read()
				}
			}
			b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}
