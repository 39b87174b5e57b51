# predixy — every target installs what it needs first (see `setup`).

BUN      := node_modules/.bin/bun
TSC      := node_modules/.bin/tsc
CONFIG   ?= predixy.toml
CLUSTER_DIR ?= .cluster

.PHONY: setup build run test test-unit bench failover-bench microbench cluster-start cluster-stop cluster-status check clean

# npm dependencies (Bun itself comes from npm) and Debian's redis-server/redis-tools.
setup:
	@bash scripts/setup.sh

build: setup
	$(BUN) build --compile --minify --sourcemap src/main.ts --outfile dist/predixy

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

microbench: setup
	$(BUN) bench/request-reader.bench.ts
	$(BUN) bench/router.bench.ts
	$(BUN) bench/multi-key.bench.ts
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
