#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang-14, ASan+UBSan) in build-fuzz and
# runs each for SECONDS (default 60) from its seed corpus, then reports
# execs/s, coverage and crash files per target. Exits 1 if any target crashed.
#   scripts/fuzz.sh [SECONDS]     FUZZ_TARGETS="a b" to run only some
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=${FUZZ_TARGETS:-"app_manifest_fuzz package_fuzz http_server_fuzz peer_fuzz host_abi_fuzz"}

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DWAVERLESS_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# shellcheck disable=SC2086
cmake --build "$BUILD" --target $TARGETS -j "$(nproc)"

out="$BUILD/fuzz-runs"
mkdir -p "$out"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
printf '%-20s %10s %8s %8s %6s  %s\n' target execs exec/s cov corpus crashes
for t in $TARGETS; do
  # Seeds stay as checked in; what the run finds goes to a scratch corpus.
  corpus="$out/$t-corpus"
  mkdir -p "$corpus" "$out/$t-artifacts"
  log="$out/$t.log"
  rc=0
  "$BUILD/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$out/$t-artifacts/" \
    "$corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$out/$t-artifacts" -type f | tr '\n' ' ')
  if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
    failed=1
    crashes="${crashes:-exit $rc} (log: $log)"
  fi
  printf '%-20s %10s %8s %8s %6s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "$units" \
    "${crashes:-none}"
done
exit $failed
