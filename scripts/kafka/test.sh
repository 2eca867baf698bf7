#!/usr/bin/env bash
# `make test-kafka`: the integration suite on real Apache Kafka.
#
#   1. scripts/kafka.sh up us eu ap (one single-node KRaft cluster per region);
#   2. go test ./integration/... with GEOREP_KAFKA set: every region of every
#      test is a `georep node` process, mirrored by georep's bridges; the
#      real-Kafka fault tests (integration/faults_kafka_test.go) run too, and
#      TestLogTools runs georep replay, snapshot, digest and tail against
#      these clusters (integration/tools_test.go);
#   3. scripts/kafka/cdc.sh: two `georep node --changelog` processes, a mixed
#      workload, and examples/cdc-python checking that each changelog topic
#      folds into its region's state;
#   4. scripts/kafka.sh mm2 up, then the string and counter conflict scenarios
#      and adding a region again with GEOREP_MIRROR=mm2: no bridges in the
#      nodes (--mirror external), MirrorMaker 2 mirrors, GEOREP SYNC waits;
#   5. scripts/kafka.sh down, also on failure or Ctrl-C.
#
# Environment: GO (go), KAFKA_TEST_TIMEOUT (12m, the go test -timeout of
# step 2, which took 3 to 5 min), KAFKA_MM2_TIMEOUT (4m, that of step 4,
# 35 s), KAFKA_MM2_TESTS (the -run regex of step 4), KAFKA_TEST_RUN
# (a -run regex for step 2, default everything), plus scripts/kafka.sh's own
# settings. .ci/run bounds the whole of CI to 30 min on top of these.
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
TIMEOUT=${KAFKA_TEST_TIMEOUT:-12m}
MM2_TIMEOUT=${KAFKA_MM2_TIMEOUT:-4m}
MM2_TESTS=${KAFKA_MM2_TESTS:-'^Test(SeedExample|Strings_|Counters_|Regions_)'}
RUN=${KAFKA_TEST_RUN:-}

t0=$SECONDS
phase() { echo "test-kafka: $1 ($((SECONDS - t0)) s)"; }
cleanup() {
	local rc=$?
	phase "stopping Kafka"
	scripts/kafka.sh down || true
	phase "done, exit status $rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "starting Kafka: us eu ap"
scripts/kafka.sh up us eu ap
# With the bridges nothing else may mirror (a MirrorMaker 2 left running
# would copy every topic a second time).
scripts/kafka.sh mm2 down
# shellcheck disable=SC1091
. .kafka/run/bootstrap.env
export GEOREP_KAFKA
export GEOREP_KAFKA_SCRIPT=$PWD/scripts/kafka.sh
mkdir -p .kafka/bin
$GO build -o .kafka/bin/georep ./cmd/georep
export GEOREP_BIN=$PWD/.kafka/bin/georep

phase "integration suite, georep's bridges ($GEOREP_KAFKA)"
$GO test -count=1 -timeout "$TIMEOUT" ${RUN:+-run "$RUN"} ./integration/...

phase "change data capture: examples/cdc-python on georep node --changelog"
scripts/kafka/cdc.sh

phase "starting MirrorMaker 2"
scripts/kafka.sh mm2 up
phase "conflict scenarios and adding a region ($MM2_TESTS), MirrorMaker 2"
GEOREP_MIRROR=mm2 $GO test -count=1 -timeout "$MM2_TIMEOUT" -run "$MM2_TESTS" ./integration/
