# georep's build and test entry points. `make test` is the README's test
# command and what CI runs.
GO ?= go

.PHONY: test test-short build vet bench test-kafka clients

# All tests, with the race detector: unit, property, server and the
# integration suite on embedded Kafka. The client libraries of the
# compatibility smoke tests are installed first (once; quick afterwards).
test: clients
	$(GO) test -race -timeout 12m ./...

# redis-py, ioredis and Jedis for integration/clients_test.go (and the CDC
# example's Kafka client), for each runtime present on the machine.
clients:
	bash integration/clients/install.sh

test-short:
	$(GO) test -short ./...

build:
	$(GO) build -o georep ./cmd/georep

vet:
	$(GO) vet ./...
	gofmt -l . | (! grep .)

bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./crdt/... ./materializer/...

# The integration suite on real Apache Kafka (Java 17 and Maven needed; the
# jars are cached under .kafka/): three single-node clusters, each region a
# `georep node` process with georep's bridges, then the string and counter
# scenarios mirrored by MirrorMaker 2. Stops Kafka at the end, also on
# failure. See scripts/kafka/test.sh and docs/real-kafka.md.
test-kafka:
	GO=$(GO) scripts/kafka/test.sh
