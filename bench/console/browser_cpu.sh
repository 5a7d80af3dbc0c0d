#!/usr/bin/env bash
# What an open console costs the browser and the node: the CPU time
# (utime + stime from /proc) of headless Chromium, all of its processes, and
# of the node, while one console page stays open and auto-refreshing for
# SECONDS, page by page. A light constant load (`waverless load`, 100 req/s
# of hello and 5 req/s of word_count) keeps the numbers on the page moving,
# as on a node in use. Node and load on cpu 0, Chromium on cpu 1.
#
#   bench/console/browser_cpu.sh [SECONDS] [PAGE...]
#   (default 30 s; pages none cluster apps/word_count metrics, where
#    "none" is the signed-in console showing no page: Chromium's own floor;
#    the first row is the node with no browser at all; build dir
#    $BUILD_DIR, default build; needs chromium and ui/node_modules)
#
# CPU time, not wall time: the figure holds while other processes compete
# for the cores (within the noise of shared caches), so it can be taken on
# a busy machine, unlike a throughput figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
SECS=${1:-30}
shift || true
PAGES=("$@")
[ ${#PAGES[@]} -gt 0 ] || PAGES=(none cluster apps/word_count metrics)
WL="$BUILD_DIR/waverless"
[ -f "$BUILD_DIR/ui/index.html" ] || { echo "no console in $BUILD_DIR/ui: scripts/build.sh" >&2; exit 1; }
[ -d ui/node_modules/playwright-core ] || { echo "no ui/node_modules: scripts/build.sh" >&2; exit 1; }
TMP=$(mktemp -d)
NODE='' BROWSER='' LOAD=()
cleanup() {
  for p in $BROWSER "${LOAD[@]}" $NODE; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$TMP"
}
trap cleanup EXIT
for app in hello word_count; do
  mkdir -p "$TMP/apps/$app"
  cp "apps/$app/app.yaml" "$BUILD_DIR/apps/$app/app.wasm" "$TMP/apps/$app/"
done
PORT=$((20000 + (RANDOM % 2500) * 4))
taskset -c 0 "$WL" dev --addr "127.0.0.1:$PORT" --data "$TMP/data" --apps "$TMP/apps" \
  --cache "$TMP/cache" >"$TMP/node.log" 2>&1 &
NODE=$!
URL="http://127.0.0.1:$((PORT + 1))"
for _ in $(seq 1 120); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 1; done
curl -sf "$URL/hello" >/dev/null
load() {  # APP RATE [BODY]: constant arrivals for longer than the run
  taskset -c 0 "$WL" load "$1" --to "$URL" --rate "$2" --arrival constant \
    --duration 3000 --connections 2 ${3:+--data "$3"} >/dev/null 2>&1 &
  LOAD+=($!)
}
load hello 100
load word_count 5 "the cat and the hat and the dog"

cpu_ticks() {  # utime + stime of the given pids, in clock ticks
  local sum=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # the command may hold spaces: fields after the last ')'
    sum=$((sum + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$sum"
}
descendants() {  # every process below $1 (Chromium's browser, renderers, GPU, network)
  local kids k
  kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  for k in $kids; do echo "$k"; descendants "$k"; done
}
# HTTP requests the node served that were not the load's: the console's
# (the load's are its entry functions' invocations), less this /metrics.
not_load() {
  curl -s "$URL/metrics" | awk '
    $1 == "wl_http_requests_total" { n += $2 }
    $1 ~ /^wl_invocations_total\{/ && ($1 ~ /app="hello"/ || $1 ~ /fn="split_file"/) { n -= $2 }
    END { print n - 1 }'
}
HZ=$(getconf CLK_TCK)
report() {  # PAGE B0 B1 N0 N1 R0 R1: one row
  python3 - "$@" "$SECS" "$HZ" <<'PY'
import sys
page, b0, b1, n0, n1, r0, r1, secs, hz = sys.argv[1:]
secs, hz = float(secs), float(hz)
ms = lambda a, b: (float(b) - float(a)) * 1000 / hz / secs
console = (float(r1) - float(r0)) / secs
print(f"| {page} | {ms(b0, b1):.1f} ms/s | {ms(n0, n1):.1f} ms/s | {console:.2f} |")
PY
}
echo "| page | Chromium CPU | node CPU | console requests/s |"
echo "|---|---|---|---|"
n0=$(cpu_ticks "$NODE") r0=$(not_load)
sleep "$SECS"
report "(console closed)" 0 0 "$n0" "$(cpu_ticks "$NODE")" "$r0" "$(not_load)"
for page in "${PAGES[@]}"; do
  taskset -c 1 node ui/tests/open_console.mjs "$URL" "$TMP/data/admin.token" "$page" \
    >"$TMP/browser.log" 2>&1 &
  BROWSER=$!
  for _ in $(seq 1 300); do grep -q 'console open' "$TMP/browser.log" && break; sleep 0.1; done
  grep -q 'console open' "$TMP/browser.log" || { cat "$TMP/browser.log" >&2; exit 1; }
  sleep 5  # past the page's first loads: the steady auto-refresh
  mapfile -t procs < <(descendants "$BROWSER")
  b0=$(cpu_ticks "${procs[@]}") n0=$(cpu_ticks "$NODE")
  r0=$(not_load)
  sleep "$SECS"
  mapfile -t procs < <(descendants "$BROWSER")
  b1=$(cpu_ticks "${procs[@]}") n1=$(cpu_ticks "$NODE")
  r1=$(not_load)
  kill "$BROWSER"
  wait "$BROWSER" 2>/dev/null || true
  BROWSER=
  report "$page" "$b0" "$b1" "$n0" "$n1" "$r0" "$r1"
  sleep 1
done
