#!/usr/bin/env bash
# kafka.sh: fetch Apache Kafka's jars (the broker, its tools, the Java
# client) from Maven Central into a cache, once, and print the directory that
# holds them. Needs Maven the first time; later calls only print the path.
#
# The test brokers themselves are run by Go (internal/testkafka), which calls
# this script for the jars:
#   go run ./internal/testkafka/cmd/kafka help
#
# Usage:
#   scripts/kafka.sh [fetch]    fetch the jars if needed, print their directory
#   scripts/kafka.sh help
#
# Environment (all optional):
#   KAFKA_VERSION                 Kafka version to fetch (default 4.4.0)
#   IQENGINE_KAFKA_LOG4J_VERSION  log4j2 version of the slf4j binding (default 2.25.5)
#   IQENGINE_KAFKA_CACHE          jar cache root (default $HOME/.cache/iqengine/kafka)
#   IQENGINE_KAFKA_MVN_ARGS       extra arguments for mvn (e.g. -Dmaven.repo.local=...)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${IQENGINE_KAFKA_LOG4J_VERSION:-2.25.5}"
CACHE_ROOT="${IQENGINE_KAFKA_CACHE:-${HOME:?HOME is not set; set IQENGINE_KAFKA_CACHE}/.cache/iqengine/kafka}"
POM="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/java/pom.xml"
PROG="kafka.sh"

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# The jars' directory is named for the POM and the versions, and is never
# changed once it is in place: a new POM or version fetches into a new one,
# so brokers running from the old one are not disturbed.
fetch() {
	[[ "$CACHE_ROOT" == /* ]] || CACHE_ROOT="$PWD/$CACHE_ROOT"
	local version_dir="$CACHE_ROOT/$KAFKA_VERSION" sum
	sum="$({ cat "$POM" && echo "$KAFKA_VERSION $LOG4J_VERSION"; } | cksum | cut -d ' ' -f 1)"
	local lib="$version_dir/lib-$sum"
	if [[ ! -d "$lib" ]]; then
		mkdir -p "$version_dir" || die "cannot create cache dir $version_dir"
		if command -v flock >/dev/null 2>&1; then
			exec 9>"$version_dir/.lock"
			flock 9
		fi
		[[ -d "$lib" ]] || download "$version_dir" "$lib" # unless fetched while we waited
	fi
	echo "$lib"
}

download() { # VERSION_DIR LIB
	command -v mvn >/dev/null 2>&1 || die "mvn not found; it is needed once to fetch Kafka $KAFKA_VERSION into $1"
	echo "$PROG: fetching Kafka $KAFKA_VERSION jars from Maven Central into $2" >&2
	local tmp="$1/fetch.$$" mvn_log="$1/mvn.log"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	cp "$POM" "$tmp/pom.xml" # mvn may write next to the POM
	local -a extra=()
	# shellcheck disable=SC2206 # word splitting of user-supplied flags is intended
	[[ -n "${IQENGINE_KAFKA_MVN_ARGS:-}" ]] && extra=(${IQENGINE_KAFKA_MVN_ARGS})
	if ! mvn -B -q -Dstyle.color=never "${extra[@]}" -f "$tmp/pom.xml" \
		"-Dkafka.version=$KAFKA_VERSION" "-Dlog4j.version=$LOG4J_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib" \
		>"$mvn_log" 2>&1; then
		# Show Maven's own error (without colour codes), not the whole log.
		sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | grep -m 1 '^\[ERROR\] [^ ]' >&2 ||
			tail -n 20 "$mvn_log" >&2 || true
		rm -rf "$tmp"
		die "mvn failed to fetch Kafka $KAFKA_VERSION (full log: $mvn_log)"
	fi
	compgen -G "$tmp/lib/kafka_*-$KAFKA_VERSION.jar" >/dev/null ||
		die "mvn succeeded but the broker's jar kafka_*-$KAFKA_VERSION.jar is missing in $tmp/lib"
	[[ -d "$2" ]] || mv "$tmp/lib" "$2" # without flock another fetch may have won
	rm -rf "$tmp"
}

case "${1:-fetch}" in
fetch) fetch ;;
help | -h | --help) usage ;;
*) die "unknown command '$1' (try: $PROG help)" ;;
esac
