#!/usr/bin/env bash
# Cluster benchmarks (issue #4), each against its single-node or other-policy
# comparison in the same run:
#   1. longchain hop latency: single node vs 2 workers (hops cross nodes)
#   2. word_count 20 MB: 1 worker vs 2 workers
#   3. bytes moved between nodes on word_count: random vs data-aware
# Nodes run on loopback as separate processes. Prints a Markdown section.
#
# usage: bench/cluster/cluster_bench.sh [--quick]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=build/waverless
REPS=15; MB=20
[ "${1:-}" = "--quick" ] && { REPS=5; MB=8; }
WORK=$(mktemp -d /tmp/wl-clbench-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/apps"
# Every node of a cluster shares one admin token file: the raft ports' handshake proves a secret
# derived from it, so nodes with tokens of their own never elect a group leader.
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/admin.token"
for a in hello longchain word_count; do
  cp -r apps/$a "$WORK/apps/"; cp build/apps/$a/app.wasm "$WORK/apps/$a/"
done
python3 - "$WORK/text.txt" "$MB" <<'PY'
import random, sys
random.seed(5)
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
out, size = [], 0
target = int(sys.argv[2]) << 20
while size < target:
    line = " ".join(random.choice(words) for _ in range(12)) + "\n"
    out.append(line); size += len(line)
open(sys.argv[1], "w").write("".join(out))
PY

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
wait_http() { for _ in $(seq 1 600); do curl -fs "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

# Starts a cluster: master on 4500 (+ worker role when colocated), workers on
# 4600 and 4700. cluster WORKERS SCHEDULER [colocated]
cluster() {
  local n=$1 sched=$2 colo=${3:-}
  local dir=$WORK/c-$n-$sched$colo
  mkdir -p "$dir"
  local mspec="[meta, master]" ids
  if [ -n "$colo" ]; then mspec="[meta, master, worker]"; fi
  { echo "scheduler: $sched"; echo "nodes:"; echo "  1: {addr: 127.0.0.1:4500, spec: $mspec}"
    echo "  2: {addr: 127.0.0.1:4600, spec: [meta, worker]}"
    [ "$n" -ge 2 ] && [ -z "$colo" ] && echo "  3: {addr: 127.0.0.1:4700, spec: [meta, worker]}"; } >"$dir/cluster.yaml"
  ids=$(grep -o '^  [0-9]' "$dir/cluster.yaml" | tr -d ' ' | grep -v '^1$')
  for id in $ids; do
    $BIN node --config "$dir/cluster.yaml" --id $id --data "$dir/d$id" --cache build/module-cache \
      --token-file "$WORK/admin.token" >"$dir/n$id.log" 2>&1 & PIDS+=($!)
  done
  $BIN node --config "$dir/cluster.yaml" --id 1 --data "$dir/d1" --cache build/module-cache \
    --token-file "$WORK/admin.token" --apps "$WORK/apps" >"$dir/n1.log" 2>&1 & PIDS+=($!)
  wait_http http://127.0.0.1:4501
  local want
  want=$(grep -c '^  [0-9]' "$dir/cluster.yaml")
  for _ in $(seq 1 100); do
    [ "$(curl -s -H "Authorization: Bearer $(cat "$WORK/admin.token")" http://127.0.0.1:4501/api/nodes | grep -o '"alive":true' | wc -l)" -ge "$want" ] && break
    sleep 0.1
  done
  sleep 1
}
net_bytes() {  # total bytes sent between nodes, all nodes
  local t=0
  for port in 4501 4601 4701; do
    local b
    # Each stream message is counted once, by the client side of the stream
    # (requests as sent, replies as received): the sum over nodes of both
    # directions is every byte that crossed between nodes.
    b=$(curl -s http://127.0.0.1:$port/metrics 2>/dev/null | awk '/^wl_net_bytes\{/ {s+=$2} END {printf "%d", s+0}')
    t=$((t + ${b%.*}))
  done
  echo $t
}
time_req() {  # url data-file -> seconds
  curl -s -o /dev/null -w "%{time_total}\n" --data-binary @"$2" "$1"
}

echo "x" >"$WORK/chain.txt"
# --- 1. longchain: single node vs cluster ---
$BIN dev --addr 127.0.0.1:4800 --data "$WORK/dev" --cache build/module-cache --apps "$WORK/apps" \
  >"$WORK/dev.log" 2>&1 & PIDS+=($!)
wait_http http://127.0.0.1:4801
for _ in 1 2 3; do time_req http://127.0.0.1:4801/longchain "$WORK/chain.txt" >/dev/null; done
SINGLE=$(for _ in $(seq $REPS); do time_req http://127.0.0.1:4801/longchain "$WORK/chain.txt"; done | median)
WC1NODE=$(for _ in $(seq 3); do time_req http://127.0.0.1:4801/word_count "$WORK/text.txt"; done | median)
stop_all

cluster 2 data-aware
for _ in 1 2 3; do time_req http://127.0.0.1:4501/longchain "$WORK/chain.txt" >/dev/null; done
CROSS=$(for _ in $(seq $REPS); do time_req http://127.0.0.1:4501/longchain "$WORK/chain.txt"; done | median)
time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null
B0=$(net_bytes)
WC2=$(for _ in $(seq 3); do time_req http://127.0.0.1:4501/word_count "$WORK/text.txt"; done | median)
B1=$(net_bytes)
AWARE=$(( (B1 - B0) / 3 ))
stop_all

cluster 1 data-aware
time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null
WC1=$(for _ in $(seq 3); do time_req http://127.0.0.1:4501/word_count "$WORK/text.txt"; done | median)
stop_all

cluster 2 random
time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null
B0=$(net_bytes)
for _ in 1 2 3; do time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null; done
B1=$(net_bytes)
RANDOM_BYTES=$(( (B1 - B0) / 3 ))
stop_all

# Master also a worker: requests can start where their body arrives.
bytes_colocated() {  # scheduler
  cluster 2 "$1" colocated
  time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null
  local b0 b1
  b0=$(net_bytes)
  for _ in 1 2 3; do time_req http://127.0.0.1:4501/word_count "$WORK/text.txt" >/dev/null; done
  b1=$(net_bytes)
  stop_all
  echo $(( (b1 - b0) / 3 ))
}
AWARE_CO=$(bytes_colocated data-aware)
RANDOM_CO=$(bytes_colocated random)

TEXT_BYTES=$(stat -c %s "$WORK/text.txt")
awk -v s="$SINGLE" -v c="$CROSS" -v w1="$WC1" -v w2="$WC2" -v d1="$WC1NODE" -v a="$AWARE" -v r="$RANDOM_BYTES" \
    -v t="$TEXT_BYTES" -v reps="$REPS" -v mb="$MB" -v ac="$AWARE_CO" -v rc="$RANDOM_CO" 'BEGIN {
  printf "| case | result | comparison (same run) | ratio | target |\n|---|---|---|---|---|\n"
  printf "| longchain per hop, 2 workers (hops cross nodes), median of %d | %.1f µs | single node: %.1f µs | %.2f× | ≤ 300 µs |\n", reps, c*1e6/100, s*1e6/100, c/s
  printf "| word_count %d MB, master + 2 workers | %.3f s | master + 1 worker: %.3f s | %.2f× faster | (scaling) |\n", mb, w2, w1, w1/w2
  printf "| word_count %d MB, single node (dev) | %.3f s | | | (info) |\n", mb, d1
  printf "| bytes between nodes per word_count, 2 nodes, master also a worker: data-aware | %.1f MB (%.2f× input) | random: %.1f MB (%.2f× input) | random / data-aware = %.2f× | ≥ 2× |\n", ac/1048576, ac/t, rc/1048576, rc/t, (ac > 0 ? rc/ac : 0)
  printf "| bytes between nodes per word_count, dedicated master + 2 workers: data-aware | %.1f MB (%.2f× input) | random: %.1f MB (%.2f× input) | random / data-aware = %.2f× | (body must cross once) |\n", a/1048576, a/t, r/1048576, r/t, (a > 0 ? r/a : 0)
}'
