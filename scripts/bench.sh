#!/usr/bin/env bash
# Benchmarks a fresh `georep dev` (3 regions, embedded Kafka with fsync per
# batch) next to redis-server (AOF, fsync every second) on this machine, in
# one run, and prints a summary. See BENCHMARKS.md for what the numbers mean.
#
#   1. georep-bench latency: SET lat:<i> at a steady rate to region us,
#      MGET polling of region eu; visibility delay and write-ack latency.
#   2. redis-benchmark -t set,get,incr -P 16 -c 50 against redis-server,
#      then against region us.
#
# Everything it starts is stopped on exit (also on Ctrl-C), and every step
# runs under a timeout. Settings (environment):
#   GEOREP_PORT (17001; eu and ap use the next two), KAFKA_PORT (29092..29094),
#   REDIS_PORT (17100), N_GEOREP (300000 requests per test), N_REDIS (2000000),
#   LAT_RATE (5000 writes/s), LAT_DURATION (20s), STEP_TIMEOUT (300 s),
#   GEOREP_BIN (a georep binary to measure instead of building ./cmd/georep).
set -euo pipefail
cd "$(dirname "$0")/.."

GEOREP_PORT=${GEOREP_PORT:-17001}
KAFKA_PORT=${KAFKA_PORT:-29092}
REDIS_PORT=${REDIS_PORT:-17100}
N_GEOREP=${N_GEOREP:-300000}
N_REDIS=${N_REDIS:-2000000}
LAT_RATE=${LAT_RATE:-5000}
LAT_DURATION=${LAT_DURATION:-20s}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}

for tool in go redis-server redis-benchmark redis-cli timeout; do
	command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found (apt-get install redis-tools redis-server)" >&2; exit 1; }
done
for port in "$GEOREP_PORT" $((GEOREP_PORT + 1)) $((GEOREP_PORT + 2)) "$KAFKA_PORT" $((KAFKA_PORT + 1)) $((KAFKA_PORT + 2)) "$REDIS_PORT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "bench.sh: port $port is in use (set GEOREP_PORT, KAFKA_PORT, REDIS_PORT)" >&2
		exit 1
	fi
done

work=$(mktemp -d -t georep-bench.XXXXXX)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
if [ -n "${GEOREP_BIN:-}" ]; then
	cp "$GEOREP_BIN" "$work/georep"
else
	timeout "$STEP_TIMEOUT" go build -o "$work/georep" ./cmd/georep
fi
timeout "$STEP_TIMEOUT" go build -o "$work/georep-bench" ./cmd/georep-bench

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== starting georep dev (data in $work/data) and redis-server :$REDIS_PORT"
"$work/georep" --log-level warn dev --data-dir "$work/data" --port "$GEOREP_PORT" --kafka-port "$KAFKA_PORT" >"$work/georep.log" 2>&1 &
pids+=($!)
georep_pid=$!
mkdir -p "$work/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --appendfsync everysec --save '' \
	--dir "$work/redis" --logfile "$work/redis/redis.log" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 600); do
	grep -q 'regions ready' "$work/georep.log" && break
	kill -0 "$georep_pid" 2>/dev/null || { cat "$work/georep.log" >&2; echo "bench.sh: georep dev exited" >&2; exit 1; }
	sleep 0.1
done
grep -q 'regions ready' "$work/georep.log" || { cat "$work/georep.log" >&2; echo "bench.sh: georep dev not ready in 60 s" >&2; exit 1; }
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null

echo "== latency: georep-bench latency --write-addr 127.0.0.1:$GEOREP_PORT --read-addr 127.0.0.1:$((GEOREP_PORT + 1)) --rate $LAT_RATE --duration $LAT_DURATION"
lat_status=ok
timeout "$STEP_TIMEOUT" "$work/georep-bench" latency --write-addr "127.0.0.1:$GEOREP_PORT" --read-addr "127.0.0.1:$((GEOREP_PORT + 1))" \
	--rate "$LAT_RATE" --duration "$LAT_DURATION" | tee "$work/latency.txt" || lat_status=failed

# bench <name> <port> <n>: redis-benchmark's CSV into $work/<name>.csv.
bench() {
	echo "== $1: redis-benchmark -p $2 -t set,get,incr -P 16 -c 50 -n $3"
	timeout "$STEP_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$2" -t set,get,incr -P 16 -c 50 -n "$3" --csv | tee "$work/$1.csv" ||
		echo "bench.sh: redis-benchmark against $1 failed; its missing tests count as 0" >&2
}
bench redis "$REDIS_PORT" "$N_REDIS"
bench georep "$GEOREP_PORT" "$N_GEOREP"

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

rps() { awk -F'"' -v t="$2" '$2 == t { print $4 }' "$work/$1.csv"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$work/latency.txt" | tail -1; }

echo
echo "== summary ($(nproc) CPUs; load average before $load_before, after $load_after)"
printf '%-6s %14s %14s %8s %8s\n' test "georep req/s" "redis req/s" ratio target
for t in SET GET INCR; do
	g=$(rps georep "$t")
	r=$(rps redis "$t")
	want=25
	[ "$t" = GET ] && want=50
	awk -v t="$t" -v g="${g:-0}" -v r="${r:-0}" -v w="$want" 'BEGIN {
		ratio = (r > 0) ? 100 * g / r : 0
		printf "%-6s %14.0f %14.0f %7.1f%% %s%d%% %s\n", t, g, r, ratio, ">=", w, (ratio >= w) ? "met" : "MISSED"
	}'
done
if [ "$lat_status" = ok ] && [ -s "$work/latency.txt" ]; then
	p99=$(field vis_p99_ms)
	echo "us->eu visibility after ack: p50 $(field vis_p50_ms) ms, p90 $(field vis_p90_ms) ms, p99 $p99 ms, max $(field vis_max_ms) ms" \
		"(target p99 < 50 ms: $(awk -v p="$p99" 'BEGIN { print (p < 50) ? "met" : "MISSED" }'))"
	echo "us write ack at $LAT_RATE/s: p50 $(field ack_p50_ms) ms, p99 $(field ack_p99_ms) ms"
else
	echo "latency run failed"
	exit 1
fi
