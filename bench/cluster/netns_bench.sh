#!/usr/bin/env bash
# Cross-node cases under network conditions: two nodes in their own network
# namespaces (veth + bridge created and removed here), links shaped with tc.
# Bandwidth limits use tbf; delay needs sch_netem, and where the kernel lacks
# it those rows are skipped with a message. Needs root. Prints Markdown.
#
# usage: bench/cluster/netns_bench.sh [--quick]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/build/waverless
REPS=7; MB=8
[ "${1:-}" = "--quick" ] && { REPS=3; MB=4; }
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root for network namespaces"; exit 0; }
source scripts/netns_hosts.sh
TAG=wb$$
NET=10.78.$(( $$ % 200 ))
WORK=$(mktemp -d /tmp/wl-nsbench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  netns_down "$TAG" 2
  rm -rf "$WORK"
}
trap cleanup EXIT
netns_up "$TAG" "$NET" 2
mkdir -p "$WORK/apps"
for a in longchain word_count; do cp -r apps/$a "$WORK/apps/"; cp build/apps/$a/app.wasm "$WORK/apps/$a/"; done
python3 - "$WORK/text.txt" "$MB" <<'PY'
import random, sys
random.seed(5)
w = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
t, n = [], 0
while n < int(sys.argv[2]) << 20:
    l = " ".join(random.choice(w) for _ in range(12)) + "\n"; t.append(l); n += len(l)
open(sys.argv[1], "w").write("".join(t))
PY
echo x >"$WORK/x.txt"
# One admin token file for both nodes: the raft ports' handshake proves a secret derived from it.
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/admin.token"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
shape() { netns_shape "$TAG" 2 "$1"; }  # none | RATE
run_cluster() {  # scheduler
  local dir=$WORK/c-$1-$RANDOM
  mkdir -p "$dir"
  printf 'scheduler: %s\nnodes:\n  1: {addr: %s.1:2500, spec: [meta, master, worker]}\n  2: {addr: %s.2:2500, spec: [meta, worker]}\n' \
    "$1" "$NET" "$NET" >"$dir/cluster.yaml"
  ip netns exec "$TAG-n2" "$BIN" node --config "$dir/cluster.yaml" --id 2 --data "$dir/d2" \
    --cache "$PWD/build/module-cache" --token-file "$WORK/admin.token" >"$dir/n2.log" 2>&1 & PIDS+=($!)
  ip netns exec "$TAG-n1" "$BIN" node --config "$dir/cluster.yaml" --id 1 --data "$dir/d1" \
    --cache "$PWD/build/module-cache" --token-file "$WORK/admin.token" --apps "$WORK/apps" \
    >"$dir/n1.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 600); do curl -fs "http://$NET.1:2501/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  for _ in $(seq 1 100); do
    [ "$(curl -s -H "Authorization: Bearer $(cat "$WORK/admin.token")" "http://$NET.1:2501/api/nodes" | grep -o '"alive":true' | wc -l)" -ge 2 ] && break; sleep 0.1
  done
  sleep 1
}
stop_cluster() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
bytes() {
  local t=0 b
  for i in 1 2; do
    b=$(curl -s "http://$NET.$i:2501/metrics" | awk '/^wl_net_bytes\{/ {s+=$2} END {printf "%d", s+0}')
    t=$((t + b))
  done
  echo $t
}
req() { curl -s -o /dev/null -w "%{time_total}\n" --data-binary @"$2" "http://$NET.1:2501/$1"; }

echo "| link | scheduler | longchain per hop (median of $REPS) | word_count $MB MB (median of 3) | bytes between nodes per word_count |"
echo "|---|---|---|---|---|"
for rate in none 1gbit 100mbit; do
  shape "$rate"
  for sched in data-aware random; do
    run_cluster "$sched"
    req longchain "$WORK/x.txt" >/dev/null; req word_count "$WORK/text.txt" >/dev/null
    HOP=$(for _ in $(seq $REPS); do req longchain "$WORK/x.txt"; done | median)
    B0=$(bytes)
    WC=$(for _ in 1 2 3; do req word_count "$WORK/text.txt"; done | median)
    B1=$(bytes)
    stop_cluster
    awk -v r="$rate" -v s="$sched" -v h="$HOP" -v w="$WC" -v b=$(( (B1 - B0) / 3 )) \
      'BEGIN { printf "| %s | %s | %.1f µs | %.3f s | %.1f MB |\n", (r == "none" ? "veth, unshaped" : r), s, h*1e6/100, w, b/1048576 }'
  done
done
shape none
if ip netns exec "$TAG-n1" tc qdisc add dev eth0 root netem delay 1ms 2>/dev/null; then
  echo; echo "(netem is available: delay rows not yet scripted)"
else
  echo; echo "Delay cases (netem delay 0.5 ms / 2 ms): **skipped — this kernel has no sch_netem** (\`tc qdisc add ... netem\` → \"Specified qdisc kind is unknown\")."
fi
