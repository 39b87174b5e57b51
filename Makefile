# predixy — every target installs what it needs first (see `setup`).

BUN      := node_modules/.bin/bun
TSC      := node_modules/.bin/tsc
CONFIG   ?= predixy.toml
CLUSTER_DIR ?= .cluster
# What `predixy --version` reports: the commit, "-dirty" if tracked files differ from it.
COMMIT   := $(shell git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)

.PHONY: setup build release image run test test-unit bench bench-latency failover-bench microbench cluster-start cluster-stop cluster-status check clean

# npm dependencies (Bun itself comes from npm) and Debian's redis-server/redis-tools.
setup:
	@bash scripts/setup.sh

build: setup
	$(BUN) build --compile --minify --sourcemap --define 'PREDIXY_COMMIT="$(COMMIT)"' src/main.ts --outfile dist/predixy

# dist/predixy-VERSION-TARGET.tar.gz for linux-x64, linux-arm64 and their musl variants, and
# dist/SHA256SUMS (TARGETS="linux-x64" for fewer).
release: setup
	bash scripts/release.sh dist

# The Dockerfile built with podman, offline (installs podman if missing).
image: build
	bash scripts/image.sh

# The main job: a local 9 masters x 9 replicas cluster on 7000-7017 and the proxy on 6379.
run: build cluster-start
	dist/predixy -c $(CONFIG)

test: setup
	$(BUN) test --timeout 60000

test-unit: setup
	$(BUN) test test/unit

bench: build
	$(BUN) bench/e2e.ts $(BENCH_ARGS)

# kill -9 of a master under a checked 40k commands/s load on a 9 x 1 cluster (see bench/README.md).
failover-bench: build
	$(BUN) bench/failover-load.ts $(FAILOVER_ARGS)

# Open-loop latency at a fixed rate: the cluster direct, predixy, and any --target (bench/README.md).
bench-latency: build
	$(BUN) bench/latency.ts $(BENCH_ARGS)

microbench: setup
	$(BUN) bench/request-reader.bench.ts
	$(BUN) bench/router.bench.ts
	$(BUN) bench/multi-key.bench.ts
	$(BUN) bench/metrics.bench.ts
	$(BUN) bench/data-path.bench.ts

cluster-start: setup
	$(BUN) scripts/cluster.ts start --dir $(CLUSTER_DIR)

cluster-stop: setup
	$(BUN) scripts/cluster.ts stop --dir $(CLUSTER_DIR)

cluster-status: setup
	$(BUN) scripts/cluster.ts status --dir $(CLUSTER_DIR)

check: setup
	$(TSC) --noEmit -p .
	node_modules/.bin/oxlint --deny-warnings src test bench scripts

clean:
	rm -rf dist
