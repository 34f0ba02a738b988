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

## build: build the binaries of the image (webhook, fetcher, store) and the kubectl plugin into bin/.
COMMANDS := webhook fetcher store kubectl-devhot
.PHONY: build
build:
	@for c in $(COMMANDS); do echo "go build ./cmd/$$c"; CGO_ENABLED=0 go build -trimpath -o $(BIN)/$$c ./cmd/$$c || exit 1; done

## fmt, vet: keep the tree gofmt- and vet-clean.
.PHONY: fmt vet
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
vet:
	go vet ./...

## test: every test: go test ./... with the integration tests on the real local control
## plane, then the e2e tests on real pods (test-cluster) where this machine can run the
## real cluster (Linux, root, network namespaces: `cluster check`), else a line that says
## why they were skipped. AETHER_REQUIRE_CLUSTER=1 (.ci/run sets it) makes that a failure.
.PHONY: test
test: tools fmt vet
	@echo "AETHER_REQUIRE_INTEGRATION=1 AETHER_REQUIRE_NODE=1 go test $(GO_TEST_FLAGS) ./..."; start=$$SECONDS; \
	AETHER_REQUIRE_INTEGRATION=1 AETHER_REQUIRE_NODE=1 go test $(GO_TEST_FLAGS) ./... && \
	echo "go test ./...: $$((SECONDS - start))s"
	@if why=$$($(CLUSTER) check 2>&1); then \
	  $(MAKE) --no-print-directory test-cluster; \
	elif [ -n "$$AETHER_REQUIRE_CLUSTER" ]; then \
	  echo "real-cluster e2e: AETHER_REQUIRE_CLUSTER is set but this machine cannot run it:"; echo "$$why"; exit 1; \
	else \
	  echo "real-cluster e2e: skipped (make test-cluster):"; echo "$$why"; \
	fi

## fuzz: run each fuzz target for FUZZTIME (new failing inputs land in testdata/fuzz).
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	go test ./pkg/mutate -run '^$$' -fuzz FuzzMutate -fuzztime $(FUZZTIME)
	go test ./pkg/sidecar/release -run '^$$' -fuzz FuzzExtract -fuzztime $(FUZZTIME)
	go test ./pkg/refresh -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	go test ./pkg/refresh -run '^$$' -fuzz FuzzWrite -fuzztime $(FUZZTIME)
	go test ./pkg/fleet -run '^$$' -fuzz FuzzParseLine -fuzztime $(FUZZTIME)
	go test ./pkg/store -run '^$$' -fuzz FuzzParseBlobPath -fuzztime $(FUZZTIME)
	go test ./pkg/store -run '^$$' -fuzz FuzzStoreHandler -fuzztime $(FUZZTIME)
	go test ./pkg/annotations -run '^$$' -fuzz FuzzParseArtifactURL -fuzztime $(FUZZTIME)
	go test ./pkg/oci -run '^$$' -fuzz FuzzCheckManifest -fuzztime $(FUZZTIME)
	go test ./pkg/manifest -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

## bench: measure the performance table and write it to docs/performance.md.
.PHONY: bench
bench: tools
	go run ./hack/benchtable -out docs/performance.md $(BENCH_FLAGS)

## demo: the webhook, the labelled sample and its mutation, then three live reloads with their
## latency: on real pods of the single-node cluster where this machine can run it (Linux, root),
## else on the local control plane. DEMO=local or DEMO=cluster chooses.
.PHONY: demo
demo: tools
	go run ./hack/demo

## run: run the webhook against $$KUBECONFIG.
.PHONY: run
run:
	go run ./cmd/webhook

.PHONY: clean
clean:
	rm -f $(addprefix $(BIN)/,$(COMMANDS))

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
## TLS Secret and caBundle (cmd/certs).
.PHONY: deploy
deploy: $(if $(filter $(BIN)/helm,$(HELM)),tools)
	HELM=$(HELM) IMG=$(IMG) NAMESPACE=$(NAMESPACE) deploy/render.sh $(BIN)/aether-devhot.yaml
	$(KUBECTL) apply --server-side -f $(BIN)/aether-devhot.yaml
	go run ./cmd/certs --namespace $(NAMESPACE)
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/aether-devhot --timeout=180s

## docker-build: build the image IMG (holds /webhook and /fetcher); skipped without a Docker engine.
.PHONY: docker-build
docker-build:
	@if ! docker info >/dev/null 2>&1; then echo "docker not available: skipped"; exit 0; fi; \
	docker build -t $(IMG) .

## e2e-kind: kind cluster, image, cert-manager, chart, then test/e2e on real pods; skipped without Docker.
.PHONY: e2e-kind
e2e-kind:
	IMG=$(IMG) hack/kind/e2e.sh

## Real single-node cluster (README "Real cluster"; Linux, root): etcd, kube-apiserver,
## controller-manager, scheduler, kubelet and kube-proxy from bin/, containerd from apt,
## all in the network namespace aether-node. AETHER_CLUSTER_DIR (default /tmp/aether-cluster).
CLUSTER := go run ./hack/cluster

## cluster-tools: build kube-controller-manager, kube-scheduler, kubelet and kube-proxy (once).
.PHONY: cluster-tools
cluster-tools: tools
	@hack/build-tools.sh cluster

## cluster-up: bring the cluster up (or reuse the running one), images imported.
.PHONY: cluster-up
cluster-up: cluster-tools
	$(CLUSTER) up

## cluster-images: rebuild the images, import them into the running cluster and push
## the Node.js bases (node:20, distroless) to its registry (10.201.0.2:5000).
.PHONY: cluster-images
cluster-images:
	$(CLUSTER) images

## cluster-down: stop the cluster and undo every host change; fails if the host is not clean.
.PHONY: cluster-down
cluster-down:
	$(CLUSTER) down

## test-cluster: cluster-up, helm install + certs, the TestCluster* e2e tests on real pods
## (TestClusterAppImages builds test/testdata/apps and pulls them from the registry), cluster-down always.
## On a failure the pods and the tail of every daemon's log are printed first (the registry's,
## one line per request, shorter), and the failing steps and tests again last, after cluster-down.
.PHONY: test-cluster
test-cluster: cluster-tools
	@dir=$${AETHER_CLUSTER_DIR:-/tmp/aether-cluster}; status=0; start=$$SECONDS; log=$$(mktemp); 	{ $(CLUSTER) up && $(CLUSTER) install && 	  AETHER_CLUSTER_KUBECONFIG=$$dir/kubeconfig 	    go test ./test/e2e/realcluster -run '^TestCluster' -count=1 -v -timeout 20m; } > >(tee $$log) 2>&1 || status=$$?; 	if [ $$status != 0 ] && [ -d $$dir/logs ]; then 	  $(BIN)/kubectl --kubeconfig $$dir/kubeconfig get pods -A -o wide; 	  for f in $$dir/logs/*.log; do 	    n=30; case $$f in */registry.log) n=6;; esac; echo "==> $$f <=="; tail -n $$n $$f; 	  done; 	fi; 	$(CLUSTER) down || status=$$?; 	if [ $$status != 0 ]; then 	  echo "=== test-cluster failed; the failing steps and tests:"; 	  grep -E -- 'FAILED|--- FAIL|^FAIL|panic:' $$log | tail -n 25; 	fi; 	rm -f $$log; echo "test-cluster: $$((SECONDS - start))s"; exit $$status
