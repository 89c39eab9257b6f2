#!/usr/bin/env bash
# Builds the example plugins of every plugin SDK (sdk/c, sdk/rust,
# sdk/assemblyscript) and runs each against the shared conformance vectors
# (sdk/conformance/NAME.jsonl) with `iqengine plugin test`, then prints an
# SDK x example table (pass/fail, module size). Installs what is missing
# first: Debian packages only for a tool that is absent, and the
# AssemblyScript compiler with `npm ci` from sdk/assemblyscript's lockfile.
# Exits non-zero when anything fails to install, build or pass.
#
# The vectors are byte-exact, so passing them means the SDKs' outputs are
# byte-identical on them. `iqengine plugin test` has no mode that prints a
# module's outputs, so there is no extra cross-SDK comparison on generated
# inputs here.
#
#   scripts/sdk-test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
SDKS=(c rust assemblyscript)
EXAMPLES=(sensor-value sensor-key project)

log() { printf '== %s\n' "$*"; }

# ---- toolchains -------------------------------------------------------------

apt_updated=
apt_install() {
	local sudo=
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "sdk-test: need root or sudo to install: $*" >&2; return 1; }
		sudo=sudo
	fi
	if [ -z "$apt_updated" ]; then
		$sudo apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# C: clang, lld (wasm-ld), wasi-libc, and clang's wasm32 builtins.
clang_builtins() {
	local dir
	dir=$(clang -print-resource-dir 2>/dev/null) || return 1
	[ -f "$dir/lib/wasi/libclang_rt.builtins-wasm32.a" ]
}
ensure_c() {
	local pkgs=()
	command -v clang >/dev/null 2>&1 || pkgs+=(clang)
	command -v wasm-ld >/dev/null 2>&1 || pkgs+=(lld)
	[ -f "${WASI_SYSROOT:-/usr}/lib/wasm32-wasi/libc.a" ] || pkgs+=(wasi-libc)
	if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}"; fi
	if ! clang_builtins; then
		local major
		major=$(clang -dumpversion | cut -d. -f1)
		apt_install "libclang-rt-$major-dev-wasm32"
	fi
}

# Rust: a rustc with the wasm32-unknown-unknown standard library (the
# rustup toolchain usually has none offline; Debian's rustc with
# libstd-rust-dev-wasm32 does).
rust_with_wasm() {
	local c sysroot
	for c in ${RUSTC:-} rustc /usr/bin/rustc; do
		command -v "$c" >/dev/null 2>&1 || continue
		sysroot=$("$c" --print sysroot 2>/dev/null) || continue
		if [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
ensure_rust() {
	if ! rust_with_wasm >/dev/null; then
		apt_install rustc libstd-rust-dev-wasm32
	fi
	RUSTC=$(rust_with_wasm) || { echo "sdk-test: no rustc with the wasm32-unknown-unknown target" >&2; return 1; }
	export RUSTC
}

# AssemblyScript: node and npm, then the compiler from the lockfile.
ensure_as() {
	local pkgs=()
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}"; fi
	local lock=sdk/assemblyscript/package-lock.json
	local installed=sdk/assemblyscript/node_modules/.package-lock.json
	if [ ! -x sdk/assemblyscript/node_modules/.bin/asc ] || [ "$lock" -nt "$installed" ]; then
		log "npm ci (sdk/assemblyscript)"
		(cd sdk/assemblyscript && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

# ---- build --------------------------------------------------------------------

build_c() { make -s -k -C sdk/c; }
build_rust() { sdk/rust/build.sh; }
build_assemblyscript() { (cd sdk/assemblyscript && npm run --silent build); }

declare -A result size
failures=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log "go build ./cmd/iqengine"
"$GO" build -o "$tmp/iqengine" ./cmd/iqengine

for sdk in "${SDKS[@]}"; do
	case $sdk in
	c) ensure=ensure_c ;;
	rust) ensure=ensure_rust ;;
	assemblyscript) ensure=ensure_as ;;
	esac
	log "$sdk: toolchain and build"
	rm -rf "sdk/$sdk/build" # no stale module passes for a broken build
	if ! $ensure || ! "build_$sdk"; then
		echo "sdk-test: $sdk: toolchain or build failed" >&2
		failures=$((failures + 1))
	fi
done

# ---- conformance ----------------------------------------------------------------

for sdk in "${SDKS[@]}"; do
	for ex in "${EXAMPLES[@]}"; do
		mod=sdk/$sdk/build/$ex.wasm
		if [ ! -f "$mod" ]; then
			result[$sdk/$ex]="not built"
			size[$sdk/$ex]=-
			continue
		fi
		size[$sdk/$ex]=$(wc -c <"$mod" | tr -d ' ')
		log "$sdk/$ex: iqengine plugin test"
		if "$tmp/iqengine" plugin test "$mod" --vectors "sdk/conformance/$ex.jsonl"; then
			result[$sdk/$ex]=pass
		else
			result[$sdk/$ex]=FAIL
			failures=$((failures + 1))
		fi
	done
done

# ---- the demo's embedded modules ------------------------------------------------------
# internal/demo/plugins holds the AssemblyScript builds, committed so the demo
# needs nothing but Go; they must be what the SDK builds today.

for ex in "${EXAMPLES[@]}"; do
	if ! cmp -s "sdk/assemblyscript/build/$ex.wasm" "internal/demo/plugins/$ex.wasm"; then
		echo "sdk-test: internal/demo/plugins/$ex.wasm differs from a fresh AssemblyScript build; copy sdk/assemblyscript/build/$ex.wasm there" >&2
		failures=$((failures + 1))
	fi
done

# ---- end to end ---------------------------------------------------------------------
# Each SDK's three modules serve a store in a real node (embedded broker, or
# the real one named by IQENGINE_TEST_BROKERS): binary records produced,
# queried over HTTP, decoded and transformed by that SDK's plugins.

declare -A e2e
builds=()
for sdk in "${SDKS[@]}"; do
	dir=$PWD/sdk/$sdk/build
	if [ ! -f "$dir/sensor-value.wasm" ] || [ ! -f "$dir/sensor-key.wasm" ] || [ ! -f "$dir/project.wasm" ]; then
		e2e[$sdk]="not built"
		continue
	fi
	builds+=("$sdk=$dir")
	log "$sdk: end to end through a node"
	if IQENGINE_PLUGIN_DIR=$dir "$GO" test -count=1 -run '^TestPluginsEndToEnd$' ./cmd/iqengine/; then
		e2e[$sdk]=pass
	else
		e2e[$sdk]=FAIL
		failures=$((failures + 1))
	fi
done

# ---- the SDKs agree beyond the vectors ------------------------------------------------
# The same random inputs (valid and not) through every SDK's modules and the
# Go examples: byte-identical outputs and identical statuses.

if [ ${#builds[@]} -gt 0 ]; then
	log "random inputs through every SDK: ${builds[*]}"
	IQENGINE_SDK_BUILDS=$(IFS=,; echo "${builds[*]}") "$GO" test -count=1 -run '^TestSDKsAgree$' -v ./plugins/ | grep -E '^(\s+agree_test|--- |ok|FAIL)' || failures=$((failures + 1))
fi

# ---- decode cost per language ------------------------------------------------------
# One run, side by side: the same sensor record decoded by each SDK's plugin
# and the Go example, next to the built-in json serde on the same output.

if [ ${#builds[@]} -gt 0 ]; then
	log "decode benchmark: ${builds[*]}"
	IQENGINE_SDK_BUILDS=$(IFS=,; echo "${builds[*]}") "$GO" test -count=1 -run '^$' \
		-bench '^BenchmarkDecodeSensorBySDK$' -benchtime "${SDK_BENCHTIME:-20000x}" ./plugins/ | grep -E '^(Benchmark|ok|FAIL)' || failures=$((failures + 1))
fi

# ---- summary ----------------------------------------------------------------------

echo
printf '%-16s %-14s %-10s %10s\n' SDK example result bytes
for sdk in "${SDKS[@]}"; do
	for ex in "${EXAMPLES[@]}"; do
		printf '%-16s %-14s %-10s %10s\n' "$sdk" "$ex" "${result[$sdk/$ex]}" "${size[$sdk/$ex]}"
	done
done
echo
for sdk in "${SDKS[@]}"; do
	printf '%-16s end to end over HTTP: %s\n' "$sdk" "${e2e[$sdk]:-not run}"
done
total=$(( ${#SDKS[@]} * ${#EXAMPLES[@]} ))
passed=0
for k in "${!result[@]}"; do
	if [ "${result[$k]}" = pass ]; then passed=$((passed + 1)); fi
done
echo
echo "sdk-test: $passed passed, $((total - passed)) failed"
if [ "$failures" -gt 0 ]; then
	exit 1
fi
