#!/usr/bin/env bash
# make fuzz: writes the seed corpus, then runs each libFuzzer target for FUZZ_SECONDS (60 by
# default) from its seeds. A crash, a hang (-timeout), a sanitizer report or a leak fails the run;
# the input that caused it is left in fuzz-output/<fuzzer>-crash-* (or -timeout-, -leak-, -oom-).
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh <fuzz build dir>}
seconds=${FUZZ_SECONDS:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=fuzz-output
mkdir -p "$out"

"$build/fuzz/tandem_fuzz_seeds" "$root/fuzz/corpus"

failed=()
for fuzzer in ring response request queue codec handover; do
  work="$out/corpus-$fuzzer"  # what the run finds goes here; the seeds stay as they are
  mkdir -p "$work"
  printf '== %-8s %4d s: ' "$fuzzer" "$seconds"
  if "$build/fuzz/${fuzzer}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/$fuzzer-" "$work" "$root/fuzz/corpus/$fuzzer" \
      > "$out/$fuzzer.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$fuzzer.log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out/$fuzzer.log")
    cov=$(grep -o 'cov: [0-9]*' "$out/$fuzzer.log" | tail -1)
    echo "nothing found in $runs runs ($cov, peak RSS $rss MB)"
  else
    echo "FAILED"
    tail -40 "$out/$fuzzer.log"
    failed+=("$fuzzer")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: ${failed[*]} found a problem (inputs in $out/)"
  exit 1
fi
