#!/usr/bin/env bash
# Issue 11's RESULTS row: the Rust and C++ word_count apps on the same text
# through the real node, side by side in one run. One `waverless dev` node
# serves both (apps/word_count, C++, as CMake built it; apps/word_count_rs,
# Rust, built here with `waverless build` if stale); each run POSTs the text
# to one then the other (alternating, after one untimed warm-up each), and
# every answer must equal wc_native's count of the same text byte for byte.
#
#   bench/langs/word_count_rs.sh [--mb N] [--runs N]   (default: 100 MB, 5 runs)
#
# Prints a markdown table: end-to-end median (upload included) and the mean
# time inside split_file and count_slice from the node's metrics, per app.
# Raw outputs stay in bench/out/langs-*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=100
RUNS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --mb) MB="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    *) echo "usage: $0 [--mb N] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
BIN=build/waverless
WC_NATIVE=build/bench/wc_native
CPP_WASM=build/apps/word_count/app.wasm
for f in "$BIN" "$WC_NATIVE" "$CPP_WASM"; do
  [ -e "$f" ] || { echo "$f is missing: build first (scripts/build.sh)" >&2; exit 1; }
done
OUT=bench/out/langs-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/apps" bench/out/data
TEXT=bench/out/data/text_${MB}mb.txt
[ -f "$TEXT" ] || "$WC_NATIVE" gen $((MB << 20)) "$TEXT"
"$WC_NATIVE" count "$TEXT" "$OUT/native.json" >/dev/null

"$BIN" build apps/word_count_rs >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; exit 1; }
for app in word_count word_count_rs; do
  mkdir -p "$OUT/apps/$app"
  cp -r apps/$app/app.yaml apps/$app/files "$OUT/apps/$app/"
done
cp "$CPP_WASM" "$OUT/apps/word_count/app.wasm"
cp apps/word_count_rs/app.wasm "$OUT/apps/word_count_rs/app.wasm"

PORT=25820
"$BIN" dev --addr 127.0.0.1:$PORT --data "$OUT/data" --apps "$OUT/apps" --cache "$OUT/cache" \
  --max-body $(((MB + 16) << 20)) >"$OUT/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null || true' EXIT
URL=http://127.0.0.1:$((PORT + 1))
for _ in $(seq 600); do
  curl -sf $URL/healthz >/dev/null && break
  kill -0 $NODE 2>/dev/null || break
  sleep 0.5
done
curl -sf $URL/healthz >/dev/null || { echo "the node did not start; see $OUT/node.log" >&2; exit 1; }

# call APP TAG -> prints the seconds the request took; its answer must be
# the native count.
call() {
  local app=$1 tag=$2 code secs
  read -r code secs < <(curl -s -o "$OUT/$tag.json" -w '%{http_code} %{time_total}\n' \
                          --data-binary @"$TEXT" $URL/$app)
  if [ "$code" != 200 ] || ! cmp -s "$OUT/$tag.json" "$OUT/native.json"; then
    echo "$app answered $code, not the native count; see $OUT/$tag.json and $OUT/node.log" >&2
    exit 1
  fi
  echo "$secs"
}

call word_count warmup_cpp >/dev/null
call word_count_rs warmup_rs >/dev/null
: >"$OUT/cpp.txt"
: >"$OUT/rs.txt"
for i in $(seq "$RUNS"); do
  call word_count cpp_$i >>"$OUT/cpp.txt"
  call word_count_rs rs_$i >>"$OUT/rs.txt"
done
curl -s -H "Authorization: Bearer $(cat "$OUT/data/admin.token")" $URL/metrics >"$OUT/metrics.txt"

python3 - "$OUT" "$MB" "$RUNS" <<'PY'
import re, statistics, sys
out, mb, runs = sys.argv[1], sys.argv[2], sys.argv[3]
ms = {k: [1000 * float(x) for x in open("%s/%s.txt" % (out, k)).read().split()] for k in ("cpp", "rs")}
metrics = open(out + "/metrics.txt").read()

def fn_mean_ms(app, fn):
    def total(name):
        s = 0.0
        for line in metrics.splitlines():
            if line.startswith(name + "{") and 'app="%s"' % app in line and 'fn="%s"' % fn in line:
                s += float(line.rsplit(" ", 1)[1])
        return s
    n = total("wl_invocation_seconds_count")
    return 1000 * total("wl_invocation_seconds_sum") / n if n else float("nan")

cpp, rs = statistics.median(ms["cpp"]), statistics.median(ms["rs"])
print("word_count on %s MB through the node, %s runs each (median; answers equal the native count)\n" % (mb, runs))
print("| app | end to end | split_file (mean, warm-up incl.) | count_slice (mean) | vs C++ |")
print("|---|---|---|---|---|")
for name, app, med in (("C++ (apps/word_count)", "word_count", cpp), ("Rust (apps/word_count_rs)", "word_count_rs", rs)):
    print("| %s | %.0f ms | %.0f ms | %.1f ms | %.2fx |" % (
        name, med, fn_mean_ms(app, "split_file"), fn_mean_ms(app, "count_slice"), med / cpp))
print("\nraw: %s" % out)
PY
