#!/usr/bin/env bash
# make bench: the micro suites, then the side-by-side runs whose RATIO lines end the output.
set -euo pipefail
build_dir=${1:?usage: bench/run.sh <build dir>}
out=bench-output
mkdir -p "$out"

echo "== Google Benchmark micro suites (results also in $out/micro.json)"
"$build_dir/bench/tandem_bench" --benchmark_min_time=0.05 --benchmark_out="$out/micro.json" \
  --benchmark_out_format=json

echo
echo "== Side-by-side against peers (also in $out/compare.txt)"
"$build_dir/bench/tandem_compare" | tee "$out/compare.txt"
