# kubehtc — `make help` lists the targets. Logic lives in hack/.
SHELL := /usr/bin/env bash
GO    ?= go
BIN   ?= bin
# Version stamps (kubehtc's git describe, the embedded Kubernetes version): hack/version.sh.
LDFLAGS ?= $(shell hack/version.sh)
# bench-scheduling size
NODES ?= 1000
PODS  ?= 10000
# bench-gateway-grpc and bench-gateway-arc size
JOBS  ?= 2000
# bench-lazypull image payload (MiB)
IMAGE_MB ?= 2048

.DEFAULT_GOAL := help
.PHONY: help build test test-unit bench bench-scheduling bench-gang bench-gateway-grpc bench-gateway-arc bench-lazypull bench-sim sim demo up lint generate verify manifests kubectl clean

help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the binaries into bin/.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

test: ## Run all tests: unit, integration (on the embedded cluster), end-to-end (kubehtc up + kubectl).
	hack/test.sh

test-unit: ## Run unit tests only (no local cluster).
	$(GO) test -short ./...

bench: bench-scheduling bench-gateway-grpc bench-gateway-arc ## Run the quick benchmarks.

bench-scheduling: ## Pods/s of default-scheduler vs kubehtc profiles (NODES=1000 PODS=10000).
	hack/bench.sh scheduling -nodes=$(NODES) -pods=$(PODS)

bench-gang: ## Gang scheduling: 1000 gangs x 3 pods at 1000 nodes (latency, pods/s) and 50 x 64 competing gangs (drain), vs default-scheduler.
	hack/bench.sh gang -nodes=$(NODES)

bench-gateway-grpc: ## Pilots/s accepted by the grid gateway over gRPC, p50/p99 accept latency (JOBS=2000).
	hack/bench.sh gateway-grpc -jobs=$(JOBS)

bench-gateway-arc: ## ADL jobs/s accepted over ARC REST (HTTPS, proxy certificates), p50/p99 (JOBS=2000).
	hack/bench.sh gateway-arc -jobs=$(JOBS)

bench-lazypull: ## Lazy vs full image pull: start-up time and bytes, containerd + kubehtc-snapshotter (IMAGE_MB=2048; minutes; root).
	hack/bench-lazypull.sh -image-mb=$(IMAGE_MB)

bench-sim: ## kubehtc sim fast mode: jobs per wall second on nasa-ipsc, site-day and grid-week, each profile (BENCH sim ... min_jobs_per_s).
	hack/bench.sh sim

sim: build ## Run the checked-in simulation scenarios (fast mode) into sim-reports/, each checked against its ranges.
	for s in site-day nasa-ipsc alibaba-gpu alibaba-gpuspec20 alibaba-multigpu30; do $(BIN)/kubehtc sim simulations/scenarios/$$s.yaml --out sim-reports/$$s --check || exit 1; done

demo: build ## Run the demo: a mixed site workload on the local cluster, then a summary.
	$(BIN)/kubehtc demo

up: build ## Run a local cluster until Ctrl-C (prints the kubeconfig to use).
	$(BIN)/kubehtc up

manifests: ## Render the Helm chart into deploy/kustomize's generated files, and chart + kustomize output into bin/manifests.
	hack/manifests.sh

kubectl: ## Build kubectl (same Kubernetes version) into bin/.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl k8s.io/kubernetes/cmd/kubectl

lint: ## gofmt and go vet.
	hack/lint.sh

generate: ## Regenerate generated files (go.mod replace block, deepcopy + CRDs, gRPC code, kustomize files from the chart).
	hack/gen-k8s-replaces.sh
	hack/gen-crds.sh
	hack/gen-proto.sh
	MANIFESTS_SKIP_RENDER=1 hack/manifests.sh
	$(GO) mod tidy

verify: ## Regenerate, then fail if anything changed; check import boundaries.
	hack/verify.sh

clean: ## Remove build output.
	rm -rf $(BIN)
