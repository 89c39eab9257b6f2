#!/usr/bin/env bash
# Builds the SDK (an rlib) and the example plugins into build/NAME.wasm with
# plain rustc, no cargo and no network. The rustc used must have the
# wasm32-unknown-unknown standard library: $RUSTC if set, else the first of
# `rustc` on PATH and Debian's rustc that has it
# (apt-get install rustc libstd-rust-dev-wasm32).
set -euo pipefail
cd "$(dirname "$0")"

TARGET=wasm32-unknown-unknown

has_target() {
	local sysroot
	sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
	[ -d "$sysroot/lib/rustlib/$TARGET/lib" ]
}

if [ -z "${RUSTC:-}" ]; then
	for c in rustc /usr/bin/rustc; do
		if command -v "$c" >/dev/null 2>&1 && has_target "$c"; then
			RUSTC=$c
			break
		fi
	done
fi
if [ -z "${RUSTC:-}" ]; then
	echo "build.sh: no rustc with the $TARGET target (apt-get install rustc libstd-rust-dev-wasm32)" >&2
	exit 1
fi

mkdir -p build
FLAGS=(--edition 2021 --target "$TARGET" -O -C lto -C codegen-units=1 -C strip=debuginfo)
"$RUSTC" "${FLAGS[@]}" --crate-type rlib --crate-name iq src/lib.rs -o build/libiq.rlib
for ex in sensor-value sensor-key project; do
	"$RUSTC" "${FLAGS[@]}" --crate-type cdylib --crate-name "${ex//-/_}" \
		--extern iq=build/libiq.rlib "examples/$ex/lib.rs" -o "build/$ex.wasm"
done
echo "built with $("$RUSTC" --version): $(cd build && echo *.wasm)"
