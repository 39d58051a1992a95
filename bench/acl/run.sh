#!/bin/sh
# run.sh runs the comparison benchmarks COUNT times (default 6) and prints
# the benchstat summaries: one column per implementation, then the paired
# acl/bart ratios of BenchmarkRatio.
#
# The runs are interleaved finely: each invocation runs every implementation
# on one data set back to back, so that noise from other work on the
# machine affects all of them alike. Raw results go to OUT (default: a
# temporary file, printed at the end).
set -eu
cd "$(dirname "$0")"
count=${COUNT:-6}
out=${OUT:-$(mktemp "${TMPDIR:-/tmp}/aclbench.XXXXXX")}
bin=$(mktemp -d "${TMPDIR:-/tmp}/aclbench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/aclbench.test" .
: >"$out"
for round in $(seq "$count"); do
	export ACLBENCH_ROUND=$((round - 1)) # rotates the order of the implementations
	for family in v4 v6; do
		for n in 10 1000 100000; do
			for kind in hit miss; do
				"$bin/aclbench.test" -test.run '^$' \
					-test.bench "^BenchmarkContains\$/^impl=/^family=$family\$/^n=$n\$/^$kind\$" >>"$out"
			done
		done
		"$bin/aclbench.test" -test.run '^$' -test.bench "^BenchmarkBuild\$/^impl=/^family=$family\$" >>"$out"
		"$bin/aclbench.test" -test.run '^$' -test.bench "^BenchmarkRatio\$/^family=$family\$" >>"$out"
	done
	echo "round $round of $count done" >&2
done
benchstat="go run golang.org/x/perf/cmd/benchstat@latest"
$benchstat -filter '.name:(Contains OR Build)' -col "/impl@(acl bart bartlite netipx linear)" "$out"
echo
$benchstat -filter '.name:Ratio' "$out"
echo "raw results: $out" >&2
