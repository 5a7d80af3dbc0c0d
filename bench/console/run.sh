#!/usr/bin/env bash
# Console overhead (issue 12): warm hello throughput of a `waverless dev`
# node with the web console open and auto-refreshing (headless Chromium,
# ui/tests/open_console.mjs: the metrics page and apps/hello's page, each in
# its own tab, polling as a visible page does) against the console closed.
# Node on cpu 0; wrk and Chromium on cpu 1 (two cores: the browser has to
# share with the load generator; it idles between polls). Rounds alternate
# closed/open so drift from other load on the machine hits both alike.
#
#   bench/console/run.sh [ROUNDS] [SECONDS]      (default 7 rounds of 10 s)
#   (build dir: $BUILD_DIR, default build; needs wrk, chromium, ui/node_modules)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
ROUNDS=${1:-7} SECS=${2:-10}
WL="$BUILD_DIR/waverless"
[ -f "$BUILD_DIR/ui/index.html" ] || { echo "no console in $BUILD_DIR/ui: scripts/build.sh" >&2; exit 1; }
[ -d ui/node_modules/playwright-core ] || { echo "no ui/node_modules: scripts/build.sh" >&2; exit 1; }
TMP=$(mktemp -d)
NODE= BROWSER=
trap 'kill $BROWSER $NODE 2>/dev/null || true; sleep 0.5; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/apps/hello"
cp apps/hello/app.yaml "$BUILD_DIR/apps/hello/app.wasm" "$TMP/apps/hello/"
PORT=$((20000 + (RANDOM % 2500) * 4))
taskset -c 0 "$WL" dev --addr "127.0.0.1:$PORT" --data "$TMP/data" --apps "$TMP/apps" \
  --cache "$TMP/cache" >"$TMP/node.log" 2>&1 &
NODE=$!
URL="http://127.0.0.1:$((PORT + 1))"
for _ in $(seq 1 120); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 1; done
curl -sf "$URL/hello" >/dev/null
# "req/s requests" of one wrk run
wrk_run() { taskset -c 1 wrk -t1 -c16 -d"${SECS}s" "$URL/hello" |
  awk '/requests in/ {n = $1} /Requests\/sec/ {print $2, n}'; }
rps() { wrk_run | cut -d' ' -f1; }
served() {  # every HTTP request the node has counted
  curl -s "$URL/metrics" | awk '$1 == "wl_http_requests_total" {print $2}'
}
open_console() {
  taskset -c 1 node ui/tests/open_console.mjs "$URL" "$TMP/data/admin.token" metrics apps/hello \
    >"$TMP/browser.log" 2>&1 &
  BROWSER=$!
  for _ in $(seq 1 300); do grep -q 'console open' "$TMP/browser.log" && break; sleep 0.1; done
  grep -q 'console open' "$TMP/browser.log" || { cat "$TMP/browser.log" >&2; exit 1; }
  sleep 3  # past the pages' first loads: measure the steady auto-refresh
}
close_console() { kill "$BROWSER"; wait "$BROWSER" 2>/dev/null || true; BROWSER=; sleep 1; }
closed=() open=() polls=()
rps >/dev/null  # warm-up
for r in $(seq 1 "$ROUNDS"); do
  closed+=("$(rps)")
  open_console
  before=$(served)
  read -r o n < <(wrk_run)
  open+=("$o")
  # the console's own requests meanwhile: what the node served beyond wrk's
  polls+=("$(( $(served) - before - n - 1 ))")
  close_console
  echo "round $r: closed ${closed[-1]} req/s, open ${open[-1]} req/s (console requests during the run: ${polls[-1]})" >&2
done
# The same question without wrk's noise: the CPU time the node itself
# spends (utime + stime from /proc) while idle, console open against closed.
# On a CPU-bound node this is what the console takes from the functions.
node_cpu_ms() { awk '{print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$NODE/stat"; }
idle_cpu() {  # ms of node CPU per second over SECS*2 seconds
  local a b; a=$(node_cpu_ms); sleep $((SECS * 2)); b=$(node_cpu_ms)
  echo "($b - $a) / ($SECS * 2)" | bc -l
}
idle_closed=() idle_open=()
for r in 1 2 3; do
  idle_closed+=("$(idle_cpu)")
  open_console
  idle_open+=("$(idle_cpu)")
  close_console
  echo "idle $r: node CPU closed ${idle_closed[-1]} ms/s, open ${idle_open[-1]} ms/s" >&2
done
python3 - "${idle_closed[*]}" "${idle_open[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
o = [float(x) for x in sys.argv[2].split()]
d = statistics.median(o) - statistics.median(c)
print("| node CPU time, no load | closed | open | what the console costs |")
print("|---|---|---|---|")
print(f"| idle node CPU (3 alternating rounds) | {statistics.median(c):.2f} ms/s | {statistics.median(o):.2f} ms/s | console: **{d:.2f} ms of CPU per second = {d / 10:.2f} % of one core** |")
PY
[ "$ROUNDS" -gt 0 ] || exit 0
echo
python3 - "${closed[*]}" "${open[*]}" "$SECS" "$ROUNDS" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
o = [float(x) for x in sys.argv[2].split()]
secs, rounds = sys.argv[3], sys.argv[4]
ratios = [b / a for a, b in zip(c, o)]
mc, mo = statistics.median(c), statistics.median(o)
print(f"| warm hello, wrk -t1 -c16, {rounds} alternating rounds of {secs} s | closed | open | open ÷ closed |")
print("|---|---|---|---|")
print(f"| median req/s | {mc:,.0f} | {mo:,.0f} | **{mo / mc:.3f}** |")
print(f"| range req/s | {min(c):,.0f}–{max(c):,.0f} | {min(o):,.0f}–{max(o):,.0f} | per round {min(ratios):.3f}–{max(ratios):.3f} (median {statistics.median(ratios):.3f}) |")
PY
