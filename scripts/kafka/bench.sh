#!/usr/bin/env bash
# Benchmarks georep on real Apache Kafka (scripts/kafka.sh: one single-node
# KRaft cluster per region, us eu ap) next to redis-server, the same
# measurements scripts/bench.sh makes on embedded Kafka. See BENCHMARKS.md,
# section "Real Kafka".
#
#   1. three `georep node` processes with georep's bridges (--peer-brokers):
#      georep-bench latency (SET to us at LAT_RATE/s, MGET polling of eu),
#      then redis-benchmark -t set,get,incr -P 16 -c 50 against redis-server
#      and against us;
#   2. the nodes again on a fresh topic without bridges, MirrorMaker 2
#      mirroring (scripts/kafka.sh mm2 up): georep-bench latency again.
#
# It starts Kafka itself and runs scripts/kafka.sh down at the end (also on
# failure or Ctrl-C), so do not run it while you use those clusters.
# Settings (environment): GEOREP_PORT (17201; eu and ap the next two),
# REDIS_PORT (17300), N_GEOREP (300000 requests per test), N_REDIS (2000000),
# LAT_RATE (5000 writes/s), LAT_LOW_RATE (1000 writes/s, a second latency run
# per mirroring for context; 0 skips it), LAT_DURATION (20s), STEP_TIMEOUT
# (300 s), PARTITIONS (8).
set -euo pipefail
cd "$(dirname "$0")/../.."

GEOREP_PORT=${GEOREP_PORT:-17201}
REDIS_PORT=${REDIS_PORT:-17300}
N_GEOREP=${N_GEOREP:-300000}
N_REDIS=${N_REDIS:-2000000}
LAT_RATE=${LAT_RATE:-5000}
LAT_LOW_RATE=${LAT_LOW_RATE:-1000}
LAT_DURATION=${LAT_DURATION:-20s}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
PARTITIONS=${PARTITIONS:-8}
REGIONS=(us eu ap)

for tool in go java mvn redis-server redis-benchmark redis-cli timeout; do
	command -v "$tool" >/dev/null || {
		echo "kafka/bench.sh: $tool not found" >&2
		exit 1
	}
done
for port in "$GEOREP_PORT" $((GEOREP_PORT + 1)) $((GEOREP_PORT + 2)) "$REDIS_PORT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "kafka/bench.sh: port $port is in use (set GEOREP_PORT, REDIS_PORT)" >&2
		exit 1
	fi
done

work=$(mktemp -d -t georep-kafka-bench.XXXXXX)
pids=()
node_pids=()
stop_pids() {
	local pid
	for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}
cleanup() {
	stop_pids "${node_pids[@]}" "${pids[@]}"
	scripts/kafka.sh down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
timeout "$STEP_TIMEOUT" go build -o "$work/georep" ./cmd/georep
timeout "$STEP_TIMEOUT" go build -o "$work/georep-bench" ./cmd/georep-bench

echo "== starting Kafka (scripts/kafka.sh up ${REGIONS[*]})"
scripts/kafka.sh up "${REGIONS[@]}" >"$work/kafka-up.txt"
scripts/kafka.sh mm2 down
declare -A BOOT
while read -r r b; do BOOT[$r]=$b; done <"$work/kafka-up.txt"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# start_nodes TOPIC BRIDGES(yes|no): one node per region, waits for all.
start_nodes() {
	local topic=$1 bridges=$2 i r p peers pb args
	node_pids=()
	for i in "${!REGIONS[@]}"; do
		r=${REGIONS[$i]}
		peers=() pb=()
		for p in "${REGIONS[@]}"; do
			[[ $p == "$r" ]] && continue
			peers+=("$p") pb+=("$p=${BOOT[$p]}")
		done
		args=(--log-level warn node --region "$r" --instance-id $((i + 1)) --brokers "${BOOT[$r]}"
			--topic "$topic" --partitions "$PARTITIONS" --addr "127.0.0.1:$((GEOREP_PORT + i))"
			--data-dir "$work/$topic/$r" --peers "$(IFS=,; echo "${peers[*]}")")
		args+=(--peer-brokers "$(IFS=,; echo "${pb[*]}")")
		# Without bridges MirrorMaker 2 mirrors; the peers' clusters only
		# serve GEOREP SYNC and STATUS.
		if [[ $bridges != yes ]]; then args+=(--mirror external); fi
		"$work/georep" "${args[@]}" >"$work/$topic-$r.log" 2>&1 &
		node_pids+=($!)
	done
	for i in "${!REGIONS[@]}"; do
		r=${REGIONS[$i]}
		for _ in $(seq 600); do
			grep -q ' ready: RESP' "$work/$topic-$r.log" && break
			kill -0 "${node_pids[$i]}" 2>/dev/null || { cat "$work/$topic-$r.log" >&2; echo "kafka/bench.sh: node $r exited" >&2; exit 1; }
			sleep 0.1
		done
		grep -q ' ready: RESP' "$work/$topic-$r.log" || { echo "kafka/bench.sh: node $r not ready in 60 s" >&2; exit 1; }
	done
}

# latency NAME RATE: georep-bench latency us -> eu into $work/NAME.txt.
latency() {
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "== latency ($1): georep-bench latency --write-addr 127.0.0.1:$GEOREP_PORT --read-addr 127.0.0.1:$((GEOREP_PORT + 1)) --rate $2 --duration $LAT_DURATION --partitions $PARTITIONS"
	timeout "$STEP_TIMEOUT" "$work/georep-bench" latency --write-addr "127.0.0.1:$GEOREP_PORT" --read-addr "127.0.0.1:$((GEOREP_PORT + 1))" \
		--rate "$2" --duration "$LAT_DURATION" --partitions "$PARTITIONS" --prefix "lat-$1:" | tee "$work/$1.txt" ||
		echo "(georep-bench latency reported a failure: see unseen/errors)"
}

# mirrored KEY: waits until a SET to us is visible in eu (mirror flows live).
mirrored() {
	redis-cli -p "$GEOREP_PORT" set "$1" 1 >/dev/null
	for _ in $(seq 1200); do
		[[ $(redis-cli -p $((GEOREP_PORT + 1)) exists "$1") == 1 ]] && return 0
		sleep 0.1
	done
	echo "kafka/bench.sh: $1 written to us not visible in eu after 120 s" >&2
	exit 1
}

echo "== georep nodes with georep's bridges (topic bench.georep.ops) and redis-server :$REDIS_PORT"
start_nodes bench.georep.ops yes
mkdir -p "$work/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --appendfsync everysec --save '' \
	--dir "$work/redis" --logfile "$work/redis/redis.log" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null
mirrored warmup-bridge
latency bridge "$LAT_RATE"
if ((LAT_LOW_RATE > 0)); then latency bridge-low "$LAT_LOW_RATE"; fi

bench() {
	echo "== $1: redis-benchmark -p $2 -t set,get,incr -P 16 -c 50 -n $3"
	timeout "$STEP_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$2" -t set,get,incr -P 16 -c 50 -n "$3" --csv | tee "$work/$1.csv"
}
bench redis "$REDIS_PORT" "$N_REDIS"
bench georep "$GEOREP_PORT" "$N_GEOREP"
load_mid=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== georep nodes without bridges (topic mm2bench.georep.ops), MirrorMaker 2"
stop_pids "${node_pids[@]}"
node_pids=()
# Only this phase's topic: the bridge phase's topic holds about a million
# records that MM2 would otherwise start copying too.
MM2_TOPICS='mm2bench\.georep\.ops' scripts/kafka.sh mm2 up
start_nodes mm2bench.georep.ops no
mirrored warmup-mm2
latency mm2 "$LAT_RATE"
if ((LAT_LOW_RATE > 0)); then latency mm2-low "$LAT_LOW_RATE"; fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

rps() { awk -F'"' -v t="$2" '$2 == t { print $4 }' "$work/$1.csv"; }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1.txt" | tail -1; }

echo
echo "== summary: Kafka $(cat .kafka/libs/broker/.complete 2>/dev/null) brokers, MirrorMaker 2 $(cat .kafka/libs/mm2/.complete 2>/dev/null), $(nproc) CPUs; load average before $load_before, mid $load_mid, after $load_after"
printf '%-6s %14s %14s %8s\n' test "georep req/s" "redis req/s" ratio
for t in SET GET INCR; do
	awk -v t="$t" -v g="$(rps georep "$t")" -v r="$(rps redis "$t")" 'BEGIN {
		printf "%-6s %14.0f %14.0f %7.1f%%\n", t, g, r, (r > 0) ? 100 * g / r : 0
	}'
done
for m in bridge bridge-low mm2 mm2-low; do
	[[ -s $work/$m.txt ]] || continue
	echo "us->eu visibility after ack, $m at $(field $m achieved)/s: p50 $(field $m vis_p50_ms) ms, p90 $(field $m vis_p90_ms) ms," \
		"p99 $(field $m vis_p99_ms) ms, max $(field $m vis_max_ms) ms; us ack p50 $(field $m ack_p50_ms) ms, p99 $(field $m ack_p99_ms) ms;" \
		"unseen $(field $m unseen), errors $(field $m errors)"
done
