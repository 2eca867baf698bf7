#!/usr/bin/env bash
# The change-data-capture check of `make test-kafka` (scripts/kafka/test.sh):
# two `georep node --changelog` processes (us and eu, mirrored by their
# bridges) on the real Kafka clusters of scripts/kafka.sh, a mixed workload
# with redis-cli (strings, counters, hashes, sets, sorted sets, lists, deletes,
# a type change, binary values, expiries) on both, then examples/cdc-python
# reads each region's changelog topic from the beginning and checks that it
# folds into the region's state read over RESP (compare.py polls until equal,
# 60 s at most).
#
# Needs: scripts/kafka.sh up us eu (GEOREP_KAFKA, else .kafka/run/bootstrap.env),
# redis-cli, python3 with confluent-kafka and redis (integration/clients/install.sh).
# Environment: GEOREP_BIN (a built georep; default: go build).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${GEOREP_KAFKA:-}" ]; then
	# shellcheck disable=SC1091
	. .kafka/run/bootstrap.env
fi
brokers_of() { tr ',' '\n' <<<"$GEOREP_KAFKA" | sed -n "s/^$1=//p" | tr ';' ','; }
US=$(brokers_of us)
EU=$(brokers_of eu)
if [ -z "$US" ] || [ -z "$EU" ]; then
	echo "cdc.sh: needs regions us and eu (scripts/kafka.sh up us eu); GEOREP_KAFKA=$GEOREP_KAFKA" >&2
	exit 1
fi
if ! python3 -c 'import confluent_kafka, redis' 2>/dev/null; then
	echo "cdc.sh: python3 needs confluent-kafka and redis: bash integration/clients/install.sh" >&2
	exit 1
fi
BIN=${GEOREP_BIN:-}
WORK=$(mktemp -d)
if [ -z "$BIN" ]; then
	BIN=$WORK/georep
	go build -o "$BIN" ./cmd/georep
fi

# Topics of this run only: the clusters outlive it and hold other tests' topics.
RUN_ID=c$(date +%s%N | tail -c 9)
TOPIC=$RUN_ID.georep.ops
CHANGELOG=$RUN_ID.georep.changelog

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

start_node() { # region instance-id own-brokers peer peer-brokers
	local log=$WORK/$1.log
	"$BIN" --log-level warn node --region "$1" --instance-id "$2" --brokers "$3" \
		--peers "$4" --peer-brokers "$4=${5//,/;}" --topic "$TOPIC" --partitions 4 \
		--changelog --changelog-topic "$CHANGELOG" \
		--addr 127.0.0.1:0 --data-dir "$WORK/$1" >"$log" 2>&1 &
	pids+=($!)
}
addr_of() { # region: waits for the node's ready line (90 s at most)
	local log=$WORK/$1.log i
	for ((i = 0; i < 900; i++)); do
		if grep -q 'ready: RESP on ' "$log" 2>/dev/null; then
			sed -n 's/.*ready: RESP on //p' "$log" | head -1
			return
		fi
		sleep 0.1
	done
	echo "cdc.sh: node $1 not ready in 90 s:" >&2
	cat "$log" >&2
	exit 1
}

start_node us 1 "$US" eu "$EU"
start_node eu 2 "$EU" us "$US"
US_ADDR=$(addr_of us)
EU_ADDR=$(addr_of eu)
echo "cdc.sh: nodes us ($US_ADDR) and eu ($EU_ADDR) publish changelog topic $CHANGELOG"
cli() { local a=$1; shift; redis-cli -h "${a%:*}" -p "${a##*:}" "$@"; }

workload() { # region-tag
	local i t=$1
	for ((i = 1; i <= 30; i++)); do
		echo "SET str:$t:$i \"value $i é\""
		echo "INCRBY cnt:$((i % 5)) $i"
		echo "INCRBYFLOAT flt:$((i % 3)) 0.25"
		echo "HSET h:$((i % 4)) f$i v$i"
		echo "HINCRBY h:$((i % 4)) n 1"
		echo "SADD s:$((i % 3)) m$i m$((i + 1))"
		echo "ZADD z:$((i % 2)) $i m$i"
		echo "ZINCRBY z:$((i % 2)) 0.5 m1"
		echo "RPUSH l:$((i % 3)) e$i e$((i + 1))"
		echo "LPOP l:$((i % 3))"
		echo "SET tmp:$t:$i x PX 400"
		echo "HSET htmp:$t:$i a b"
		echo "PEXPIRE htmp:$t:$i 400"
	done
	echo "DEL str:$t:1 str:$t:2 s:0"
	echo "SREM s:1 m1"
	echo "HDEL h:1 f1"
	# redis-cli decodes the \x escapes: a value that is not UTF-8.
	# shellcheck disable=SC2028
	echo "SET bin:$t \"\\xff\\x00\\x01\""
	echo "ZADD z:inf +inf top -inf bottom"
	echo "SET h:2 \"now a string\""
}
workload us | cli "$US_ADDR" >/dev/null
workload eu | cli "$EU_ADDR" >/dev/null
cli "$US_ADDR" GEOREP SYNC 30000 >/dev/null
cli "$EU_ADDR" GEOREP SYNC 30000 >/dev/null

cd examples/cdc-python
python3 compare.py --brokers "$US" --topic "$CHANGELOG" --redis "$US_ADDR" --deadline 60
python3 compare.py --brokers "$EU" --topic "$CHANGELOG" --redis "$EU_ADDR" --deadline 60
echo "cdc.sh: ok"
