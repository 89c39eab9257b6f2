#!/usr/bin/env bash
# kafka.sh: run a real Apache Kafka on 127.0.0.1 for tests: one node (KRaft,
# combined broker+controller) or three such nodes forming one controller quorum.
#
# Usage:
#   scripts/kafka.sh start              fetch jars if needed, start the broker, print 127.0.0.1:PORT
#   scripts/kafka.sh start --brokers 3  the same with three nodes (ids 1-3, each broker+controller,
#                                       all three controller voters); waits until all three are
#                                       registered and prints 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.
#                                       Topics default to replication factor 3, min.insync.replicas 2.
#                                       --brokers 1 is the default single node.
#   scripts/kafka.sh stop               stop the broker(s) and remove the state directory
#   scripts/kafka.sh status             print the bootstrap list; exit 0 iff every broker runs
#   scripts/kafka.sh kill-node ID       SIGKILL broker ID (1-3) of a running cluster, as a crash
#   scripts/kafka.sh start-node ID      start broker ID again on its data; waits until it takes connections
#   scripts/kafka.sh run-class CLASS [ARGS...]
#                                       run any main class from the cached jars, e.g.
#                                       run-class org.apache.kafka.tools.TopicCommand \
#                                         --bootstrap-server "$(scripts/kafka.sh status)" --list
#   scripts/kafka.sh run-java FILE.java [ARGS...]
#                                       run a single-file Java program (source launcher, Java 11+)
#                                       with the cached jars on the classpath, e.g.
#                                       run-java scripts/java/JavaProducer.java \
#                                         "$(scripts/kafka.sh status)" TOPIC string 500
#   scripts/kafka.sh fetch              only download the jars into the cache
#   scripts/kafka.sh help
#
# Environment (all optional):
#   IQENGINE_KAFKA_BROKERS        brokers to start: 1 or 3 (default 1); --brokers overrides it
#   KAFKA_VERSION                 Kafka version to fetch from Maven Central (default 4.4.0)
#   IQENGINE_KAFKA_CACHE          jar cache root (default $HOME/.cache/iqengine/kafka)
#   IQENGINE_KAFKA_DIR            state dir: config, data, logs, pid (default ${TMPDIR:-/tmp}/iqengine-kafka);
#                                 with three brokers each node has its own in STATE_DIR/node1..node3
#   IQENGINE_KAFKA_START_TIMEOUT  seconds to wait for the broker(s) (default 90)
#   IQENGINE_KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
#   IQENGINE_KAFKA_HEAP           heap flags of each broker (default "-Xms256m -Xmx1g" for one
#                                 broker, "-Xms128m -Xmx512m" for each of three)
#   IQENGINE_KAFKA_JVM_OPTS       extra broker JVM flags (every broker)
#   IQENGINE_KAFKA_TOOL_OPTS      JVM flags for run-class, run-java and the storage tool
#   IQENGINE_KAFKA_EXTRA_PROPS    extra server.properties lines (newline separated), appended last
#                                 (to every broker's)
#   IQENGINE_KAFKA_LOG4J_VERSION  log4j2 version used for the slf4j binding (default 2.25.5)
#   IQENGINE_KAFKA_MVN_ARGS       extra arguments for mvn (e.g. -Dmaven.repo.local=...)
#   JAVA_HOME                     used if set, otherwise java from PATH
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
SCALA_BINARY="2.13"
LOG4J_VERSION="${IQENGINE_KAFKA_LOG4J_VERSION:-2.25.5}"
DEP_PLUGIN_VERSION="3.8.1"

CACHE_ROOT="${IQENGINE_KAFKA_CACHE:-${HOME:?HOME is not set; set IQENGINE_KAFKA_CACHE}/.cache/iqengine/kafka}"
STATE_DIR="${IQENGINE_KAFKA_DIR:-${TMPDIR:-/tmp}/iqengine-kafka}"
START_TIMEOUT="${IQENGINE_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${IQENGINE_KAFKA_STOP_TIMEOUT:-30}"
TOOL_OPTS="${IQENGINE_KAFKA_TOOL_OPTS:--Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

PROG="kafka.sh"

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}

info() {
	echo "$PROG: $*" >&2
}

# Relative paths from the environment are taken from the caller's cwd.
[[ "$CACHE_ROOT" == /* ]] || CACHE_ROOT="$PWD/$CACHE_ROOT"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "IQENGINE_KAFKA_START_TIMEOUT must be a number of seconds"
[[ "$STOP_TIMEOUT" =~ ^[0-9]+$ ]] || die "IQENGINE_KAFKA_STOP_TIMEOUT must be a number of seconds"
VERSION_DIR="$CACHE_ROOT/$KAFKA_VERSION"
LIB_DIR="$VERSION_DIR/lib"
MARKER="$VERSION_DIR/.fetched-$KAFKA_VERSION"
STATE_MARKER="$STATE_DIR/.iqengine-kafka-state"
BOOTSTRAP_FILE="$STATE_DIR/bootstrap"
# Each node has a home holding its server.properties, data/, logs/server.log,
# logs/format.log, kafka.out and kafka.pid: the state dir itself for a single
# broker, STATE_DIR/node1..node3 for three (see node_home).

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	echo
	echo "In effect: KAFKA_VERSION=$KAFKA_VERSION (log4j $LOG4J_VERSION)"
	echo "           cache=$VERSION_DIR"
	echo "           state=$STATE_DIR"
}

java_bin() {
	if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
		echo "$JAVA_HOME/bin/java"
	elif command -v java >/dev/null 2>&1; then
		command -v java
	else
		die "java not found (install a JDK 17+ or set JAVA_HOME)"
	fi
}

# take_lock FD FILE: hold an exclusive lock on FILE via descriptor 8 or 9
# until this script exits (no-op without flock).
take_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	case "$1" in
	8) exec 8>"$2" ;;
	9) exec 9>"$2" ;;
	*) die "internal: bad lock descriptor $1" ;;
	esac
	flock "$1"
}

# ---------------------------------------------------------------- jar cache

pom_text() {
	cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh: throw-away pom used only to fetch the broker's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>iqengine.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker (kafka.Kafka) and storage tool (kafka.tools.StorageTool) -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_BINARY</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- command line tools (TopicCommand, ConsoleProducer, ...); Connect is not needed -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <!-- logging: slf4j 1.x binding to log4j2, all log4j2 artifacts at one version -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$DEP_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

jars_ready() {
	[[ -f "$MARKER" && -d "$LIB_DIR" ]] && [[ "$(cat "$MARKER")" == "$(pom_text | cksum)" ]]
}

ensure_jars() {
	jars_ready && return 0
	mkdir -p "$VERSION_DIR" || die "cannot create cache dir $VERSION_DIR"
	take_lock 8 "$VERSION_DIR/.lock"
	jars_ready && return 0 # another process fetched while we waited
	command -v mvn >/dev/null 2>&1 || die "mvn not found; it is needed once to fetch Kafka $KAFKA_VERSION into $VERSION_DIR"
	info "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB_DIR"
	pom_text >"$VERSION_DIR/pom.xml"
	local tmp="$VERSION_DIR/lib.tmp.$$" mvn_log="$VERSION_DIR/mvn.log"
	rm -rf "$tmp"
	local -a extra=()
	# shellcheck disable=SC2206 # word splitting of user-supplied flags is intended
	[[ -n "${IQENGINE_KAFKA_MVN_ARGS:-}" ]] && extra=(${IQENGINE_KAFKA_MVN_ARGS})
	if ! mvn -B -q -Dstyle.color=never "${extra[@]}" -f "$VERSION_DIR/pom.xml" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
		>"$mvn_log" 2>&1; then
		# Show Maven's own error (without colour codes), not the whole log.
		sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | grep -m 1 '^\[ERROR\] [^ ]' >&2 ||
			tail -n 20 "$mvn_log" >&2 || true
		rm -rf "$tmp"
		die "mvn failed to fetch Kafka $KAFKA_VERSION (full log: $mvn_log)"
	fi
	compgen -G "$tmp/kafka_$SCALA_BINARY-$KAFKA_VERSION.jar" >/dev/null ||
		die "mvn succeeded but kafka_$SCALA_BINARY-$KAFKA_VERSION.jar is missing in $tmp"
	rm -rf "$LIB_DIR"
	mv "$tmp" "$LIB_DIR"
	pom_text | cksum >"$MARKER"
}

tools_log4j_config() {
	local f="$VERSION_DIR/tools-log4j2.properties"
	cat >"$f.$$" <<'EOF'
# Generated by scripts/kafka.sh: command line tools log warnings to stderr.
status = warn
shutdownHook = disable
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
	mv -f "$f.$$" "$f"
	echo "$f"
}

# tool_cmd CLASS ARGS...: sets TOOL_CMD to the java command line for a tool.
tool_cmd() {
	local -a opts
	# shellcheck disable=SC2206 # word splitting of user-supplied flags is intended
	opts=(${TOOL_OPTS})
	TOOL_CMD=("$(java_bin)" "${opts[@]}" -Djava.awt.headless=true
		"-Dlog4j2.configurationFile=$(tools_log4j_config)"
		-cp "$LIB_DIR/*" "$@")
}

# ---------------------------------------------------------------- process state

node_home() { # COUNT ID: the home of node ID of a COUNT-broker cluster
	if (($1 == 1)); then
		echo "$STATE_DIR"
	else
		echo "$STATE_DIR/node$2"
	fi
}

node_label() { # HOME: how messages name the node
	if [[ "$1" == "$STATE_DIR" ]]; then
		echo "the broker"
	else
		echo "node ${1##*/node}"
	fi
}

# state_homes: sets HOMES to the homes of the nodes recorded in the state dir
# (those with a pid file), in node order.
state_homes() {
	HOMES=()
	[[ -f "$STATE_DIR/kafka.pid" ]] && HOMES+=("$STATE_DIR")
	local d
	for d in "$STATE_DIR"/node[1-9]; do
		[[ -f "$d/kafka.pid" ]] && HOMES+=("$d")
	done
	return 0
}

# Prints the pid if the broker recorded in HOME (default: the state dir) is alive.
running_pid() { # [HOME]
	local pid_file="${1:-$STATE_DIR}/kafka.pid"
	[[ -f "$pid_file" ]] || return 1
	local pid
	pid="$(cat "$pid_file" 2>/dev/null)" || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r "/proc/$pid/cmdline" ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
	fi
	echo "$pid"
}

# all_running: HOMES is not empty and every node in it is alive.
all_running() {
	((${#HOMES[@]} > 0)) || return 1
	local h
	for h in "${HOMES[@]}"; do
		running_pid "$h" >/dev/null || return 1
	done
}

# kill_nodes: SIGKILL every live node in HOMES (no waiting).
kill_nodes() {
	local h pid
	for h in "${HOMES[@]}"; do
		if pid="$(running_pid "$h")"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
}

tcp_open() { # host port
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Refuse to wipe a directory that this script did not create.
check_state_dir_is_ours() {
	[[ -n "$STATE_DIR" && "$STATE_DIR" != "/" && "$STATE_DIR" != "${HOME:-}" ]] ||
		die "refusing to use state dir '$STATE_DIR'"
	if [[ -d "$STATE_DIR" && ! -f "$STATE_MARKER" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
		die "state dir $STATE_DIR exists, is not empty and was not created by $PROG (set IQENGINE_KAFKA_DIR)"
	fi
}

free_ports() { # N: prints N distinct free ports on 127.0.0.1
	local n="$1"
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
		return
	fi
	local -a found=()
	local p tries=0
	while ((${#found[@]} < n && tries < 200 * n)); do
		tries=$((tries + 1))
		p=$((20000 + RANDOM % 30000))
		[[ " ${found[*]-} " == *" $p "* ]] && continue
		tcp_open 127.0.0.1 "$p" || found+=("$p")
	done
	((${#found[@]} == n)) || die "could not find free ports on 127.0.0.1"
	echo "${found[@]}"
}

cluster_id() { # 16 random bytes, base64url without padding, not starting with '-'
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
	else
		tool_cmd kafka.tools.StorageTool random-uuid
		"${TOOL_CMD[@]}"
	fi
}

# write_config HOME COUNT ID BROKER_PORT CONTROLLER_PORT QUORUM: the
# server.properties of node ID of COUNT; QUORUM is the controllers'
# host:port list (controller.quorum.bootstrap.servers).
write_config() {
	local home="$1" count="$2" id="$3" bp="$4" cp="$5" quorum="$6"
	local what="single node" rf=1 isr=1
	if ((count > 1)); then
		what="node $id of $count"
		rf=3
		isr=2
	fi
	cat >"$home/server.properties" <<EOF
# Generated by scripts/kafka.sh for tests: $what, KRaft, broker+controller.
process.roles=broker,controller
node.id=$id
controller.quorum.bootstrap.servers=$quorum
listeners=PLAINTEXT://127.0.0.1:$bp,CONTROLLER://127.0.0.1:$cp
advertised.listeners=PLAINTEXT://127.0.0.1:$bp,CONTROLLER://127.0.0.1:$cp
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$home/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.check.interval.ms=300000
EOF
	if [[ -n "${IQENGINE_KAFKA_EXTRA_PROPS:-}" ]]; then
		printf '%s\n' "# IQENGINE_KAFKA_EXTRA_PROPS" "$IQENGINE_KAFKA_EXTRA_PROPS" >>"$home/server.properties"
	fi
}

# The brokers' log4j2 configuration, shared by all nodes: each logs to its
# own kafka.logs.dir.
write_log4j_config() {
	cat >"$STATE_DIR/log4j2.properties" <<'EOF'
# Generated by scripts/kafka.sh: everything goes to logs/server.log.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

heap_opts() { # COUNT
	if [[ -n "${IQENGINE_KAFKA_HEAP:-}" ]]; then
		echo "$IQENGINE_KAFKA_HEAP"
	elif (($1 == 1)); then
		echo "-Xms256m -Xmx1g"
	else
		echo "-Xms128m -Xmx512m"
	fi
}

# launch_node HOME HEAP COUNT: start the broker of HOME in the background
# and record its pid.
launch_node() {
	local home="$1" count="$3"
	local -a jvm heap extra
	# shellcheck disable=SC2206 # word splitting of user-supplied flags is intended
	heap=(${2})
	# shellcheck disable=SC2206
	extra=(${IQENGINE_KAFKA_JVM_OPTS:-})
	jvm=("$(java_bin)" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		"-Dkafka.logs.dir=$home/logs" "-Dlog4j2.configurationFile=$STATE_DIR/log4j2.properties"
		"${extra[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$home/server.properties")

	local launcher=()
	command -v setsid >/dev/null 2>&1 && launcher=(setsid)
	# The broker must not inherit our lock descriptors.
	nohup "${launcher[@]}" "${jvm[@]}" >"$home/kafka.out" 2>&1 </dev/null 8>&- 9>&- &
	echo $! >"$home/kafka.pid"
	# With three nodes, bash's "Killed" notices would interleave with the
	# logs fail_start shows; liveness is checked by pid, never by wait.
	((count == 1)) || disown $!
}

# fail_start MESSAGE [HOME...]: kill every node in HOMES, show the last log
# lines of the given nodes (default all of HOMES), and exit.
fail_start() {
	local msg="$1"
	shift
	local -a show=("$@")
	((${#show[@]} > 0)) || show=("${HOMES[@]}")
	local server_lines=40 console_lines=20 h
	if ((${#show[@]} > 1)); then
		server_lines=20
		console_lines=10
	fi
	kill_nodes
	for h in "${show[@]}"; do
		echo "---- last lines of $h/logs/server.log" >&2
		tail -n "$server_lines" "$h/logs/server.log" >&2 2>/dev/null || true
		echo "---- last lines of $h/kafka.out" >&2
		tail -n "$console_lines" "$h/kafka.out" >&2 2>/dev/null || true
	done
	die "$msg"
}

# format_storage COUNT CLUSTER_ID: format every node's KRaft storage (in
# parallel for three nodes, whose controllers form the initial quorum).
format_storage() {
	local count="$1" cid="$2"
	if ((count == 1)); then
		tool_cmd kafka.tools.StorageTool format --config "$STATE_DIR/server.properties" \
			--cluster-id "$cid" --standalone
		if ! "${TOOL_CMD[@]}" >"$STATE_DIR/logs/format.log" 2>&1; then
			cat "$STATE_DIR/logs/format.log" >&2
			die "formatting the KRaft storage failed"
		fi
		return 0
	fi
	# id@host:port:directory-id of every controller; each node's metadata
	# directory gets its id from this list.
	local i voters="" dir_id
	for ((i = 1; i <= count; i++)); do
		dir_id="$(cluster_id)" || die "could not generate a directory id"
		voters+="${voters:+,}$i@127.0.0.1:${CONTROLLER_PORTS[i - 1]}:$dir_id"
	done
	local -a pids=()
	for ((i = 1; i <= count; i++)); do
		tool_cmd kafka.tools.StorageTool format --config "${HOMES[i - 1]}/server.properties" \
			--cluster-id "$cid" --initial-controllers "$voters"
		"${TOOL_CMD[@]}" >"${HOMES[i - 1]}/logs/format.log" 2>&1 8>&- 9>&- &
		pids+=($!)
	done
	local failed=""
	for ((i = 1; i <= count; i++)); do
		if ! wait "${pids[i - 1]}"; then
			cat "${HOMES[i - 1]}/logs/format.log" >&2
			failed+="${failed:+, }$i"
		fi
	done
	[[ -z "$failed" ]] || die "formatting the KRaft storage of node(s) $failed failed"
}

# probe_ok COUNT LOG: the final check's output shows every broker. With one
# broker the check is a topic listing and its success is enough; with three
# it lists the brokers the metadata knows, which are registered and unfenced.
probe_ok() {
	local count="$1" log="$2"
	((count == 1)) && return 0
	local ids
	ids="$(sed -n 's/^[^ ]* (id: \([0-9]*\) .*/\1/p' "$log" | sort -u | wc -l)"
	((ids == count))
}

# ---------------------------------------------------------------- commands

# start_count ARGS...: sets BROKERS (1 or 3) from --brokers or
# IQENGINE_KAFKA_BROKERS, and BROKERS_ASKED if either was given.
start_count() {
	BROKERS="${IQENGINE_KAFKA_BROKERS:-}"
	local from="IQENGINE_KAFKA_BROKERS"
	BROKERS_ASKED=""
	[[ -n "$BROKERS" ]] && BROKERS_ASKED=1
	while (($# > 0)); do
		case "$1" in
		--brokers)
			(($# >= 2)) || die "start: --brokers needs a value (1 or 3)"
			BROKERS="$2"
			shift 2
			;;
		--brokers=*)
			BROKERS="${1#--brokers=}"
			shift
			;;
		*) die "start: unknown argument '$1' (try: $PROG help)" ;;
		esac
		from="--brokers"
		BROKERS_ASKED=1
	done
	BROKERS="${BROKERS:-1}"
	case "$BROKERS" in
	1 | 3) ;;
	*) die "$from must be 1 or 3, not '$BROKERS'" ;;
	esac
}

cmd_start() {
	start_count "$@"
	local count="$BROKERS"

	mkdir -p "$(dirname "$STATE_DIR")"
	check_state_dir_is_ours
	mkdir -p "$STATE_DIR"
	touch "$STATE_MARKER"
	take_lock 9 "$STATE_DIR/.lock"

	state_homes
	if all_running && [[ -s "$BOOTSTRAP_FILE" ]]; then
		if ((${#HOMES[@]} != count)); then
			[[ -z "$BROKERS_ASKED" ]] ||
				die "${#HOMES[@]} broker(s) already running at $(cat "$BOOTSTRAP_FILE"), not $count; run '$PROG stop' first"
			info "using the ${#HOMES[@]} brokers already running"
		fi
		cat "$BOOTSTRAP_FILE"
		return 0
	fi
	kill_nodes # started but never became ready, or some died: start over

	ensure_jars

	# Fresh state: keep only the marker and the lock we hold.
	find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name "$(basename "$STATE_MARKER")" \
		-exec rm -rf {} +

	local ports i quorum="" bootstrap=""
	local -a port_list
	ports="$(free_ports $((2 * count)))" || die "could not pick free ports"
	read -r -a port_list <<<"$ports"
	((${#port_list[@]} == 2 * count)) || die "could not pick free ports"
	BROKER_PORTS=("${port_list[@]:0:count}")
	CONTROLLER_PORTS=("${port_list[@]:count}")
	HOMES=()
	for ((i = 1; i <= count; i++)); do
		HOMES+=("$(node_home "$count" "$i")")
		quorum+="${quorum:+,}127.0.0.1:${CONTROLLER_PORTS[i - 1]}"
		bootstrap+="${bootstrap:+,}127.0.0.1:${BROKER_PORTS[i - 1]}"
	done
	for ((i = 1; i <= count; i++)); do
		mkdir -p "${HOMES[i - 1]}/logs" "${HOMES[i - 1]}/data"
		write_config "${HOMES[i - 1]}" "$count" "$i" "${BROKER_PORTS[i - 1]}" "${CONTROLLER_PORTS[i - 1]}" "$quorum"
	done
	write_log4j_config

	local cid
	cid="$(cluster_id)" || die "could not generate a cluster id"
	format_storage "$count" "$cid"

	local heap h
	heap="$(heap_opts "$count")"
	for h in "${HOMES[@]}"; do
		launch_node "$h" "$heap" "$count"
	done

	# Ready when every node logged its start and takes connections, and a
	# real admin request answers: list topics (one broker), or the brokers
	# known to the metadata must be all three.
	local deadline=$((SECONDS + START_TIMEOUT)) ready="" left probe_log up
	local -a waiting
	if ((count == 1)); then
		probe_log="$STATE_DIR/logs/probe.log"
		tool_cmd org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list
	else
		probe_log="$STATE_DIR/probe.log"
		tool_cmd org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$bootstrap"
	fi
	while ((SECONDS < deadline)); do
		waiting=()
		for ((i = 1; i <= count; i++)); do
			h="${HOMES[i - 1]}"
			running_pid "$h" >/dev/null || fail_start "$(node_label "$h") exited during start-up" "$h"
			grep -q 'Kafka Server started' "$h/logs/server.log" 2>/dev/null &&
				tcp_open 127.0.0.1 "${BROKER_PORTS[i - 1]}" || waiting+=("$h")
		done
		if ((${#waiting[@]} == 0)); then
			# Final check: a real admin request must succeed.
			left=$((deadline - SECONDS))
			((left > 5)) || left=5
			if timeout "$left" "${TOOL_CMD[@]}" >"$probe_log" 2>&1 && probe_ok "$count" "$probe_log"; then
				ready=1
				break
			fi
		fi
		sleep 0.2
	done
	if [[ -z "$ready" ]]; then
		((count == 1)) && fail_start "the broker did not become ready within ${START_TIMEOUT}s"
		if ((${#waiting[@]} == 0)); then
			up="all $count started, but the check of all $count brokers failed"
			echo "---- last lines of $probe_log" >&2
			tail -n 20 "$probe_log" >&2 2>/dev/null || true
			fail_start "the $count brokers did not become ready within ${START_TIMEOUT}s ($up)"
		fi
		up="not started: $(for h in "${waiting[@]}"; do node_label "$h"; done | paste -sd, - | sed 's/,/, /g')"
		fail_start "the $count brokers did not become ready within ${START_TIMEOUT}s ($up)" "${waiting[@]}"
	fi

	echo "$bootstrap" >"$BOOTSTRAP_FILE"
	echo "$bootstrap"
}

cmd_stop() {
	[[ -d "$STATE_DIR" ]] || return 0
	check_state_dir_is_ours
	take_lock 9 "$STATE_DIR/.lock"
	state_homes
	# SIGTERM every node at once, so that they shut down together.
	local h pid i
	local -a pids=() labels=()
	for h in "${HOMES[@]}"; do
		if pid="$(running_pid "$h")"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			labels+=("$(node_label "$h")")
		fi
	done
	local deadline=$((SECONDS + STOP_TIMEOUT)) alive
	while ((SECONDS < deadline)); do
		alive=""
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1 && break
		done
		[[ -n "$alive" ]] || break
		sleep 0.2
	done
	for i in "${!pids[@]}"; do
		pid="${pids[i]}"
		if kill -0 "$pid" 2>/dev/null; then
			if [[ "${labels[i]}" == "the broker" ]]; then
				info "broker (pid $pid) did not stop within ${STOP_TIMEOUT}s, killing it"
			else
				info "${labels[i]} (pid $pid) did not stop within ${STOP_TIMEOUT}s, killing it"
			fi
			kill -KILL "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
	done
	rm -rf "$STATE_DIR"
}

cmd_status() {
	state_homes
	local h pid addr i running=0
	for h in "${HOMES[@]}"; do
		running_pid "$h" >/dev/null && running=$((running + 1))
	done
	if ((running > 0)) && [[ -s "$BOOTSTRAP_FILE" ]]; then
		local -a addrs
		addr="$(cat "$BOOTSTRAP_FILE")"
		IFS=, read -r -a addrs <<<"$addr"
		((${#addrs[@]} == ${#HOMES[@]})) || {
			info "the state dir $STATE_DIR records ${#HOMES[@]} brokers but bootstrap lists ${#addrs[@]}"
			return 1
		}
		for i in "${!HOMES[@]}"; do
			h="${HOMES[i]}"
			if ! pid="$(running_pid "$h")"; then
				info "$(node_label "$h") of ${#HOMES[@]} is not running"
				return 1
			fi
			if ! tcp_open "${addrs[i]%:*}" "${addrs[i]##*:}"; then
				if ((${#HOMES[@]} == 1)); then
					info "broker (pid $pid) is not accepting connections on ${addrs[i]}"
				else
					info "$(node_label "$h") (pid $pid) is not accepting connections on ${addrs[i]}"
				fi
				return 1
			fi
		done
		echo "$addr"
		return 0
	fi
	info "not running"
	return 1
}

cmd_run_class() {
	(($# >= 1)) || die "usage: $PROG run-class CLASS [ARGS...]"
	ensure_jars
	tool_cmd "$@"
	exec "${TOOL_CMD[@]}"
}

cmd_run_java() {
	(($# >= 1)) || die "usage: $PROG run-java FILE.java [ARGS...]"
	[[ "$1" == *.java ]] || die "run-java: '$1' is not a .java file"
	[[ -f "$1" ]] || die "run-java: no such file: $1"
	ensure_jars
	tool_cmd "$@"
	exec "${TOOL_CMD[@]}"
}

# node_of ID: sets HOMES to the nodes of the running cluster and NODE_HOME
# to node ID's (1-based), for kill-node and start-node.
node_of() {
	[[ "${1:-}" =~ ^[1-9]$ ]] || die "usage: $PROG kill-node|start-node ID (1 to the number of brokers)"
	[[ -d "$STATE_DIR" ]] || die "not running"
	check_state_dir_is_ours
	state_homes
	(($1 <= ${#HOMES[@]})) || die "there is no node $1: ${#HOMES[@]} broker(s) were started"
	NODE_HOME="${HOMES[$1 - 1]}"
}

# cmd_kill_node ID: SIGKILL one broker of a running cluster, as a crash; its
# data stays for start-node.
cmd_kill_node() {
	node_of "$@"
	take_lock 9 "$STATE_DIR/.lock"
	local pid
	pid="$(running_pid "$NODE_HOME")" || die "$(node_label "$NODE_HOME") is not running"
	kill -KILL "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	info "$(node_label "$NODE_HOME") (pid $pid) killed"
}

# cmd_start_node ID: start one broker of the cluster again on its data and
# ports, and wait until it has started and takes connections.
cmd_start_node() {
	node_of "$@"
	take_lock 9 "$STATE_DIR/.lock"
	local id="$1" label
	label="$(node_label "$NODE_HOME")"
	! running_pid "$NODE_HOME" >/dev/null || die "$label is already running"
	local -a addrs
	IFS=, read -r -a addrs <<<"$(cat "$BOOTSTRAP_FILE")"
	local addr="${addrs[id - 1]}"
	local before
	before="$(grep -c 'Kafka Server started' "$NODE_HOME/logs/server.log" 2>/dev/null || true)"
	launch_node "$NODE_HOME" "$(heap_opts "${#HOMES[@]}")" "${#HOMES[@]}"
	HOMES=("$NODE_HOME") # a failed start stops this node only
	local deadline=$((SECONDS + START_TIMEOUT)) now
	while ((SECONDS < deadline)); do
		running_pid "$NODE_HOME" >/dev/null || fail_start "$label exited during start-up" "$NODE_HOME"
		now="$(grep -c 'Kafka Server started' "$NODE_HOME/logs/server.log" 2>/dev/null || true)"
		if ((${now:-0} > ${before:-0})) && tcp_open "${addr%:*}" "${addr##*:}"; then
			info "$label started again at $addr"
			return 0
		fi
		sleep 0.2
	done
	fail_start "$label did not start within ${START_TIMEOUT}s" "$NODE_HOME"
}

main() {
	local cmd="${1:-}"
	(($# > 0)) && shift
	case "$cmd" in
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	status) cmd_status "$@" ;;
	kill-node) cmd_kill_node "$@" ;;
	start-node) cmd_start_node "$@" ;;
	run-class) cmd_run_class "$@" ;;
	run-java) cmd_run_java "$@" ;;
	fetch) ensure_jars && echo "$LIB_DIR" ;;
	help | -h | --help) usage ;;
	"") usage >&2 && exit 2 ;;
	*) die "unknown command '$cmd' (try: $PROG help)" ;;
	esac
}

main "$@"
