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
	go run ./test/bench/cmd/benchtable $(BENCH_FLAGS)

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

## Install paths (README "Install"). IMG is the image to build and deploy;
## NAMESPACE the webhook's namespace for make deploy.
IMG ?= aether-devhot:dev
NAMESPACE ?= aether-system
KUBECTL ?= kubectl
## HELM renders make deploy; another helm than the pinned bin/helm skips make tools.
HELM ?= $(BIN)/helm

## helm-lint: lint the chart and render it with its defaults (bin/helm: make tools).
.PHONY: helm-lint
helm-lint: tools
	$(BIN)/helm lint --strict charts/aether-devhot
	$(BIN)/helm template aether-devhot charts/aether-devhot --namespace $(NAMESPACE) >/dev/null

## manifests: render the chart into the committed plain manifest deploy/aether-devhot.yaml
## (defaults: image aether-devhot:dev, namespace aether-system, no cert-manager).
.PHONY: manifests
manifests: tools
	IMG= NAMESPACE= deploy/render.sh

## deploy: render for IMG and NAMESPACE into bin/, apply it to $$KUBECONFIG, then make the
## TLS Secret and caBundle (certs/).
.PHONY: deploy
deploy: $(if $(filter $(BIN)/helm,$(HELM)),tools)
	HELM=$(HELM) IMG=$(IMG) NAMESPACE=$(NAMESPACE) deploy/render.sh $(BIN)/aether-devhot.yaml
	$(KUBECTL) apply --server-side -f $(BIN)/aether-devhot.yaml
	go run ./certs --namespace $(NAMESPACE)
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/aether-devhot --timeout=180s

## docker-build: build the image IMG (holds /webhook and /fetcher); skipped without a Docker engine.
.PHONY: docker-build
docker-build:
	@if ! docker info >/dev/null 2>&1; then echo "docker not available: skipped"; exit 0; fi; \
	docker build -t $(IMG) .

## e2e-kind: kind cluster, image, cert-manager, chart, then test/e2e on real pods; skipped without Docker.
.PHONY: e2e-kind
e2e-kind:
	IMG=$(IMG) test/kind/e2e.sh
