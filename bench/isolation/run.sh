#!/usr/bin/env bash
# Issue 9's benchmark: what the node-level defence costs, and what it buys.
#
#   bench/isolation/run.sh [--quick] [--baseline BINARY]
#
# In one run, with the node under test on cpu0 and the load on cpu1:
#  1. warm hello throughput (wrk -c64), this build against BINARY (a build
#     from before the defence, e.g. of commit cc0d662), alternating 3 times;
#  2. hello while another app floods the node: (a) a fan-out bomb fired in a
#     loop, (b) 16 clients calling a 20 ms CPU-bound function; hello's
#     throughput (wrk) and its p99 at 2,000 req/s (loadgen, open loop),
#     against the same measurements without the flood;
#  3. the cost of `instance: fresh` per call: the same counter function with
#     reuse and fresh, wrk on each.
# Prints a markdown table; the raw outputs stay in bench/out/isolation-*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK=0
BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --baseline) BASELINE="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--baseline BINARY]" >&2; exit 2 ;;
  esac
  shift
done
SECS=$([ $QUICK = 1 ] && echo 4 || echo 10)
BIN=build/waverless
LOADGEN=build/bench/loadgen
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk; bench/run installs it)" >&2; exit 1; }
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
OUT=bench/out/isolation-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
APPS="$OUT/apps"
mkdir -p "$APPS"
cp -r apps/hello "$APPS/hello" && cp build/apps/hello/app.wasm "$APPS/hello/app.wasm"
cp -r tests/apps/tenants "$APPS/tenants" && cp build/tests/apps/tenants/app.wasm "$APPS/tenants/app.wasm"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME BINARY PORT APPS_DIR -> waits for /healthz
start() {
  local name=$1 bin=$2 port=$3 apps=$4
  taskset -c 0 "$bin" dev --addr 127.0.0.1:$port --data "$OUT/data-$name" --apps "$apps" \
    --cache "$OUT/cache" 2>"$OUT/$name.log" &
  PIDS+=($!)
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$((port + 1))/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$name did not start; see $OUT/$name.log" >&2
  exit 1
}

# wrk_rps URL -> req/s
wrk_rps() {
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
# p99_us PORT PATH RATE -> "p99 µs (achieved req/s)", open loop, Poisson
p99_us() {
  taskset -c 1 "$LOADGEN" --target 127.0.0.1:$1 --path "$2" --rate "$3" --duration "$SECS" \
    --warmup 0.5 --conns 64 --drain 5 2>/dev/null | tee -a "$OUT/loadgen.txt" |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("%d µs (p50 %d µs, %.0f req/s achieved)" % (r["latency_us"]["p99"], r["latency_us"]["p50"], r["achieved_rps"]))'
}

start new "$BIN" 24500 "$APPS"
NEW=24501
if [ -n "$BASELINE" ]; then
  mkdir -p "$OUT/apps-base"
  cp -r "$APPS/hello" "$OUT/apps-base/hello"
  start base "$BASELINE" 24600 "$OUT/apps-base"
  BASE=24601
fi

echo "| measurement | result |"
echo "|---|---|"

# 1. hello, this build against the baseline, alternating.
wrk_rps "http://127.0.0.1:$NEW/hello" >/dev/null  # warm-up
new_runs=() base_runs=()
for i in 1 2 3; do
  new_runs+=("$(wrk_rps "http://127.0.0.1:$NEW/hello")")
  if [ -n "$BASELINE" ]; then base_runs+=("$(wrk_rps "http://127.0.0.1:$BASE/hello")"); fi
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
NEW_RPS=$(median "${new_runs[@]}")
echo "| warm hello req/s, this build (median of 3: ${new_runs[*]}) | $NEW_RPS |"
if [ -n "$BASELINE" ]; then
  BASE_RPS=$(median "${base_runs[@]}")
  echo "| warm hello req/s, before (median of 3: ${base_runs[*]}) | $BASE_RPS |"
  echo "| this build / before | $(awk -v a="$NEW_RPS" -v b="$BASE_RPS" 'BEGIN {printf "%.3f", a / b}') |"
fi
QUIET_P99=$(p99_us $NEW /hello 2000)
echo "| hello p99 at 2,000 req/s, no flood | ${QUIET_P99} |"
if [ -n "$BASELINE" ]; then
  echo "| hello p99 at 2,000 req/s, before, no flood | $(p99_us $BASE /hello 2000) |"
fi

# under_flood CONNS SCRIPT PATH WHAT: hello's req/s and p99 while CONNS
# connections call PATH back to back (wrk with SCRIPT).
under_flood() {
  local conns=$1 script=$2 path=$3 what=$4
  taskset -c 1 wrk -t1 -c"$conns" -d$((3 * SECS + 10))s -s "bench/isolation/$script" \
    "http://127.0.0.1:$NEW$path" >"$OUT/flood-$script.txt" 2>&1 &
  local flood=$!
  sleep 1
  local rps p99
  rps=$(wrk_rps "http://127.0.0.1:$NEW/hello")
  p99=$(p99_us $NEW /hello 2000)
  kill "$flood" 2>/dev/null || true
  wait "$flood" 2>/dev/null || true
  echo "| hello req/s while $what | $rps ($(awk -v a="$rps" -v b="$NEW_RPS" 'BEGIN {printf "%.2f", a / b}')× of no flood) |"
  echo "| hello p99 at 2,000 req/s while $what | $p99 |"
}

# 2a. fan-out bombs fired back to back by 4 connections.
under_flood 4 post.lua /tenants/bomb "4 clients fire fan-out bombs"
# 2b. 16 connections calling a 20 ms CPU-bound function back to back.
under_flood 16 spin.lua /tenants/spin "16 clients run 20 ms CPU-bound calls"

# 3. instance: fresh against reuse, same function body.
REUSE_RPS=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s bench/isolation/post.lua "http://127.0.0.1:$NEW/tenants/count" | awk '/Requests\/sec/ {print $2}')
FRESH_RPS=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s bench/isolation/post.lua "http://127.0.0.1:$NEW/tenants/fresh_count" | awk '/Requests\/sec/ {print $2}')
echo "| counter req/s, instance reused | $REUSE_RPS |"
echo "| counter req/s, instance: fresh | $FRESH_RPS ($(awk -v a="$FRESH_RPS" -v b="$REUSE_RPS" 'BEGIN {printf "%.2f", a / b}')× of reuse) |"
echo "| cost of instance: fresh per call (2 cores' worth: 1/fresh - 1/reuse) | $(awk -v a="$FRESH_RPS" -v b="$REUSE_RPS" 'BEGIN {printf "%.1f µs", 1e6 / a - 1e6 / b}') |"
