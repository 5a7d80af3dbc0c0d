#!/usr/bin/env bash
# The replicated KV (issue 10) measured side by side, in one run:
#   1. kv_set throughput (closed loop) and latency (open loop) on 3 replicas, against
#      `durability: local` and against a 3-member etcd cluster (Debian etcd-server), and etcd's
#      own gRPC put load (`etcdctl check perf`: Debian ships no etcd `benchmark` tool);
#   2. longchain per hop, keys replicated vs local;
#   3. word_count 100 MB, slices local (its app.yaml) vs replicated;
#   4. failover: kill -9 of a group leader -> first successful write, against etcd's leader;
#   5. RSS and CPU per idle hosted group, shards: 256 vs 8 on 5 workers.
#
#   bench/replication/run.sh [--quick] [--only kvset,etcdperf,longchain,word_count,failover,idle]
#                            [--shards N] [--no-build] [--write]
#
# --quick: short runs of every case (~5 minutes once built). --shards: placement groups of the
# 3-worker cluster (default 64; `--only kvset --shards 1` shows what batching across groups is
# worth). --write: replace this bench's section of bench/RESULTS.md (between its marker comments)
# with the run's. Scratch output (logs, etcd and node data, results.json, section.md):
# bench/out/replication-<stamp>/.
# Every process it starts is killed at exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1 write=0 args=()
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --write) write=1 ;;
    *) args+=("$a") ;;
  esac
done

log() { printf '[replication] %s\n' "$*" >&2; }

# etcd (3.4 in Debian 12) and etcdctl, plus wrk for the closed loop: bench-only packages.
missing=()
for p in etcd-server etcd-client wrk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  # policy-rc.d may refuse the package's own etcd service; it must not run anyway (ports).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
if [ "$build" = 1 ]; then
  scripts/install-deps.sh
  [ -f "$BUILD_DIR/build.ninja" ] || BUILD_DIR=$BUILD_DIR scripts/build.sh
  log "building (ninja bench_replication)"
  nice -n 10 cmake --build "$BUILD_DIR" --target bench_replication
fi

OUT=bench/out/replication-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cleanup() {
  if [ -f "$OUT/pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$OUT/pids"
  fi
  # Node and etcd data (hundreds of MB with word_count): logs and results stay.
  rm -rf "$OUT"/wl/d* "$OUT"/etcd/e? "$OUT"/idle-*/d* "$OUT"/apps "$OUT"/text.txt
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
start=$(date +%s)
cmd="bench/replication/run.sh${args[*]:+ ${args[*]}}"
BUILD_DIR=$BUILD_DIR python3 bench/replication/replbench.py --out "$OUT" --command "$cmd" \
  "${args[@]}" | tee "$OUT/section.out.md"
log "done in $(( $(date +%s) - start )) s: $OUT"

if [ "$write" = 1 ]; then
  python3 bench/replication/write_results.py "$OUT"
  log "bench/RESULTS.md section rewritten"
fi
