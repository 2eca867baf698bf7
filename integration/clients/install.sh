#!/usr/bin/env bash
# Installs the client libraries of the compatibility smoke tests
# (integration/clients_test.go): redis-py, ioredis (into node/node_modules)
# and Jedis (into jedis/target/lib); and confluent-kafka for
# examples/cdc-python. Each step is skipped when its runtime is
# missing (the test then skips too) or when it is already installed.
set -euo pipefail
cd "$(dirname "$0")"

if command -v python3 >/dev/null; then
  if ! python3 -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 5)' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r python/requirements.txt
  fi
  # The change-data-capture example (scripts/kafka/cdc.sh runs it).
  if ! python3 -c 'import confluent_kafka' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r ../../examples/cdc-python/requirements.txt
  fi
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -f node/node_modules/ioredis/package.json ]; then
    (cd node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

if command -v java >/dev/null && command -v mvn >/dev/null; then
  if ! ls jedis/target/lib/jedis-*.jar >/dev/null 2>&1; then
    mvn -q -B -f jedis/pom.xml dependency:copy-dependencies -DoutputDirectory=target/lib
  fi
fi
