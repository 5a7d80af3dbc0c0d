#!/usr/bin/env bash
# Instance snapshots (issue 11 part 3), side by side in one run:
#  1. engine level (build/bench/snapshot_bench): cold start of an app whose
#     wl_init builds a 64 MiB table, with and without the snapshot; warm
#     hello under instance: fresh against reuse; memory per idle instance;
#  2. over HTTP (a real `waverless dev` on cpu 0, wrk on cpu 1): warm hello
#     (apps/hello, and the 64 MiB table app's hello) with instance: fresh
#     against reuse, alternating, the target being >= 0.8x.
#
#   bench/snapshot/run.sh [--quick]      (build dir: $BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
QUICK=${1:-}
cmake --build "$BUILD_DIR" --target snapshot_bench waverless demo_apps >/dev/null
"$BUILD_DIR/bench/snapshot_bench" $QUICK

command -v wrk >/dev/null || { echo "(no wrk: HTTP rows skipped)"; exit 0; }
WL="$BUILD_DIR/waverless"
TMP=$(mktemp -d)
trap 'kill "$NODE" 2>/dev/null || true; rm -rf "$TMP"' EXIT
# The same module twice, as reuse and as fresh.
stage() {  # name wasm fn path fresh
  mkdir -p "$TMP/apps/$1"
  cp "$2" "$TMP/apps/$1/app.wasm"
  printf 'fns:\n  %s:\n    event:\n    - http: {method: GET, path: /%s}\n%s' "$3" "$4" \
    "$([ "$5" = fresh ] && printf '    instance: fresh\n')" > "$TMP/apps/$1/app.yaml"
}
stage hello "$BUILD_DIR/apps/hello/app.wasm" fn2 hello reuse
stage hellofresh "$BUILD_DIR/apps/hello/app.wasm" fn2 hello fresh
stage table "$BUILD_DIR/bench/snapshot/table_snap.wasm" hello hello reuse
stage tablefresh "$BUILD_DIR/bench/snapshot/table_snap.wasm" hello hello fresh
PORT=$((20000 + (RANDOM % 2500) * 4))
taskset -c 0 "$WL" dev --addr "127.0.0.1:$PORT" --data "$TMP/data" --apps "$TMP/apps" \
  --cache "$TMP/cache" >"$TMP/node.log" 2>&1 &
NODE=$!
URL="http://127.0.0.1:$((PORT + 1))"
for _ in $(seq 1 120); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 1; done
SECS=$([ "$QUICK" = --quick ] && echo 3 || echo 10)
ROUNDS=$([ "$QUICK" = --quick ] && echo 3 || echo 5)
rps() { taskset -c 1 wrk -t1 -c16 -d"${SECS}s" "$URL/$1/hello" | awk '/Requests\/sec/ {print $2}'; }
echo
echo "| over HTTP (wrk -c16, ${ROUNDS} alternating rounds of ${SECS} s, median) | req/s | fresh ÷ reuse (target ≥ 0.8×) |"
echo "|---|---|---|"
for pair in "hello hellofresh" "table tablefresh"; do
  set -- $pair
  r=(); f=()
  for _ in $(seq 1 "$ROUNDS"); do r+=("$(rps "$1")"); f+=("$(rps "$2")"); done
  python3 - "$1" "${r[*]}" "${f[*]}" <<'PY'
import statistics, sys
name, r, f = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
label = {"hello": "apps/hello", "table": "64 MiB snapshot app's hello"}[name]
print("| %s, reuse | %.0f | |" % (label, statistics.median(r)))
print("| %s, instance: fresh | %.0f | %.2f× |" % (label, statistics.median(f), statistics.median(f) / statistics.median(r)))
PY
done
