#!/usr/bin/env bash
# Runs every fuzz target of the main module (each func FuzzXxx in a
# _test.go file) for SECONDS each, default 10, one after another with one
# worker, and fails when any of them finds an input that fails it. Such an
# input is saved in the package's testdata/fuzz/FuzzXxx/, where `go test`
# replays it from then on: fix the code and keep the file. Works from any
# directory.
#
#   scripts/fuzz.sh              # 10 s a target
#   scripts/fuzz.sh 60           # a minute a target
#
# FUZZ_PARALLEL sets the workers of a target (default 1, so the machine
# keeps a core for other work), FUZZ_MINIMIZE the longest time spent
# shrinking one input (default 5s: go's own 60s would spend a short run
# shrinking the new inputs it finds rather than looking for more).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
seconds=${1:-10}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]] || [ "$#" -gt 1 ]; then
	echo "usage: scripts/fuzz.sh [seconds per target]" >&2
	exit 2
fi
parallel=${FUZZ_PARALLEL:-1}
minimize=${FUZZ_MINIMIZE:-5s}

# The targets, as "package target" lines: the main module's packages only
# (sdk/go, the example plugins and deploy/kubernetes are modules of their
# own), read from their test files.
targets=()
while read -r pkg dir; do
	for file in "$dir"/*_test.go; do
		while read -r name; do
			targets+=("$pkg $name")
		done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
	done
done < <("$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# fuzz PKG NAME: runs one target; the output is also in $out.
fuzz() {
	"$GO" test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "${seconds}s" \
		-fuzzminimizetime "$minimize" -parallel "$parallel" 2>&1 | tee "$out"
}

started=$(date +%s)
failed=()
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	echo "== $pkg $name (${seconds}s)"
	fuzz "$pkg" "$name" && continue
	# Go's fuzzer sometimes ends a run that found nothing with "context
	# deadline exceeded" (the time ran out while a worker was busy): no
	# input was written, so it is not a finding. Run the target again once.
	if ! grep -q 'Failing input written to' "$out" && grep -q 'context deadline exceeded' "$out"; then
		echo "fuzz.sh: $name ended with the fuzzer's own deadline error and no failing input; once more"
		fuzz "$pkg" "$name" && continue
	fi
	failed+=("$pkg $name")
done

echo
echo "fuzz.sh: ${#targets[@]} targets in $(($(date +%s) - started))s"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz.sh: failed (the input is in the package's testdata/fuzz/<target>/):"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
