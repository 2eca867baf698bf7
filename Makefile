# georep's build and test entry points. `make test` is the README's test
# command and what CI runs.
GO ?= go

.PHONY: test test-short build vet bench

# All tests, with the race detector: unit, property, server and the
# integration suite on embedded Kafka.
test:
	$(GO) test -race -timeout 25m ./...

test-short:
	$(GO) test -short ./...

build:
	$(GO) build -o georep ./cmd/georep

vet:
	$(GO) vet ./...
	gofmt -l . | (! grep .)

bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./crdt/... ./materializer/...
