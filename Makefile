# aether-devhot. Newcomers need two targets: `make demo` and `make test`.

SHELL := /usr/bin/env bash
BIN := $(CURDIR)/bin
export KUBEBUILDER_ASSETS := $(BIN)
GO_TEST_FLAGS ?=

.PHONY: all
all: build

## tools: build the pinned kube-apiserver, etcd and kubectl into bin/ (once).
.PHONY: tools
tools:
	@hack/build-tools.sh

## build: build the webhook and fetcher binaries into bin/.
.PHONY: build
build:
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/webhook ./cmd/webhook
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/fetcher ./cmd/fetcher

## fmt, vet: keep the tree gofmt- and vet-clean.
.PHONY: fmt vet
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
vet:
	go vet ./...

## test: every test, the integration tests on the real local control plane included.
.PHONY: test
test: tools fmt vet
	AETHER_REQUIRE_INTEGRATION=1 AETHER_REQUIRE_NODE=1 go test $(GO_TEST_FLAGS) ./...

## fuzz: run each fuzz target for FUZZTIME (new failing inputs land in testdata/fuzz).
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	go test ./pkg/mutate -run '^$$' -fuzz FuzzMutate -fuzztime $(FUZZTIME)
	go test ./pkg/sidecar/release -run '^$$' -fuzz FuzzExtract -fuzztime $(FUZZTIME)

## bench: print the performance table (see README "Performance").
.PHONY: bench
bench: tools
	go run ./test/bench/cmd/benchtable

## demo: start the local control plane and the webhook, apply the sample and show the mutation.
.PHONY: demo
demo: tools
	go run ./test/demo

## run: run the webhook against $$KUBECONFIG.
.PHONY: run
run:
	go run ./cmd/webhook

.PHONY: clean
clean:
	rm -f $(BIN)/webhook $(BIN)/fetcher
