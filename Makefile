# submeter: the two commands for a fresh machine are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_STAMP := node_modules/.package-lock.json

.PHONY: help deps services services-down test-deps test typecheck demo bench clean

help:
	@echo "make demo           simulated site, collector, workers, API, bills (installs what it needs)"
	@echo "make test           all tests: unit, protocol, integration (installs what it needs)"
	@echo "make bench          benchmark scripts; figures go to docs/benchmarks.md"
	@echo "make services       start (or reuse) Redis and InfluxDB on loopback"
	@echo "make services-down  stop the servers that 'make services' started"

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_STAMP)

services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

# Debian tools the protocol and interoperability tests drive: socat (PTY pairs), mbpoll
# and python3-pymodbus (independent Modbus peers), docker-compose (compose.yaml check).
test-deps:
	scripts/test-deps.sh

typecheck: deps
	npx tsc --noEmit

test: deps test-deps services
	npx tsc --noEmit
	npx depcruise --config .dependency-cruiser.cjs $(wildcard core collector workers api sim cli influx lib grafana)
	set -a; source .run/services.env; set +a; npx vitest run

demo: deps test-deps services
	set -a; source .run/services.env; set +a; npx submeter demo

bench: deps test-deps services
	set -a; source .run/services.env; set +a; scripts/bench.sh

clean:
	rm -rf .run/tmp
