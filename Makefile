# dgov — the two commands of the README are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/dgov
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/dgov/dgov/internal/app.Version=$(VERSION)
PKGS    := ./...

.PHONY: build run demo test test-short bench fuzz vet fmt clean browser-deps

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dgov

# Build, load the demo data (idempotent) and serve on embedded defaults.
run: build
	$(BIN) demo
	$(BIN) serve

demo: build
	$(BIN) demo

# Every test: SQLite and PostgreSQL, NATS, the job queue, and headless-chromium browser tests.
# DGOV_TEST_STRICT makes a missing PostgreSQL, NATS or chromium fail the run instead of skipping.
test: browser-deps
	$(GO) vet $(PKGS)
	DGOV_TEST_STRICT=1 $(GO) test -count=1 -timeout 20m $(PKGS)

# Unit tests that need no services (no PostgreSQL, no browser).
test-short:
	$(GO) test -short -count=1 $(PKGS)

browser-deps:
	@scripts/ensure-browser.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/... | tee bench.out

# Run every fuzz target for FUZZTIME each (default 20s).
FUZZTIME ?= 20s
fuzz:
	@scripts/fuzz-all.sh $(FUZZTIME)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin bench.out
