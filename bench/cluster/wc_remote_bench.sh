#!/usr/bin/env bash
# word_count with the store where a serverless platform keeps it: on another
# host. Three network namespaces on one bridge (created and removed here):
#
#   client   the caller: curl for Waverless, wc_driver for the pipeline
#   compute  the function host: a Waverless node (its KV is integrated: slices
#            never leave the host) and the pipeline's functions (wc_functions)
#   store    redis-server, persistence off (its fastest)
#
# Every veth end is shaped with tbf at the link rate of the row (unshaped:
# veth at memory speed). The pipeline moves the text three times over the
# network (caller → split, split → Redis, Redis → count); Waverless once
# (caller → node), or not at all when the text is already stored.
# Answers are compared byte for byte. Needs root. Prints Markdown.
#
# usage: bench/cluster/wc_remote_bench.sh [--quick]   (after bench/run built build/bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/build/waverless
BB=$PWD/build/bench
SIZES="10 100"; RUNS=3; RATES="none 10gbit 1gbit"
[ "${1:-}" = "--quick" ] && { SIZES="10"; RATES="none 1gbit"; }
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root for network namespaces"; exit 0; }
for b in "$BIN" "$BB/wc_functions" "$BB/wc_driver" "$BB/wc_native"; do
  [ -x "$b" ] || { echo "missing $b: run bench/run (or scripts/build.sh with libhiredis-dev) first"; exit 1; }
done
command -v redis-server >/dev/null || { echo "missing redis-server: run bench/run first"; exit 1; }
source scripts/netns_hosts.sh
TAG=wr$$
NET=10.79.$(( $$ % 200 ))
CLIENT=1; COMPUTE=2; STORE=3
WORK=$(mktemp -d /tmp/wl-wcremote-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  netns_down "$TAG" 3
  rm -rf "$WORK"
}
trap cleanup EXIT
netns_up "$TAG" "$NET" 3
# exec: when backgrounded, $! is then the command itself (cleanup kills it),
# not a subshell whose child would outlive the run.
in_ns() { local n=$1; shift; exec ip netns exec "$TAG-n$n" "$@"; }
shape() { netns_shape "$TAG" 3 "$1"; }  # none | RATE

# Inputs: the suite's generated texts when present (same words as its rows).
mkdir -p "$WORK/apps"
cp -r apps/word_count "$WORK/apps/"
cp build/apps/word_count/app.wasm "$WORK/apps/word_count/" 2>/dev/null || true
for mb in $SIZES; do
  t=bench/out/data/text_${mb}mb.txt
  [ -f "$t" ] || { mkdir -p bench/out/data; "$BB/wc_native" gen $((mb << 20)) "$t"; }
  cp -r "$WORK/apps/word_count" "$WORK/apps/wc$mb"
  cp "$t" "$WORK/apps/wc$mb/files/input.txt"
done

# Waverless on the compute host, the pipeline's functions beside it, Redis on the store host.
in_ns $COMPUTE "$BIN" dev --addr "$NET.$COMPUTE:2500" --data "$WORK/wl" --apps "$WORK/apps" \
  --cache "$PWD/build/module-cache" --max-body $((512 << 20)) >"$WORK/wl.log" 2>&1 & PIDS+=($!)
in_ns $STORE redis-server --port 6379 --bind "$NET.$STORE" --save "" --appendonly no \
  --protected-mode no --dir "$WORK" >"$WORK/redis.log" 2>&1 & PIDS+=($!)
in_ns $COMPUTE "$BB/wc_functions" 8080 "$NET.$STORE:6379" 4 "$NET.$COMPUTE" >"$WORK/fn.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 600); do
  (in_ns $CLIENT curl -fs "http://$NET.$COMPUTE:2501/healthz") >/dev/null 2>&1 && break; sleep 0.1
done
for _ in $(seq 1 300); do
  (in_ns $CLIENT curl -fs -H "Authorization: Bearer $(cat "$WORK/wl/admin.token" 2>/dev/null)" "http://$NET.$COMPUTE:2501/api/apps") 2>/dev/null | grep -q "wc${SIZES##* }" && break
  sleep 0.1
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Waverless: POST the text (body) or nothing (stored: the app's files/input.txt).
wl_once() {  # mb variant save -> seconds
  local url="http://$NET.$COMPUTE:2501/word_count" data=(--data-binary "@bench/out/data/text_$1mb.txt")
  [ "$2" = stored ] && { url="http://$NET.$COMPUTE:2501/wc$1"; data=(-X POST -H "content-length: 0"); }
  in_ns $CLIENT curl -s -o "$3" -w "%{time_total} %{http_code}\n" -H "Expect:" "${data[@]}" "$url" |
    awk '$2 != 200 { print "waverless answered " $2 > "/dev/stderr"; exit 1 } { print $1 * 1000 }'
}
wl_ms() {  # mb variant -> median ms of RUNS (after one warm-up)
  wl_once "$1" "$2" "$WORK/wl.out" >/dev/null
  for _ in $(seq $RUNS); do wl_once "$1" "$2" "$WORK/wl.out"; done | median
}
redis_ms() {  # mb variant -> median ms of RUNS (the driver's first run is the warm-up)
  in_ns $CLIENT "$BB/wc_driver" --target "$NET.$COMPUTE:8080" --input "bench/out/data/text_$1mb.txt" \
    --runs $((RUNS + 1)) --fanout 4 --save "$WORK/redis.out" --stored "$([ "$2" = stored ] && echo yes || echo no)" |
    python3 -c 'import json,sys,statistics; print(statistics.median(json.load(sys.stdin)["ms"][1:]))'
}

echo "| link | input | Waverless | Redis pipeline (store on its own host) | Redis ÷ Waverless | answers agree |"
echo "|---|---|---|---|---|---|"
for rate in $RATES; do
  shape "$rate"
  for mb in $SIZES; do
    for variant in body stored; do
      W=$(wl_ms "$mb" "$variant")
      R=$(redis_ms "$mb" "$variant")
      if cmp -s <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' "$WORK/wl.out") \
                <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' "$WORK/redis.out"); then
        same=yes
      else
        same=NO
      fi
      awk -v r="$rate" -v mb="$mb" -v v="$variant" -v w="$W" -v x="$R" -v s="$same" \
        'BEGIN { printf "| %s | %d MB, %s | %.0f ms | %.0f ms | %.2f× | %s |\n", (r == "none" ? "veth, unshaped" : "tbf " r), mb, v, w, x, x / w, s }'
    done
  done
done
shape none
