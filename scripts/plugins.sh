#!/usr/bin/env bash
# Builds every example plugin, examples/plugins/NAME/, into
# examples/plugins/NAME/NAME.wasm (a WebAssembly module for iqengine's plugin
# ABI, sdk/ABI.md), and prints what it built. Works from any directory.
#
#   scripts/plugins.sh            # all of them
#   scripts/plugins.sh project    # only the named ones
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}

if [ "$#" -gt 0 ]; then
	dirs=()
	for name in "$@"; do
		[ -d "examples/plugins/$name" ] || { echo "plugins.sh: no plugin examples/plugins/$name" >&2; exit 2; }
		dirs+=("examples/plugins/$name/")
	done
else
	dirs=(examples/plugins/*/)
fi

for dir in "${dirs[@]}"; do
	dir=${dir%/}
	name=$(basename "$dir")
	# A plugin is a package that imports the SDK; others (the sample data
	# producer) are skipped. Each plugin is a module of its own that requires
	# only the SDK module (sdk/go), so it is listed and built from its
	# directory.
	imports=$(cd "$dir" && GOOS=wasip1 GOARCH=wasm "$GO" list -f '{{join .Imports " "}}' .)
	if [[ " $imports" != *" github.com/iqengine/iqengine/sdk/go/iq"* ]]; then
		echo "$dir: not a plugin (does not import sdk/go/iq), skipped"
		continue
	fi
	out="$dir/$name.wasm"
	# -buildmode=c-shared makes a WASI reactor: _initialize runs the package
	# initialisers, and the //go:wasmexport functions are the plugin's exports.
	(cd "$dir" && GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -o "$name.wasm" .)
	printf '%s (%s bytes)\n' "$out" "$(wc -c <"$out" | tr -d ' ')"
done
