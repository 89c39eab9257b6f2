# Developer and CI entry points. `make` alone runs the unit tests.

SHELL := bash
.ONESHELL:
.SHELLFLAGS := -uo pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# The test brokers: start, stop, status, kill-node, start-node (go doc ./internal/testkafka/cmd/kafka).
KAFKA := $(GO) run ./internal/testkafka/cmd/kafka
# What kafka-test runs against the real broker; override to run a subset, e.g.
#   make kafka-test KAFKA_TEST_PKGS=./router/ KAFKA_TEST_FLAGS='-count=1 -run TestJavaProducedKeys -v'
KAFKA_TEST_PKGS ?= ./engine/... ./cluster/... ./router/... ./node/... ./cmd/...
KAFKA_TEST_FLAGS ?= -count=1 -race -timeout 30m
# KAFKA_BROKERS=3 starts three brokers (one KRaft quorum, topics replicated
# three times) instead of one; empty: the brokers already running, else one.
KAFKA_BROKERS ?=

# The test schema registry: start, stop, status (go doc ./internal/testregistry/cmd/registry).
REGISTRY := $(GO) run ./internal/testregistry/cmd/registry
# What registry-test runs against the real registry (and a real broker).
REGISTRY_TEST_PKGS ?= ./serde/registry/ ./node/
REGISTRY_TEST_FLAGS ?= -count=1 -p 1 -timeout 10m -run 'Apicurio|Registry'

.PHONY: test kafka-test registry-test plugins sdk-test bench bench-quick

# test: the README's test command; embedded broker, nothing but Go needed.
test:
	$(GO) test ./...

# kafka-test: the engine, cluster (three-node, join/leave/kill), HTTP, Java
# compatibility (router/java_compat_test.go), node and CLI/multi-process suites
# against a real Apache Kafka broker (needs Java 17; Maven the first time, to
# fetch Kafka with scripts/kafka.sh). Starts the broker (KAFKA_BROKERS=3:
# three) with $(KAFKA), runs the tests, then stops it whether they passed or
# not and exits with their status.
# A broker that was already running ($(KAFKA) status) is used and left
# running.
kafka-test:
	@started=$$(date +%s)
	owned=
	$(KAFKA) status >/dev/null 2>&1 || owned=1
	finish() {
		rc=$$?
		if [ -n "$$owned" ]; then
			echo "make kafka-test: stopping the broker"
			$(KAFKA) stop || { [ "$$rc" -ne 0 ] || rc=1; }
		fi
		secs=$$(( $$(date +%s) - started ))
		if [ "$$rc" -eq 0 ]; then verdict=passed; else verdict="FAILED (exit $$rc)"; fi
		printf 'make kafka-test: %s in %dm%02ds\n' "$$verdict" $$((secs / 60)) $$((secs % 60))
		exit "$$rc"
	}
	trap finish EXIT
	brokers=$$($(KAFKA) start $(if $(KAFKA_BROKERS),--brokers $(KAFKA_BROKERS)) | tail -n 1) && [ -n "$$brokers" ] || exit 1
	if [ -n "$$owned" ]; then
		echo "make kafka-test: started Kafka at $$brokers"
	else
		echo "make kafka-test: using the broker already running at $$brokers (it is left running)"
	fi
	IQENGINE_TEST_BROKERS=$$brokers $(GO) test $(KAFKA_TEST_FLAGS) $(KAFKA_TEST_PKGS)

# registry-test: the schema registry serdes against a real registry
# (Apicurio Registry, in memory; needs Java 21+ and Maven the first time,
# see internal/testregistry) and a real broker: starts the registry with
# $(REGISTRY), runs `make kafka-test` on REGISTRY_TEST_PKGS with
# IQENGINE_TEST_REGISTRY set (-p 1: a test pauses the registry), then
# stops the registry whether they passed or not. A registry already
# running is used and left running.
registry-test:
	@started=$$(date +%s)
	owned=
	$(REGISTRY) status >/dev/null 2>&1 || owned=1
	finish() {
		rc=$$?
		if [ -n "$$owned" ]; then
			echo "make registry-test: stopping the registry"
			$(REGISTRY) stop || { [ "$$rc" -ne 0 ] || rc=1; }
		fi
		secs=$$(( $$(date +%s) - started ))
		if [ "$$rc" -eq 0 ]; then verdict=passed; else verdict="FAILED (exit $$rc)"; fi
		printf 'make registry-test: %s in %dm%02ds\n' "$$verdict" $$((secs / 60)) $$((secs % 60))
		exit "$$rc"
	}
	trap finish EXIT
	url=$$($(REGISTRY) start | tail -n 1) && [ -n "$$url" ] || exit 1
	echo "make registry-test: the registry answers at $$url"
	IQENGINE_TEST_REGISTRY=$$url $(MAKE) --no-print-directory kafka-test KAFKA_TEST_PKGS='$(REGISTRY_TEST_PKGS)' KAFKA_TEST_FLAGS="$(REGISTRY_TEST_FLAGS)"

# plugins: vets and tests the Go SDK (sdk/go) and every example plugin
# (examples/plugins/NAME), each a module of its own that `go test ./...` at
# the root does not reach (vet and, when it is installed, staticcheck, both
# natively and as GOOS=wasip1), builds each plugin into
# examples/plugins/NAME/NAME.wasm and checks it against its conformance
# vectors with `iqengine plugin test`.
plugins:
	@staticcheck=$$(command -v staticcheck || echo "$$($(GO) env GOPATH)/bin/staticcheck")
	for mod in sdk/go examples/plugins/*/; do
		[ -f "$$mod/go.mod" ] || continue
		echo "make plugins: checking the module in $${mod%/}"
		(
			cd "$$mod" &&
			$(GO) vet ./... &&
			GOOS=wasip1 GOARCH=wasm $(GO) vet ./... &&
			{ [ ! -x "$$staticcheck" ] || { "$$staticcheck" ./... && GOOS=wasip1 GOARCH=wasm "$$staticcheck" ./...; }; } &&
			$(GO) test -count=1 ./...
		) || exit 1
	done
	scripts/plugins.sh || exit 1
	for dir in examples/plugins/*; do
		name=$$(basename "$$dir")
		# avro-value has no vectors: it needs a schema registry, and
		# go test ./plugins/ (TestAvroValueExample) runs it against one.
		[ -f "$$dir/$$name.wasm" ] && [ -f "$$dir/vectors.jsonl" ] || continue
		$(GO) run ./cmd/iqengine plugin test "$$dir/$$name.wasm" --vectors "$$dir/vectors.jsonl" || exit 1
	done

# sdk-test: installs the C, AssemblyScript and Rust toolchains when missing,
# builds every SDK's example plugins and runs the shared conformance vectors
# (sdk/conformance) against each.
sdk-test:
	scripts/sdk-test.sh

# bench: the whole comparison with Kafka Streams on a real broker
# (scripts/bench.sh; writes bench/results/latest.md). bench-quick: the same
# flow with little data and short runs, to keep the harness working.
bench:
	scripts/bench.sh full

bench-quick:
	scripts/bench.sh quick
