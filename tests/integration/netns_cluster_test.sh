#!/usr/bin/env bash
# A 3-node cluster whose nodes run in separate network namespaces with their
# own IPs (veth pairs on a bridge this test creates and removes). Checks
# cross-node results, then partitions a worker (its link dropped) and heals it.
#
# usage: netns_cluster_test.sh WAVERLESS_BINARY APPS_BUILD_DIR SOURCE_DIR CACHE_DIR
# exit 77 (skipped) without root or without network namespace support.
set -euo pipefail
BIN=$1 APPS_BUILD=$2 SRC=$3 CACHE=$4
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "SKIP: needs root and iproute2"; exit 77
fi
source "$SRC/scripts/netns_hosts.sh"
TAG=wl$$
WORK=$(mktemp -d /tmp/wl-netns-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  netns_down "$TAG" 3
  rm -rf "$WORK"
}
trap cleanup EXIT
if ! ip netns add "$TAG-probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces"; exit 77; fi
ip netns del "$TAG-probe"

NET=10.77.$(( $$ % 200 ))
netns_up "$TAG" "$NET" 3

cat >"$WORK/cluster.yaml" <<YAML
nodes:
  1: {addr: $NET.1:2500, spec: [meta, master]}
  2: {addr: $NET.2:2500, spec: [meta, worker]}
  3: {addr: $NET.3:2500, spec: [meta, worker]}
YAML
mkdir -p "$WORK/apps"
for a in hello longchain word_count; do
  cp -r "$SRC/apps/$a" "$WORK/apps/"
  cp "$APPS_BUILD/$a/app.wasm" "$WORK/apps/$a/app.wasm"
done

start() {  # node id, extra args...
  local id=$1; shift
  ip netns exec "$TAG-n$id" "$BIN" node --config "$WORK/cluster.yaml" --id "$id" \
    --data "$WORK/d$id" --cache "$CACHE" --token-file "$WORK/admin.token" "$@" \
    >>"$WORK/n$id.log" 2>&1 &
  PIDS+=($!)
  eval "PID$id=$!"
}
fail() { echo "FAIL: $*"; for i in 1 2 3; do echo "--- node $i"; tail -20 "$WORK/n$i.log"; done; exit 1; }
# One admin token for the whole cluster, made before any node starts.
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >"$WORK/admin.token")
AUTH="Authorization: Bearer $(cat "$WORK/admin.token")"
start 2; start 3; start 1 --apps "$WORK/apps"
M=http://$NET.1:2501
for _ in $(seq 1 600); do curl -fs "$M/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$M/healthz" >/dev/null || fail "master not healthy"
alive() { curl -s -H "$AUTH" "$M/api/nodes" | grep -o "\"id\":$1,[^}]*" | grep -q '"alive":true'; }
for _ in $(seq 1 100); do alive 2 && alive 3 && break; sleep 0.1; done
alive 2 && alive 3 || fail "workers did not join"
sleep 0.7

[ "$(curl -s "$M/hello")" = "hello world" ] || fail "hello"
OUT=$(curl -s -d 'Hello, netns!' "$M/longchain")
[ "$OUT" = '{"hops":100,"final":"Dahhk, japjo!"}' ] || fail "longchain: $OUT"
WC=$(curl -s --data-binary "one two two three three three" "$M/word_count")
[ "$WC" = '{"one":1,"three":3,"two":2}' ] || fail "word_count: $WC"
# The workers talked to each other over their own IPs.
curl -s -H "$AUTH" "http://$NET.2:2501/metrics" | grep -q 'wl_net_bytes{peer="3",dir="sent"}' || fail "no peer metrics"

# Partition worker 3: its link is cut, its traffic dropped.
ip link set "$TAG-h3" down
T0=$(date +%s%N)
while alive 3; do
  [ $(( ($(date +%s%N) - T0) / 1000000 )) -gt 5000 ] && fail "partitioned node still alive after 5 s"
  sleep 0.05
done
MS=$(( ($(date +%s%N) - T0) / 1000000 ))
echo "partitioned node left scheduling after ${MS} ms"
[ "$MS" -le 3000 ] || fail "detection took ${MS} ms (> 3 s)"
sleep 0.3
for i in $(seq 1 10); do
  [ "$(curl -s -m 10 "$M/hello")" = "hello world" ] || fail "hello during partition ($i)"
done

# Heal: it rejoins on its own.
ip link set "$TAG-h3" up
for _ in $(seq 1 100); do alive 3 && break; sleep 0.1; done
alive 3 || fail "node 3 did not rejoin after the partition healed"
echo "PASS"
