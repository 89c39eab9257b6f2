#!/usr/bin/env bash
# bench.sh: iqengine against Kafka Streams on the same data, the same broker,
# the same load generator and the same machine, one system at a time.
#
# Usage:
#   scripts/bench.sh full     1,000,000 records of ~200 bytes, 3 rounds of 20 s load runs (about 10 minutes)
#   scripts/bench.sh quick    20,000 records, one round of 3 s load runs (about 1.5 minutes; CI runs it)
#
# It starts a real Apache Kafka broker with go run ./internal/testkafka/cmd/kafka
# (or uses the one that is already running, and leaves it running), creates a 12-partition
# topic, produces the records, builds iqengine and the Kafka Streams peer
# (bench/streams, Maven), then runs, one system under load at a time and
# alternating the systems:
#   (a) key lookups answered locally: one iqengine node, one Streams instance
#   floor: raw Pebble point gets on (a)'s stopped node, same keys
#   (d) key lookups through a WASM value serializer (examples/plugins/json-value,
#       or the module BENCH_WASM_PLUGIN names)
#   (b) key lookups through one node of two, about half of them forwarded
#   (c) 100-key range scans on one node / instance
#   (e) restore from an empty state directory until every record is queryable
#   (f) resident memory of a node / instance holding every key
# and writes the results table (markdown) to bench/results/latest.md (quick:
# bench/results/quick.md) and prints it. The JSON of every measurement stays
# in the run directory.
#
# Environment (all optional):
#   BENCH_RECORDS       records (default: full 1000000, quick 20000)
#   BENCH_DURATION      measured seconds of each load run (default: full 20s, quick 3s)
#   BENCH_WARMUP        warm-up before each load run (default: full 5s, quick 1s)
#   BENCH_ROUNDS        load runs per scenario and system, alternating the systems; the table
#                       shows the median round (default: full 3, quick 1)
#   BENCH_CONCURRENCY   concurrent connections of the load generator (default 16)
#   BENCH_PARTITIONS    topic partitions (default 12)
#   BENCH_VALUE_SIZE    bytes of each JSON value (default 200)
#   BENCH_ZIPF          Zipf exponent s > 1 for the key choice (default: uniform)
#   BENCH_WASM_PLUGIN   a .wasm value serializer for scenario (d) (`value: {wasm: PATH}`);
#                       default: examples/plugins/json-value, built here
#   BENCH_STREAMS_JVM_OPTS  the Streams peer's JVM flags (default "-Xms256m -Xmx1g")
#   BENCH_IQ_CACHE_SIZE     iqengine's storage.cache_size in bytes (default: the node's default, 128 MiB)
#   BENCH_OUT           the markdown output (default: full bench/results/latest.md,
#                       quick bench/results/quick.md, which git ignores)
#   BENCH_WORK_DIR      the run directory (default: a new one under $TMPDIR; kept, its path printed)
#   BENCH_KEEP_DATA     set to 1 to keep the systems' data directories after a successful run
#                       (they take about 2.5 GB in full mode; a failed run always keeps them)
#   plus IQENGINE_KAFKA_DIR (the broker's state directory, internal/testkafka) and
#   scripts/kafka.sh's variables (KAFKA_VERSION, ...).
set -euo pipefail

PROG="bench.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
say() { echo "$PROG: $*" >&2; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

MODE="${1:-}"
case "$MODE" in
full)
	RECORDS="${BENCH_RECORDS:-1000000}"
	DURATION="${BENCH_DURATION:-20s}"
	WARMUP="${BENCH_WARMUP:-5s}"
	ROUNDS="${BENCH_ROUNDS:-3}"
	;;
quick)
	RECORDS="${BENCH_RECORDS:-20000}"
	DURATION="${BENCH_DURATION:-3s}"
	WARMUP="${BENCH_WARMUP:-1s}"
	ROUNDS="${BENCH_ROUNDS:-1}"
	;;
help | -h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac
CONCURRENCY="${BENCH_CONCURRENCY:-16}"
PARTITIONS="${BENCH_PARTITIONS:-12}"
VALUE_SIZE="${BENCH_VALUE_SIZE:-200}"
ZIPF="${BENCH_ZIPF:-0}"
JVM_OPTS="${BENCH_STREAMS_JVM_OPTS:--Xms256m -Xmx1g}"
IQ_CACHE_SIZE="${BENCH_IQ_CACHE_SIZE:-}"
# A quick run must not overwrite the full run's table that BENCHMARKS.md quotes.
if [[ "$MODE" == full ]]; then
	OUT="${BENCH_OUT:-bench/results/latest.md}"
else
	OUT="${BENCH_OUT:-bench/results/quick.md}"
fi
STORE="bench"
# kafka COMMAND...: the test broker's command (go doc ./internal/testkafka/cmd/kafka).
kafka() { go run ./internal/testkafka/cmd/kafka "$@"; }

if ! [[ "$RECORDS" =~ ^[0-9]+$ ]] || ((RECORDS < 200)); then
	die "BENCH_RECORDS must be a number of at least 200"
fi
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || ((ROUNDS < 1)); then
	die "BENCH_ROUNDS must be a positive number"
fi
if ! [[ "$CONCURRENCY" =~ ^[0-9]+$ ]] || ((CONCURRENCY < 1)); then
	die "BENCH_CONCURRENCY must be a positive number"
fi
if [[ -n "$IQ_CACHE_SIZE" ]] && ! [[ "$IQ_CACHE_SIZE" =~ ^[0-9]+$ ]]; then
	die "BENCH_IQ_CACHE_SIZE must be a number of bytes"
fi
if ! [[ "$PARTITIONS" =~ ^[0-9]+$ ]] || ((PARTITIONS < 2)); then
	die "BENCH_PARTITIONS must be at least 2 (scenario b needs two owners)"
fi
[[ "$DURATION" =~ ^[0-9]+(ms|s|m)$ ]] || die "BENCH_DURATION must be a duration such as 3s or 1m"
[[ "$WARMUP" =~ ^[0-9]+(ms|s|m)$ ]] || die "BENCH_WARMUP must be a duration such as 1s"
command -v go >/dev/null || die "go not found"
command -v java >/dev/null || die "java not found (Java 17+ runs the broker and the Kafka Streams peer)"
command -v mvn >/dev/null || die "mvn not found (Maven builds the Kafka Streams peer)"
command -v curl >/dev/null || die "curl not found"

STARTED=$SECONDS
WORK="${BENCH_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/iqengine-bench.XXXXXX")}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
RESULTS="$WORK/results"
LOGS="$WORK/logs"
rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$LOGS"
IQ="$WORK/iqengine"
PEER_JAR="$ROOT/bench/streams/target/streams-peer.jar"
RUN_ID="$(date +%s)-$$"
TOPIC="iqbench-$RUN_ID"

# ---------------------------------------------------------------- processes

declare -a CHILDREN=()
BROKER_OWNED=""
BROKERS=""

# stop_pid PID: SIGTERM, then SIGKILL after 30 s.
stop_pid() {
	local pid="$1" i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid did not stop within 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# stop_children PID...: stops them and forgets them.
stop_children() {
	local pid
	for pid in "$@"; do
		stop_pid "$pid"
		local -a keep=()
		local c
		for c in "${CHILDREN[@]}"; do
			[[ "$c" == "$pid" ]] || keep+=("$c")
		done
		CHILDREN=("${keep[@]}")
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#CHILDREN[@]} > 0)); then
		local pid
		for pid in "${CHILDREN[@]}"; do
			stop_pid "$pid"
		done
	fi
	if [[ -n "$BROKER_OWNED" ]]; then
		say "stopping the broker"
		kafka stop || true
	elif [[ -n "$BROKERS" && -f "$RESULTS/produce.json" ]]; then
		# A broker we did not start: remove our topic from it.
		kafka java org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" \
			--delete --topic "$TOPIC" >/dev/null 2>&1 || say "could not delete topic $TOPIC"
	fi
	if ((rc == 0)) && [[ "${BENCH_KEEP_DATA:-}" != 1 ]]; then
		rm -rf "$WORK/data"
	fi
	local secs=$((SECONDS - STARTED))
	if ((rc == 0)); then
		say "done in $((secs / 60))m$(printf %02d $((secs % 60)))s; run directory $WORK"
	else
		say "FAILED (exit $rc) after $((secs / 60))m$(printf %02d $((secs % 60)))s; logs in $LOGS"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: a TCP port on 127.0.0.1 that nothing listens on, outside the
# kernel's ephemeral range (where outgoing connections take their local
# ports, which would make the bind fail) and not given out before in this run.
EPH_LO=32768
EPH_HI=60999
if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
	read -r EPH_LO EPH_HI </proc/sys/net/ipv4/ip_local_port_range
fi
free_port() {
	local p i lo=10000 hi=$((EPH_LO - 1))
	if ((hi - lo < 1000)); then
		lo=$((EPH_HI + 1))
		hi=65535
	fi
	for ((i = 0; i < 500; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		grep -qx "$p" "$WORK/ports" 2>/dev/null && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p" >>"$WORK/ports"
			echo "$p"
			return 0
		fi
	done
	die "no free port on 127.0.0.1"
}

json_str() { # a JSON string literal of $1
	local s="${1//\\/\\\\}"
	s="${s//\"/\\\"}"
	s="${s//$'\n'/ }"
	printf '"%s"' "$s"
}

# ---------------------------------------------------------------- iqengine

# iq_config NAME PORT DATA_DIR APP_ID [VALUE]: writes $WORK/NAME.yaml and prints its path.
iq_config() {
	local name="$1" port="$2" dir="$3" app="$4" value="${5:-json}" f="$WORK/$1.yaml"
	cat >"$f" <<EOF
# Written by scripts/bench.sh.
application_id: $app
node_id: $name
listen: 127.0.0.1:$port
data_dir: $dir
kafka:
  brokers: [$BROKERS]
  session_timeout: 10s
${IQ_CACHE_SIZE:+storage:
  cache_size: $IQ_CACHE_SIZE
}stores:
  - name: $STORE
    topic: $TOPIC
    key: string
    value: $value
EOF
	echo "$f"
}

# start_iq CONFIG NAME: starts a node in the background; sets PID.
start_iq() {
	"$IQ" serve --config "$1" >"$LOGS/$2.log" 2>&1 &
	PID=$!
	CHILDREN+=("$PID")
}

# ---------------------------------------------------------------- Kafka Streams

# start_streams NAME PORT STATE_DIR APP_ID EXPECT_INSTANCES: sets PID.
start_streams() {
	local -a jvm
	# shellcheck disable=SC2206 # word splitting of the JVM flags is intended
	jvm=(${JVM_OPTS})
	java "${jvm[@]}" -jar "$PEER_JAR" --bootstrap "$BROKERS" --topic "$TOPIC" --store "$STORE" \
		--application-id "$4" --listen "127.0.0.1:$2" --state-dir "$3" --expect-instances "$5" \
		>"$LOGS/$1.log" 2>&1 &
	PID=$!
	CHILDREN+=("$PID")
}

# ---------------------------------------------------------------- measurements

# wait_ready BASE_URL NAME PID [bench wait flags...]: readiness, then every
# partition's last key; fails at once if PID exits.
wait_ready() {
	local base="$1" name="$2" pid="$3"
	shift 3
	if ! "$IQ" bench wait --ready-url "$base/readyz" --probe-file "$RESULTS/produce.json" --store "$STORE" \
		--timeout 15m --pid "$pid" "$@" >/dev/null; then
		tail -n 20 "$LOGS/$name.log" >&2 || true
		die "$name did not become ready (log: $LOGS/$name.log)"
	fi
}

# load LABEL [bench load flags...]: one load run into $RESULTS/LABEL.json.
load() {
	local label="$1"
	shift
	say "$label: $*"
	"$IQ" bench load --store "$STORE" --keys "$RECORDS" --zipf "$ZIPF" --concurrency "$CONCURRENCY" \
		--duration "$DURATION" --warmup "$WARMUP" --out "$RESULTS/$label.json" "$@" | sed 's/^/    /' >&2
}

rss() { # LABEL PID
	"$IQ" bench rss --pid "$2" --out "$RESULTS/$1.json" | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------- scenarios

# (a) and (c): one iqengine node and one Kafka Streams instance, each
# started alone, then BENCH_ROUNDS rounds of each load run,
# alternating the systems (the idle one waits); then their memory (f) and,
# on the stopped node's store, the Pebble floor.
scenario_ac() {
	local piq pks dir cfg r
	piq="$(free_port)"
	pks="$(free_port)"
	dir="$WORK/data/iq-1"
	cfg="$(iq_config iq-1 "$piq" "$dir" "iqbench-iq1-$RUN_ID")"
	say "iqengine: one node on :$piq, restoring $RECORDS records"
	start_iq "$cfg" iq-1
	local iq=$PID
	wait_ready "http://127.0.0.1:$piq" iq-1 "$iq"
	say "Kafka Streams: one instance on :$pks, materialising $RECORDS records"
	start_streams ks-1 "$pks" "$WORK/data/ks-1" "iqbench-ks1-$RUN_ID" 1
	local ks=$PID
	wait_ready "http://127.0.0.1:$pks" ks-1 "$ks"
	for ((r = 1; r <= ROUNDS; r++)); do
		load "a-iqengine-$r" --target "http://127.0.0.1:$piq"
		load "a-streams-$r" --target "http://127.0.0.1:$pks"
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		load "c-iqengine-$r" --target "http://127.0.0.1:$piq" --scan --scan-limit 100
		load "c-streams-$r" --target "http://127.0.0.1:$pks" --scan --scan-limit 100
	done
	rss f-iqengine "$iq"
	rss f-streams "$ks"
	stop_children "$iq" "$ks"
	say "floor: raw Pebble point gets on the stopped node's store"
	"$IQ" bench floor --data-dir "$dir" --topic "$TOPIC" --partitions "$PARTITIONS" --keys "$RECORDS" \
		--zipf "$ZIPF" --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" \
		${IQ_CACHE_SIZE:+--cache-size "$IQ_CACHE_SIZE"} --out "$RESULTS/floor.json" | sed 's/^/    /' >&2
}

# Scenario (d): key lookups through a WASM value serializer. It runs only
# when BENCH_WASM_PLUGIN names a .wasm file: one node whose store's value
# serde is {wasm: PATH}, the same load as (a). Otherwise it is skipped with
# a note (the report says so too).
scenario_d() {
	local plugin="${BENCH_WASM_PLUGIN:-}"
	if [[ -z "$plugin" ]]; then
		# The example JSON value serializer (Go SDK): the values pass through
		# the plugin boundary and the host's JSON check, as with the built-in.
		scripts/plugins.sh json-value >/dev/null || die "building examples/plugins/json-value failed"
		plugin=examples/plugins/json-value/json-value.wasm
		BENCH_WASM_PLUGIN=$plugin
	fi
	[[ -f "$plugin" && "$plugin" == *.wasm ]] || die "BENCH_WASM_PLUGIN=$plugin is not a .wasm file"
	plugin="$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")"
	local port cfg
	port="$(free_port)"
	cfg="$(iq_config iq-d "$port" "$WORK/data/iq-d" "iqbench-iqd-$RUN_ID" "{wasm: $(json_str "$plugin")}")"
	say "(d) iqengine: one node on :$port, value serializer $plugin"
	start_iq "$cfg" iq-d
	local pid=$PID
	wait_ready "http://127.0.0.1:$port" iq-d "$pid"
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		load "d-iqengine-$r" --target "http://127.0.0.1:$port"
	done
	stop_children "$pid"
}

# (b): two iqengine nodes and two Kafka Streams instances, requests to the
# first of each only; rounds alternate the systems as for (a).
scenario_b() {
	local p1 p2 k1 k2 r
	p1="$(free_port)"
	p2="$(free_port)"
	k1="$(free_port)"
	k2="$(free_port)"
	local c1 c2 app="iqbench-iq2-$RUN_ID"
	c1="$(iq_config iq-2a "$p1" "$WORK/data/iq-2a" "$app")"
	c2="$(iq_config iq-2b "$p2" "$WORK/data/iq-2b" "$app")"
	say "iqengine: two nodes on :$p1 and :$p2"
	start_iq "$c1" iq-2a
	local iq1=$PID
	start_iq "$c2" iq-2b
	local iq2=$PID
	wait_ready "http://127.0.0.1:$p2" iq-2b "$iq2"
	wait_ready "http://127.0.0.1:$p1" iq-2a "$iq1" --instances-url "http://127.0.0.1:$p1/v1/metadata/instances" --min-instances 2
	say "Kafka Streams: two instances on :$k1 and :$k2"
	start_streams ks-2a "$k1" "$WORK/data/ks-2a" "iqbench-ks2-$RUN_ID" 2
	local ks1=$PID
	start_streams ks-2b "$k2" "$WORK/data/ks-2b" "iqbench-ks2-$RUN_ID" 2
	local ks2=$PID
	wait_ready "http://127.0.0.1:$k2" ks-2b "$ks2"
	wait_ready "http://127.0.0.1:$k1" ks-2a "$ks1" --instances-url "http://127.0.0.1:$k1/v1/metadata/instances" --min-instances 2
	for ((r = 1; r <= ROUNDS; r++)); do
		load "b-iqengine-$r" --target "http://127.0.0.1:$p1" --served-by-header Iqengine-Served-By --target-name iq-2a
		load "b-streams-$r" --target "http://127.0.0.1:$k1" --served-by-header X-Served-By --target-name "127.0.0.1:$k1"
	done
	stop_children "$iq1" "$iq2" "$ks1" "$ks2"
}

# (e): from an empty state directory to every record queryable; the memory
# then and 5 s later (f).
scenario_e_iqengine() {
	local port cfg
	port="$(free_port)"
	cfg="$(iq_config iq-e "$port" "$WORK/data/iq-e" "iqbench-iqe-$RUN_ID")"
	say "(e) iqengine: restore $RECORDS records into an empty node"
	"$IQ" bench restore --config "$cfg" --data-dir "$WORK/data/iq-e" --probe-file "$RESULTS/produce.json" \
		--store "$STORE" --settle 5s --log "$LOGS/iq-e.log" --out "$RESULTS/e-iqengine.json" | sed 's/^/    /' >&2
}

# Kafka Streams restores from the topic up to the committed offsets of its
# application: the instance of (a) committed them at the end of the topic
# when it stopped, so an empty state directory under the same application id
# is the restore path (the source topic is the store's changelog).
scenario_e_streams() {
	local port
	port="$(free_port)"
	local -a jvm
	# shellcheck disable=SC2206
	jvm=(${JVM_OPTS})
	say "(e) Kafka Streams: restore $RECORDS records into an empty state directory"
	"$IQ" bench restore --ready-url "http://127.0.0.1:$port/readyz" --probe-file "$RESULTS/produce.json" \
		--store "$STORE" --settle 5s --wipe "$WORK/data/ks-e" --log "$LOGS/ks-e.log" \
		--out "$RESULTS/e-streams.json" -- \
		java "${jvm[@]}" -jar "$PEER_JAR" --bootstrap "$BROKERS" --topic "$TOPIC" --store "$STORE" \
		--application-id "iqbench-ks1-$RUN_ID" --listen "127.0.0.1:$port" --state-dir "$WORK/data/ks-e" \
		| sed 's/^/    /' >&2
}

# ---------------------------------------------------------------- main

say "mode $MODE: $RECORDS records over $PARTITIONS partitions, $CONCURRENCY connections, $ROUNDS round(s) of $DURATION per run after $WARMUP warm-up; run directory $WORK"

say "building iqengine and the Kafka Streams peer"
go build -o "$IQ" ./cmd/iqengine
(cd bench/streams && mvn -q -B package >"$LOGS/mvn.log" 2>&1) || {
	tail -n 30 "$LOGS/mvn.log" >&2
	die "building the Kafka Streams peer failed (log: $LOGS/mvn.log)"
}
[[ -f "$PEER_JAR" ]] || die "mvn did not build $PEER_JAR"

kafka status >/dev/null 2>&1 || BROKER_OWNED=1
BROKERS="$(kafka start | tail -n 1)"
[[ -n "$BROKERS" ]] || die "no broker"
if [[ -n "$BROKER_OWNED" ]]; then
	say "started a broker at $BROKERS"
else
	say "using the broker already running at $BROKERS (it is left running)"
fi

say "producing $RECORDS records to $TOPIC"
"$IQ" bench produce --brokers "$BROKERS" --topic "$TOPIC" --partitions "$PARTITIONS" --create \
	--records "$RECORDS" --value-size "$VALUE_SIZE" --out "$RESULTS/produce.json" | sed 's/^/    /' >&2

scenario_ac
scenario_d
scenario_b
scenario_e_iqengine
scenario_e_streams

machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
dist="uniform"
[[ "$ZIPF" != "0" ]] && dist="zipf s=$ZIPF"
# shellcheck disable=SC2016 # the pattern matches a literal ${...} in kafka.sh
kafka_version="${KAFKA_VERSION:-$(sed -n 's/^KAFKA_VERSION="\${KAFKA_VERSION:-\(.*\)}"$/\1/p' scripts/kafka.sh)}"
cat >"$RESULTS/meta.json" <<EOF
{
  "kind": "meta",
  "mode": "$MODE",
  "command": "scripts/bench.sh $MODE",
  "date": $(json_str "$(date -u '+%Y-%m-%d %H:%M UTC')"),
  "machine": $(json_str "$machine"),
  "records": $RECORDS,
  "partitions": $PARTITIONS,
  "value_size": $VALUE_SIZE,
  "concurrency": $CONCURRENCY,
  "duration_seconds": $(awk -v d="$DURATION" 'BEGIN { if (d ~ /ms$/) print d / 1000; else if (d ~ /m$/) print d * 60; else print d + 0 }'),
  "warmup_seconds": $(awk -v d="$WARMUP" 'BEGIN { if (d ~ /ms$/) print d / 1000; else if (d ~ /m$/) print d * 60; else print d + 0 }'),
  "dist": $(json_str "$dist"),
  "rounds": $ROUNDS,
  "kafka": $(json_str "$kafka_version"),
  "go": $(json_str "$(go version | awk '{print $3}')"),
  "java": $(json_str "$(java -version 2>&1 | head -n 1)"),
  "streams_jvm": $(json_str "$JVM_OPTS"),
  "iqengine_storage": $(json_str "${IQ_CACHE_SIZE:+storage.cache_size $IQ_CACHE_SIZE}"),
  "wasm": $(json_str "${BENCH_WASM_PLUGIN:-}"),
  "wall_seconds": $((SECONDS - STARTED))
}
EOF
mkdir -p "$(dirname "$OUT")"
"$IQ" bench report --dir "$RESULTS" --out "$OUT"
say "results written to $OUT"
