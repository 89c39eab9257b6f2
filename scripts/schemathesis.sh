#!/usr/bin/env bash
# schemathesis.sh: fuzz a running node's HTTP API with Schemathesis, from
# the OpenAPI document it serves (GET /v1/openapi.json, router/openapi.json).
#
# Usage:
#   scripts/schemathesis.sh
#
# It installs Schemathesis from PyPI into a virtualenv in a temporary
# directory, builds iqengine, starts the embedded broker (iqengine broker,
# in memory) and writes records to it (iqengine bench produce), starts one
# node over four stores (string keys and JSON values; the same topic as
# bytes; string keys read as int64, which do not decode, so that scans list
# keys as key_base64; the first with the example transform, so that its t.
# parameters are fuzzed too), waits for /readyz, and runs Schemathesis against it
# with the checks not_a_server_error, status_code_conformance,
# content_type_conformance, response_headers_conformance and
# response_schema_conformance: every answer must be documented, of a
# documented content type, with its documented headers and body. A 503 of a
# store read is no server error: it is the documented answer of a query that
# waits (?min_offset=, ?position=, ?max_lag=) for longer than its timeout.
# Then it stops the node and the broker and removes the directory. Bounded:
# about a minute on 2 cores once the packages are cached.
#
# The node requires a bearer token (auth.tokens, the token in
# IQENGINE_SCHEMATHESIS_TOKEN), which Schemathesis sends with every request.
#
# Environment (all optional):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 40)
#   SCHEMATHESIS_SEED          the generation's seed (default 1, so that a run repeats; "random": a new one)
#   SCHEMATHESIS_KEEP          set to 1 to keep the temporary directory (the node's log, the report)
#   SCHEMATHESIS_VENV          a virtualenv directory to install Schemathesis into, kept and reused by
#                              later runs (default: one in the temporary directory)
set -euo pipefail

PROG="schemathesis.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The newest Schemathesis that installs on Python 3.11 when this was written.
SCHEMATHESIS_VERSION="4.32.5"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
SEED="${SCHEMATHESIS_SEED:-1}"
RECORDS=300

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
say() { echo "$PROG: $*" >&2; }

case "${1:-}" in
"") ;;
help | -h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "no arguments are taken (see $PROG --help)" ;;
esac
[[ "$MAX_EXAMPLES" =~ ^[0-9]+$ ]] && ((MAX_EXAMPLES >= 1)) || die "SCHEMATHESIS_MAX_EXAMPLES must be a positive number"
[[ "$SEED" == random || "$SEED" =~ ^[0-9]+$ ]] || die "SCHEMATHESIS_SEED must be a number or random"
command -v go >/dev/null || die "go not found"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

WORK="$(mktemp -d -t iqengine-schemathesis-XXXXXX)"
broker_pid="" node_pid=""
cleanup() {
	local rc=$?
	# Stop the node first (it leaves its group), then the broker.
	for pid in $node_pid $broker_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ "${SCHEMATHESIS_KEEP:-}" == 1 || $rc -ne 0 ]]; then
		say "kept $WORK (node.log, broker.log, report/)"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a TCP port free on 127.0.0.1 now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

VENV="${SCHEMATHESIS_VENV:-$WORK/venv}"
if [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != *" $SCHEMATHESIS_VERSION" ]]; then
	say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

say "building iqengine and the example transform (examples/plugins/project)"
go build -o "$WORK/iqengine" ./cmd/iqengine
IQ="$WORK/iqengine"
scripts/plugins.sh project >/dev/null
mkdir -p "$WORK/plugins"
cp examples/plugins/project/project.wasm "$WORK/plugins/"

broker_port="$(free_port)"
BROKER="127.0.0.1:$broker_port"
"$IQ" broker --listen "$BROKER" --partitions 4 >"$WORK/broker.out" 2>"$WORK/broker.log" &
broker_pid=$!
for _ in $(seq 100); do
	[[ -s "$WORK/broker.out" ]] && break
	kill -0 "$broker_pid" 2>/dev/null || die "the broker did not start: $(cat "$WORK/broker.log")"
	sleep 0.1
done
[[ -s "$WORK/broker.out" ]] || die "the broker did not start within 10 s"

say "producing $RECORDS records to topics orders and numbers"
"$IQ" bench produce --brokers "$BROKER" --topic orders --partitions 4 --create --records "$RECORDS" --value-size 60 >/dev/null
"$IQ" bench produce --brokers "$BROKER" --topic numbers --partitions 2 --create --records 50 --value-size 40 --key-format '%d' >/dev/null

port="$(free_port)"
BASE="http://127.0.0.1:$port"
export IQENGINE_SCHEMATHESIS_TOKEN
IQENGINE_SCHEMATHESIS_TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
cat >"$WORK/node.yaml" <<EOF
application_id: schemathesis
node_id: st-1
listen: 127.0.0.1:$port
data_dir: $WORK/node
kafka:
  brokers: ["$BROKER"]
  session_timeout: 10s
query:
  # A query that waits for a position (?min_offset=) gives up soon: a
  # fuzzed offset far ahead costs a quarter of a second, not 30.
  timeout: 100ms
  max_timeout: 250ms
  max_limit: 500
replication:
  standby_replicas: 0
storage:
  min_free_space: 0
plugins:
  dir: $WORK/plugins
  reload_interval: 0s
log:
  level: warn
cluster:
  secret: schemathesis-cluster-secret-of-at-least-32-characters
auth:
  tokens:
    - name: schemathesis
      env: IQENGINE_SCHEMATHESIS_TOKEN
      stores: ["*"]
      metadata: true
stores:
  - {name: orders, topic: orders, key: string, value: json}
  - {name: raw, topic: orders, key: bytes, value: bytes}
  - {name: numbers, topic: numbers, key: int64, value: json}
  - name: projected
    topic: orders
    transform: {wasm: project, params: {fields: "id,n"}}
EOF

say "starting a node at $BASE"
"$IQ" serve --config "$WORK/node.yaml" >"$WORK/node.log" 2>&1 &
node_pid=$!
ready=""
for _ in $(seq 300); do
	if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	kill -0 "$node_pid" 2>/dev/null || die "the node exited: $(tail -n 20 "$WORK/node.log")"
	sleep 0.2
done
[[ -n "$ready" ]] || die "the node was not ready within 60 s: $(tail -n 20 "$WORK/node.log")"

# Real store names and keys, beside the generated ones, so that lookups
# and scans reach records and not only 404s.
cat >"$WORK/schemathesis.toml" <<EOF
[generation]
database = "none"

[dictionaries.stores]
values = ["orders", "raw", "numbers", "projected"]

[dictionaries.keys]
values = ["k-0000000", "k-0000001", "k-0000150", "k-0000299", "k-0001", "azAwMDAwMDA", "AA", "12", "-7"]

[parameters."path.store"]
dictionary = "stores"
probability = 0.7

[parameters."path.key"]
dictionary = "keys"
probability = 0.5

[parameters."query.from"]
dictionary = "keys"
probability = 0.5

[parameters."query.to"]
dictionary = "keys"
probability = 0.5

[parameters."query.prefix"]
dictionary = "keys"
probability = 0.5

[[operations]]
include-tag = "stores"
checks.not_a_server_error.expected-statuses = ["1XX", "2XX", "3XX", "4XX", "503"]
EOF

seed_flag=()
[[ "$SEED" == random ]] || seed_flag=(--seed "$SEED")
say "running schemathesis: $MAX_EXAMPLES examples per operation and phase"
(
	cd "$WORK"
	"$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$BASE/v1/openapi.json" \
		--checks not_a_server_error,ignored_auth,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
		--header "Authorization: Bearer $IQENGINE_SCHEMATHESIS_TOKEN" \
		--max-examples "$MAX_EXAMPLES" "${seed_flag[@]}" \
		--workers 2 --request-timeout 5 --no-color \
		--report junit,har --report-dir "$WORK/report" --report-har-path "$WORK/report/requests.har"
)
# What the run reached: the statuses each operation answered.
python3 - "$WORK/report/requests.har" <<'PY'
import collections, json, re, sys
seen = collections.defaultdict(collections.Counter)
for e in json.load(open(sys.argv[1]))["log"]["entries"]:
    path = re.sub(r"^https?://[^/]+", "", e["request"]["url"]).split("?")[0]
    route = re.sub(r"^/v1/(stores|metadata/stores)/[^/]+/keys/.+$", r"/v1/\1/{store}/keys/{key}", path)
    route = re.sub(r"^/v1/stores/[^/]+/(keys|count)$", r"/v1/stores/{store}/\1", route)
    method = e["request"]["method"]
    seen[method + " " + route if method == "GET" else "other methods, any path"][e["response"]["status"]] += 1
for op in sorted(seen):
    print("  %-48s %s" % (op, " ".join("%d×%d" % (n, s) for s, n in sorted(seen[op].items()))))
PY
say "passed"
