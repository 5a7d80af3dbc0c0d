#!/usr/bin/env bash
# Warm hello req/s of two builds, measured in alternation so that drift of
# a shared machine hits both alike: both nodes run at once on cpu0, wrk
# (-t1 -c64) on cpu1 loads one of them at a time, PAIRS times each, with the
# order inside a pair swapped every other pair. Prints every pair's ratio
# (second build / first), their median and spread.
#
#   bench/isolation/alternate.sh BASE_BINARY [NEW_BINARY] [PAIRS] [SECONDS]
#   (defaults: build/waverless, 8 pairs, 5 s per run)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 BASE_BINARY [NEW_BINARY] [PAIRS] [SECONDS]" >&2; exit 2; }
BASE_BIN=$1
NEW_BIN=${2:-build/waverless}
PAIRS=${3:-8}
SECS=${4:-5}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
OUT=bench/out/alternate-$(date +%Y%m%d-%H%M%S)
for n in base new; do
  mkdir -p "$OUT/apps-$n"
  cp -r apps/hello "$OUT/apps-$n/hello" && cp build/apps/hello/app.wasm "$OUT/apps-$n/hello/"
done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME BINARY PORT -> waits for /healthz on PORT+1
start() {
  taskset -c 0 "$2" dev --addr 127.0.0.1:$3 --data "$OUT/data-$1" --apps "$OUT/apps-$1" \
    --cache "$OUT/cache-$1" 2>"$OUT/$1.log" &
  PIDS+=($!)
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$(($3 + 1))/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$1 did not start; see $OUT/$1.log" >&2
  exit 1
}
# rps PORT PID -> "req/s cpu_us_per_request": the node's CPU time (user +
# system, from /proc) over the requests wrk counted, which contention for
# the cores inflates less than it cuts req/s.
rps() {
  local t0 t1 out
  t0=$(awk '{print $14 + $15}' "/proc/$2/stat")
  out=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$1/hello")
  t1=$(awk '{print $14 + $15}' "/proc/$2/stat")
  echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {printf "%s %.2f\n", r, dt / hz * 1e6 / n}'
}

start base "$BASE_BIN" 24700
BASE_PID=${PIDS[-1]}
start new "$NEW_BIN" 24800
NEW_PID=${PIDS[-1]}
rps 24701 $BASE_PID >/dev/null && rps 24801 $NEW_PID >/dev/null  # warm-up

ratios=() cpu_ratios=()
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then
    read -r b bc < <(rps 24701 $BASE_PID); read -r n nc < <(rps 24801 $NEW_PID)
  else
    read -r n nc < <(rps 24801 $NEW_PID); read -r b bc < <(rps 24701 $BASE_PID)
  fi
  r=$(awk -v n="$n" -v b="$b" 'BEGIN {printf "%.3f", n / b}')
  c=$(awk -v n="$nc" -v b="$bc" 'BEGIN {printf "%.3f", n / b}')
  ratios+=("$r") cpu_ratios+=("$c")
  echo "pair $i: before $b req/s ($bc µs CPU each), new $n req/s ($nc µs), req/s new/before $r, CPU per request new/before $c" |
    tee -a "$OUT/pairs.txt"
done
# summary NAME RATIO... -> median and range
summary() {
  local name=$1 sorted
  shift
  sorted=$(printf '%s\n' "$@" | sort -g)
  echo "$name new/before: median $(echo "$sorted" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}') over $PAIRS pairs, range $(echo "$sorted" | head -1)–$(echo "$sorted" | tail -1)" |
    tee -a "$OUT/pairs.txt"
}
summary "req/s" "${ratios[@]}"
summary "CPU per request" "${cpu_ratios[@]}"
