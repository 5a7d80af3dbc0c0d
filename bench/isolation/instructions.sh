#!/usr/bin/env bash
# Instructions per warm GET /hello, counted by callgrind: repeatable on a
# shared, noisy machine where req/s drift. The node runs under valgrind with
# one executor thread; loadgen sends 2,000 req/s for 5 s and for 10 s, and
# the difference of the two totals over the difference in requests is the
# cost of one request (start-up and shutdown cancel out).
#
#   bench/isolation/instructions.sh [BINARY ...]   (default: build/waverless)
#
# With two binaries, bench/isolation/cgdiff.py on the run's folder shows
# which functions the difference is in.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
LOADGEN=build/bench/loadgen
OUT=bench/out/instructions-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/apps"
cp -r apps/hello "$OUT/apps/hello" && cp build/apps/hello/app.wasm "$OUT/apps/hello/"
[ $# -gt 0 ] || set -- build/waverless

# total BINARY SECONDS -> "Ir ok"
total() {
  local bin=$1 secs=$2 tag=$RANDOM
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$tag" "$bin" dev \
    --addr 127.0.0.1:25700 --data "$OUT/data-$tag" --apps "$OUT/apps" --cache "$OUT/cache" \
    --workers 1 >"$OUT/vg.$tag.log" 2>&1 &
  local vg=$!
  for _ in $(seq 240); do curl -sf localhost:25701/healthz >/dev/null && break; sleep 0.5; done
  curl -sf localhost:25701/hello >/dev/null
  local ok
  ok=$(taskset -c 1 "$LOADGEN" --target 127.0.0.1:25701 --path /hello --rate 2000 \
         --duration "$secs" --conns 8 --drain 20 2>/dev/null |
       python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["ok"])')
  kill -TERM $vg
  wait $vg || true
  echo "$(sed -n 's/.*Collected : //p' "$OUT/vg.$tag.log" | tail -1) $ok"
}

for bin in "$@"; do
  read -r a na < <(total "$bin" 5)
  read -r b nb < <(total "$bin" 10)
  echo "$bin: $(( (b - a) / (nb - na) )) instructions per warm hello ($((nb - na)) requests)"
done
