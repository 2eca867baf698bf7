#!/usr/bin/env bash
# Local multi-region Apache Kafka (KRaft, one combined broker+controller per
# region) and MirrorMaker 2 for georep tests. See scripts/kafka/README.md.
#
#   scripts/kafka.sh up [REGION...]     start regions (default: us eu ap)
#   scripts/kafka.sh down               stop everything `up` started, delete run data
#   scripts/kafka.sh status             running/stopped per region (and MM2)
#   scripts/kafka.sh stop REGION        stop one broker, keep its data
#   scripts/kafka.sh start REGION       start a stopped broker again
#   scripts/kafka.sh mm2 up|down|check|status
#   scripts/kafka.sh fetch              only download the jars
#
# Environment: KAFKA_BASE_PORT (19092), KAFKA_VERSIONS ("4.4.0 4.3.1 4.3.0
# 4.2.0", tried in order per component), KAFKA_HEAP_OPTS, MM2_HEAP_OPTS,
# KAFKA_READY_TIMEOUT (90s), MM2_READY_TIMEOUT (120s), MM2_TOPICS (Java regex of
# the topics MirrorMaker 2 mirrors, default .*georep\.ops), MM2_EXTRA (more
# mm2.properties lines, appended; later lines win).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
KDIR=$ROOT/.kafka
LIBS=$KDIR/libs
RUN=$KDIR/run
POM=$SCRIPT_DIR/kafka/pom.xml
LOG4J_CONF=$SCRIPT_DIR/kafka/log4j2.properties
READY_BIN=$KDIR/bin/ready
BASE_PORT=${KAFKA_BASE_PORT:-19092}
CONTROLLER_OFFSET=100
KAFKA_VERSIONS=${KAFKA_VERSIONS:-"4.4.0 4.3.1 4.3.0 4.2.0"}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:-"-Xms256m -Xmx512m"}
MM2_HEAP_OPTS=${MM2_HEAP_OPTS:-"-Xms128m -Xmx512m"}
KAFKA_READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90s}
MM2_READY_TIMEOUT=${MM2_READY_TIMEOUT:-120s}
# Regex (Java syntax) of the topics MirrorMaker 2 mirrors: every georep topic,
# including per-test ones like t1a2b3c.georep.ops.
MM2_TOPICS=${MM2_TOPICS:-'.*georep\.ops'}
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
JVM_PERF_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
	-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

log() { echo "kafka.sh: $*" >&2; }
die() {
	echo "kafka.sh: error: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

# ---------------------------------------------------------------- tools ----

need_java() {
	command -v java >/dev/null 2>&1 ||
		die "java not found on PATH: Kafka 4.x needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"
	local v major
	v=$(java -version 2>&1 | awk -F'"' '/version/{print $2; exit}')
	major=${v%%.*}
	[[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2)
	[[ $major =~ ^[0-9]+$ && $major -ge 17 ]] ||
		die "java on PATH is version '${v:-unknown}', Kafka 4.x needs Java 17+"
}

need_mvn() {
	command -v mvn >/dev/null 2>&1 ||
		die "mvn not found on PATH: needed once to download the Kafka jars (e.g. apt-get install maven)"
}

need_go() {
	command -v go >/dev/null 2>&1 || die "go not found on PATH: needed to build scripts/kafka/ready"
}

# Serialize commands that change state (two `up`s at once would race).
take_lock() {
	mkdir -p "$KDIR"
	exec 9>"$KDIR/lock"
	flock -w 300 9 || die "another kafka.sh holds $KDIR/lock for more than 300s"
}

# ---------------------------------------------------------------- jars -----

# fetch_libs broker|mm2: resolve the jars into $LIBS/<kind> once; the
# .complete marker (holding the version) makes later calls a no-op.
fetch_libs() {
	local kind=$1 dir=$LIBS/$1 v t0
	if [[ -f $dir/.complete ]]; then
		return 0
	fi
	need_mvn
	mkdir -p "$LIBS"
	t0=$(now)
	for v in $KAFKA_VERSIONS; do
		log "resolving $kind jars, Kafka $v (log: $LIBS/maven-$kind.log)"
		rm -rf "$dir.tmp"
		if mvn -B -q -f "$POM" -P "$kind" -Dkafka.version="$v" "$DEP_PLUGIN:copy-dependencies" \
			-DincludeScope=runtime -DoutputDirectory="$dir.tmp" >>"$LIBS/maven-$kind.log" 2>&1; then
			echo "$v" >"$dir.tmp/.complete"
			rm -rf "$dir"
			mv "$dir.tmp" "$dir"
			log "$kind: Kafka $v, $(find "$dir" -name '*.jar' | wc -l) jars in $(since "$t0")"
			return 0
		fi
		log "$kind: Kafka $v did not resolve"
	done
	rm -rf "$dir.tmp"
	die "could not resolve $kind jars for any of: $KAFKA_VERSIONS (see $LIBS/maven-$kind.log)"
}

lib_version() { cat "$LIBS/$1/.complete" 2>/dev/null || echo "?"; }

build_ready() {
	local src=$SCRIPT_DIR/kafka/ready/main.go
	if [[ -x $READY_BIN && $READY_BIN -nt $src && $READY_BIN -nt $ROOT/go.mod && $READY_BIN -nt $ROOT/go.sum ]]; then
		return 0
	fi
	need_go
	[[ -f $ROOT/go.mod ]] || die "no go.mod in $ROOT"
	mkdir -p "$(dirname "$READY_BIN")"
	(cd "$ROOT" && go build -o "$READY_BIN.tmp" ./scripts/kafka/ready) || die "building scripts/kafka/ready failed"
	mv "$READY_BIN.tmp" "$READY_BIN"
}

# ---------------------------------------------------------------- regions --

check_region_name() {
	[[ $1 =~ ^[a-z][a-z0-9]{0,15}$ && $1 != mm2 ]] ||
		die "bad region name '$1': use lowercase letters/digits (it becomes a topic prefix and an MM2 alias)"
}

# Regions that have run data, ordered by their index.
known_regions() {
	local f
	for f in "$RUN"/*/region.env; do
		[[ -f $f ]] || continue
		(
			# shellcheck disable=SC1090
			. "$f"
			echo "$INDEX $REGION"
		)
	done | sort -n | awk '{print $2}'
}

# load_region REGION: sets REGION INDEX PORT CONTROLLER_PORT CLUSTER_ID.
load_region() {
	local f=$RUN/$1/region.env
	[[ -f $f ]] || die "unknown region '$1' (no $f); start it with: scripts/kafka.sh up $1"
	# shellcheck disable=SC1090
	. "$f"
}

bootstrap_of() {
	local REGION INDEX PORT CONTROLLER_PORT CLUSTER_ID
	load_region "$1"
	echo "127.0.0.1:$PORT"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: true if the pid in PIDFILE runs and its command
# line contains PATTERN (guards against reused pids).
pid_alive() {
	local pid
	[[ -f $1 ]] || return 1
	pid=$(cat "$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# stop_pid PIDFILE PATTERN LABEL: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
	local pidfile=$1 pattern=$2 label=$3 pid i
	if ! pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(cat "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -d /proc/$pid ]]; then
		log "$label (pid $pid) still running after 15s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
	log "stopped $label (pid $pid)"
}

region_running() { pid_alive "$RUN/$1/pid" "$RUN/$1/server.properties"; }

# setup_region REGION INDEX: write config and region.env (first time only).
setup_region() {
	local r=$1 idx=$2 d=$RUN/$1 port cport cid
	[[ -f $d/region.env ]] && return 0
	port=$((BASE_PORT + idx))
	cport=$((BASE_PORT + CONTROLLER_OFFSET + idx))
	# 22-char base64url id like `kafka-storage.sh random-uuid`, not starting with '-'.
	cid=-
	while [[ $cid == -* ]]; do
		cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
	done
	mkdir -p "$d/data" "$d/logs"
	cat >"$d/server.properties" <<EOF
# Generated by scripts/kafka.sh for region $r.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
auto.create.topics.enable=false
num.partitions=8
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
	cat >"$d/region.env.tmp" <<EOF
REGION=$r
INDEX=$idx
PORT=$port
CONTROLLER_PORT=$cport
CLUSTER_ID=$cid
EOF
	mv "$d/region.env.tmp" "$d/region.env"
}

# format_region REGION: KRaft storage format, once per data dir.
format_region() {
	local r=$1 d=$RUN/$1
	[[ -f $d/data/meta.properties ]] && return 0
	load_region "$r"
	if ! java -Xmx256m -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$d/logs" \
		-cp "$LIBS/broker/*" kafka.tools.StorageTool format --standalone \
		-t "$CLUSTER_ID" -c "$d/server.properties" >"$d/logs/format.log" 2>&1; then
		cat "$d/logs/format.log" >&2
		die "formatting $r storage failed (log: $d/logs/format.log)"
	fi
}

# launch_region REGION: start the broker JVM in its own session; no wait.
launch_region() {
	local r=$1 d=$RUN/$1 pid
	load_region "$r"
	if port_in_use "$PORT" || port_in_use "$CONTROLLER_PORT"; then
		die "port $PORT or $CONTROLLER_PORT (region $r) is already in use by another process; set KAFKA_BASE_PORT or free it"
	fi
	{
		echo
		echo "=== $(date -u +%FT%TZ) starting $r"
	} >>"$d/logs/stdout.log"
	# shellcheck disable=SC2086
	(cd "$d" && exec setsid java $KAFKA_HEAP_OPTS "${JVM_PERF_OPTS[@]}" \
		-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$d/logs" \
		-cp "$LIBS/broker/*" kafka.Kafka "$d/server.properties" 9>&- \
		</dev/null >>"$d/logs/stdout.log" 2>&1) &
	pid=$!
	echo "$pid" >"$d/pid"
}

# wait_ready REGION...: produce+fetch round trip on each, in parallel.
wait_ready() {
	local r pids=() specs=()
	for r in "$@"; do
		specs+=("$r=$(bootstrap_of "$r")")
		pids+=("$r=$(cat "$RUN/$r/pid")")
	done
	if ! "$READY_BIN" -timeout "$KAFKA_READY_TIMEOUT" -pids "$(
		IFS=,
		echo "${pids[*]}"
	)" "${specs[@]}"; then
		for r in "$@"; do
			if ! region_running "$r"; then
				log "region $r is not running; last lines of $RUN/$r/logs/stdout.log:"
				tail -n 20 "$RUN/$r/logs/stdout.log" >&2 || true
			fi
		done
		die "Kafka did not become ready (a broker exited, or $KAFKA_READY_TIMEOUT passed; logs under $RUN/<region>/logs; clean up with: scripts/kafka.sh down)"
	fi
}

write_bootstrap_env() {
	local r parts=()
	for r in $(known_regions); do
		parts+=("$r=$(bootstrap_of "$r")")
	done
	mkdir -p "$RUN"
	{
		echo "# Written by scripts/kafka.sh; region=bootstrap for every region set up."
		echo "GEOREP_KAFKA=$(
			IFS=,
			echo "${parts[*]}"
		)"
	} >"$RUN/bootstrap.env"
}

print_regions() {
	local r
	for r in "$@"; do
		echo "$r $(bootstrap_of "$r")"
	done
}

# ---------------------------------------------------------------- commands -

cmd_fetch() {
	take_lock
	fetch_libs broker
	fetch_libs mm2
	log "broker: Kafka $(lib_version broker) in $LIBS/broker; mm2: Kafka $(lib_version mm2) in $LIBS/mm2"
}

cmd_up() {
	local t0 regions=("$@") r i idx todo=() fpids=() used
	t0=$(now)
	((${#regions[@]})) || regions=(us eu ap)
	for r in "${regions[@]}"; do check_region_name "$r"; done
	[[ $(printf '%s\n' "${regions[@]}" | sort | uniq -d) == "" ]] || die "a region is named twice"
	need_java
	take_lock
	fetch_libs broker
	fetch_libs mm2
	build_ready
	mkdir -p "$RUN"

	# Index (port = base + index) = position in the argument list; a region
	# with run data keeps its recorded ports; a taken index moves to the
	# next free one (so `up us eu` then `up ap` gives ap index 2).
	for i in "${!regions[@]}"; do
		r=${regions[$i]}
		if [[ ! -f $RUN/$r/region.env ]]; then
			used=$(for k in $(known_regions); do (
				load_region "$k"
				echo "$INDEX"
			); done)
			idx=$i
			while grep -qx "$idx" <<<"$used"; do idx=$((idx + 1)); done
			setup_region "$r" "$idx"
		fi
		if region_running "$r"; then
			log "$r already running (pid $(cat "$RUN/$r/pid"))"
		else
			todo+=("$r")
		fi
	done

	# Format (only unformatted dirs) in parallel, then start all.
	for r in "${todo[@]}"; do
		format_region "$r" &
		fpids+=($!)
	done
	for i in "${fpids[@]}"; do
		wait "$i" || die "storage format failed"
	done
	for r in "${todo[@]}"; do launch_region "$r"; done
	((${#todo[@]})) && wait_ready "${regions[@]}"
	write_bootstrap_env
	if mm2_running; then
		for r in "${regions[@]}"; do
			grep -qw "$r" "$RUN/mm2/clusters" ||
				log "note: mirrormaker2 runs for '$(cat "$RUN/mm2/clusters")' only; to add $r: scripts/kafka.sh mm2 down && scripts/kafka.sh mm2 up"
		done
	fi
	log "up: Kafka $(lib_version broker), ${#regions[@]} region(s) ready in $(since "$t0"); env: $RUN/bootstrap.env"
	print_regions "${regions[@]}"
}

cmd_down() {
	local f d jobs=()
	take_lock
	stop_mm2 # first, so it does not spin on vanished brokers
	# Every broker pid file (also of half-set-up regions), in parallel.
	for f in "$RUN"/*/pid; do
		[[ -f $f ]] || continue
		d=$(dirname "$f")
		[[ $d == "$RUN/mm2" ]] && continue
		stop_pid "$f" "$d/server.properties" "kafka $(basename "$d")" &
		jobs+=($!)
	done
	for f in "${jobs[@]}"; do wait "$f" || true; done
	rm -rf "$RUN"
	log "down: stopped, removed $RUN (jars stay cached in $LIBS)"
}

cmd_status() {
	local r any=0
	for r in $(known_regions); do
		any=1
		if region_running "$r"; then
			echo "$r running pid $(cat "$RUN/$r/pid") $(bootstrap_of "$r")"
		else
			echo "$r stopped - $(bootstrap_of "$r")"
		fi
	done
	((any)) || echo "no regions (start with: scripts/kafka.sh up)"
	if mm2_running; then
		echo "mm2 running pid $(cat "$RUN/mm2/pid") $(cat "$RUN/mm2/clusters" 2>/dev/null)"
	else
		echo "mm2 stopped"
	fi
}

cmd_stop() {
	local r=${1:-}
	[[ -n $r && $# -eq 1 ]] || die "usage: scripts/kafka.sh stop REGION"
	take_lock
	load_region "$r"
	if ! region_running "$r"; then
		log "$r is not running"
		return 0
	fi
	stop_pid "$RUN/$r/pid" "$RUN/$r/server.properties" "kafka $r"
}

cmd_start() {
	local r=${1:-} t0
	[[ -n $r && $# -eq 1 ]] || die "usage: scripts/kafka.sh start REGION"
	t0=$(now)
	need_java
	take_lock
	load_region "$r"
	fetch_libs broker
	build_ready
	if region_running "$r"; then
		log "$r already running (pid $(cat "$RUN/$r/pid"))"
	else
		format_region "$r"
		launch_region "$r"
		wait_ready "$r"
		log "start: $r ready in $(since "$t0")"
	fi
	print_regions "$r"
}

# ---------------------------------------------------------------- mm2 ------

mm2_running() { pid_alive "$RUN/mm2/pid" "$RUN/mm2/mm2.properties"; }

stop_mm2() { stop_pid "$RUN/mm2/pid" "$RUN/mm2/mm2.properties" "mirrormaker2"; }

running_regions() {
	local r
	for r in $(known_regions); do
		if region_running "$r"; then echo "$r"; fi
	done
}

region_specs() {
	local r out=()
	for r in "$@"; do out+=("$r=$(bootstrap_of "$r")"); done
	(
		IFS=,
		echo "${out[*]}"
	)
}

write_mm2_props() {
	local f=$1 a b
	shift
	{
		echo "# Generated by scripts/kafka.sh: MirrorMaker 2, dedicated mode, full mesh."
		a="$*"
		echo "clusters = ${a// /, }"
		for a in "$@"; do
			echo "$a.bootstrap.servers = $(bootstrap_of "$a")"
		done
		for a in "$@"; do
			for b in "$@"; do
				[[ $a == "$b" ]] || echo "$a->$b.enabled = true"
			done
		done
		# Properties-file escaping: "\\." is read as the regex "\." (a
		# literal dot). topics.exclude keeps the defaults and adds "<alias>\..*"
		# so a mirror (us.georep.ops in eu) is never forwarded a second hop
		# (eu.us.georep.ops in ap), whatever the topic regex.
		echo "topics = $(sed 's/\\/\\\\/g' <<<"$MM2_TOPICS")"
		echo "topics.exclude = ($(
			IFS='|'
			echo "$*"
		))\\\\..*, .*[\\\\-\\\\.]internal, .*\\\\.replica, __.*"
		cat <<'EOF'
replication.policy.class = org.apache.kafka.connect.mirror.DefaultReplicationPolicy
replication.factor = 1
checkpoints.topic.replication.factor = 1
heartbeats.topic.replication.factor = 1
offset-syncs.topic.replication.factor = 1
offset.storage.replication.factor = 1
status.storage.replication.factor = 1
config.storage.replication.factor = 1
offset.storage.partitions = 1
status.storage.partitions = 1
refresh.topics.interval.seconds = 2
sync.topic.acls.enabled = false
emit.checkpoints.enabled = false
sync.group.offsets.enabled = false
plugin.discovery = service_load
EOF
		for a in "$@"; do
			# Worker-level settings must carry the target alias as prefix.
			echo "$a.offset.flush.interval.ms = 1000"
			echo "$a.scheduled.rebalance.max.delay.ms = 1000"
			# plugin.discovery: skip the slow classpath plugin scan (~1.5 s per flow).
			echo "$a.plugin.discovery = service_load"
			# georep writes multi-key commands in Kafka transactions: copy only
			# committed records (MM2's consumers default to read_uncommitted,
			# which mirrors aborted records as if they had been committed).
			echo "$a.consumer.isolation.level = read_committed"
		done
		if [[ -n ${MM2_EXTRA:-} ]]; then
			echo "# MM2_EXTRA"
			echo "$MM2_EXTRA"
		fi
	} >"$f"
}

cmd_mm2() {
	local sub=${1:-} t0 regions d=$RUN/mm2 pid since
	case $sub in
	up)
		t0=$(now)
		need_java
		take_lock
		if mm2_running; then
			log "mirrormaker2 already running (pid $(cat "$d/pid")): $(cat "$d/clusters")"
			return 0
		fi
		mapfile -t regions < <(running_regions)
		((${#regions[@]} >= 2)) || die "mm2 needs at least two running regions (running: ${regions[*]:-none}); run: scripts/kafka.sh up"
		fetch_libs mm2
		build_ready
		mkdir -p "$d/logs"
		write_mm2_props "$d/mm2.properties" "${regions[@]}"
		echo "${regions[*]}" >"$d/clusters"
		{
			echo
			echo "=== $(date -u +%FT%TZ) starting mirrormaker2 for ${regions[*]}"
		} >>"$d/logs/stdout.log"
		since=$(date +%s%3N)
		# shellcheck disable=SC2086
		(cd "$d" && exec setsid java $MM2_HEAP_OPTS "${JVM_PERF_OPTS[@]}" \
			-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$d/logs" \
			-cp "$LIBS/mm2/*" org.apache.kafka.connect.mirror.MirrorMaker "$d/mm2.properties" 9>&- \
			</dev/null >>"$d/logs/stdout.log" 2>&1) &
		pid=$!
		echo "$pid" >"$d/pid"
		if ! "$READY_BIN" -timeout "$MM2_READY_TIMEOUT" -pids "mm2=$pid" -since-ms "$since" -mm2-wait "$(region_specs "${regions[@]}")"; then
			tail -n 20 "$d/logs/stdout.log" >&2 || true
			die "MirrorMaker 2 did not start mirroring within $MM2_READY_TIMEOUT (logs: $d/logs); stop it with: scripts/kafka.sh mm2 down"
		fi
		log "mm2 up: MirrorMaker 2 (Kafka $(lib_version mm2)) mirroring topics matching $MM2_TOPICS between ${regions[*]}, all flows live in $(since "$t0")"
		echo "mm2 running pid $pid ${regions[*]}"
		;;
	down)
		take_lock
		stop_mm2
		;;
	check)
		# Writes a test record into georep.ops of every running region.
		build_ready
		mapfile -t regions < <(running_regions)
		((${#regions[@]} >= 2)) || die "mm2 check needs at least two running regions"
		mm2_running || die "mirrormaker2 is not running (scripts/kafka.sh mm2 up)"
		"$READY_BIN" -timeout "${MM2_READY_TIMEOUT}" -mirror-check "$(region_specs "${regions[@]}")"
		;;
	status)
		if mm2_running; then
			echo "mm2 running pid $(cat "$d/pid") $(cat "$d/clusters")"
		else
			echo "mm2 stopped"
		fi
		;;
	*) die "usage: scripts/kafka.sh mm2 up|down|check|status" ;;
	esac
}

main() {
	local cmd=${1:-}
	[[ -n $cmd ]] || usage
	shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down ;;
	status) cmd_status ;;
	stop) cmd_stop "$@" ;;
	start) cmd_start "$@" ;;
	mm2) cmd_mm2 "$@" ;;
	fetch) cmd_fetch ;;
	-h | --help | help) usage ;;
	*)
		log "unknown command '$cmd'"
		usage
		;;
	esac
}

main "$@"
