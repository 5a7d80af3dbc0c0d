#!/usr/bin/env bash
# The Docker image and the 3-node compose cluster, for real, under a docker
# daemon this test starts itself (Debian's docker.io) and stops again:
#  - the base image is a debootstrap'd bookworm, `docker import`ed (no Docker
#    Hub here), given to deploy/docker/Dockerfile as --build-arg BASE;
#  - the daemon must leave the host's network alone: dockerd's defaults set
#    the iptables FORWARD policy to DROP and bridge-nf-call-iptables to 1,
#    which silently breaks the netns tests. It runs with --iptables=false
#    --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false, the
#    containers use host networking, and the test fails if FORWARD's policy,
#    bridge-nf-call-iptables or ip_forward differ afterwards;
#  - compose: Debian 12 has only docker-compose v1 (python; package
#    docker-compose). The `docker compose` v2 plugin is not packaged there.
# Then it calls hello and word_count through the cluster, on the master and
# on a worker. docs/deploy.md.
#
# usage: docker_test.sh BUILD_DIR SOURCE_DIR       (root; network to the Debian mirror)
set -euo pipefail
BUILD=$(realpath "$1") SRC=$(realpath "$2")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v dockerd >/dev/null && command -v docker-compose >/dev/null ||
  { echo "SKIP: needs docker.io and docker-compose (scripts/install-deps.sh --deploy)"; exit 77; }
source "$SRC/tests/deploy/lib.sh"
DOCKER=/usr/bin/docker  # Debian's client, matching the daemon
WORK=$(mktemp -d /tmp/wl-docker-XXXXXX)
export DOCKER_HOST=unix://$WORK/docker.sock
# The images stay between runs (the base and the waverless layers are reused).
DATA_ROOT=$WL_DEPLOY_CACHE/docker
PROJECT=wl$$
P=$((23000 + $$ % 300 * 10))  # node ports P, P+100, P+200 (each uses port..port+3)

host_net() {  # what dockerd must not change
  local fwd="" t
  # both backends: dockerd uses whichever `iptables` points at
  for t in iptables-legacy iptables-nft; do
    command -v $t >/dev/null && fwd+="$t:$($t -S FORWARD 2>/dev/null | head -1) "
  done
  echo "forward=[$fwd] bridge-nf=[$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent)] ip_forward=[$(cat /proc/sys/net/ipv4/ip_forward)]"
}
BEFORE=$(host_net)
DOCKERD=
cleanup() {
  set +e
  if [ -n "$DOCKERD" ]; then
    (cd "$WORK/compose" 2>/dev/null && docker-compose -p "$PROJECT" down -v -t 10 >/dev/null 2>&1)
    kill "$DOCKERD" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DOCKERD" 2>/dev/null
  fi
  # dockerd leaves its netns mount (exec/netns/default) behind
  awk -v d="$WORK" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  (cd "$WORK/compose" 2>/dev/null && docker-compose -p "$PROJECT" logs --tail 20) || true
  tail -20 "$WORK/dockerd.log" 2>/dev/null
  exit 1
}
step() { echo "== $(date +%T) $*"; }

step "dockerd (own socket and exec root; data root $DATA_ROOT)"
mkdir -p "$DATA_ROOT" "$WORK/exec"
dockerd --host "$DOCKER_HOST" --data-root "$DATA_ROOT" --exec-root "$WORK/exec" \
  --pidfile "$WORK/dockerd.pid" --iptables=false --ip6tables=false --ip-forward=false \
  --ip-masq=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
DOCKERD=$!
for _ in $(seq 1 150); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.2; done
$DOCKER version >/dev/null 2>&1 || fail "dockerd did not come up"
[ "$(host_net)" = "$BEFORE" ] || fail "dockerd changed the host's network: $BEFORE -> $(host_net)"

step "base image from debootstrap"
BASE=waverless-test-base:bookworm
if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
  $DOCKER import "$(deploy_base_tarball)" "$BASE" >/dev/null
fi

step "image from deploy/docker/Dockerfile"
DEB=$(deploy_deb "$BUILD")
mkdir -p "$WORK/ctx"
cp "$SRC/deploy/docker/Dockerfile" "$WORK/ctx/"
cp "$DEB" "$WORK/ctx/"
IMAGE=waverless-test:$(sha256sum "$DEB" | cut -c1-12)
$DOCKER build -q --network host --build-arg BASE="$BASE" -t "$IMAGE" "$WORK/ctx" >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log"; fail "docker build"; }

step "compose (docker-compose $(docker-compose version --short)): 3 nodes"
mkdir -p "$WORK/compose"
cp "$SRC/deploy/docker/compose.yaml" "$WORK/compose/"
cat >"$WORK/compose/cluster.yaml" <<YAML
nodes:
  1: {addr: 127.0.0.1:$P, spec: [meta, master]}
  2: {addr: 127.0.0.1:$((P + 100)), spec: [meta, worker]}
  3: {addr: 127.0.0.1:$((P + 200)), spec: [meta, worker]}
YAML
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/compose/admin.token")
chown 990 "$WORK/compose/admin.token"
chmod 755 "$WORK" "$WORK/compose"
cd "$WORK/compose"
WAVERLESS_IMAGE=$IMAGE docker-compose -p "$PROJECT" up -d >"$WORK/up.log" 2>&1 ||
  { cat "$WORK/up.log"; fail "docker-compose up"; }
AUTH="Authorization: Bearer $(cat admin.token)"
M=http://127.0.0.1:$((P + 1)) W=http://127.0.0.1:$((P + 101))
for _ in $(seq 1 600); do curl -fs "$M/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
alive() { curl -s -H "$AUTH" "$M/api/nodes" | grep -o "\"id\":$1,[^}]*" | grep -q '"alive":true'; }
for _ in $(seq 1 300); do alive 2 && alive 3 && break; sleep 0.2; done
alive 2 && alive 3 || fail "workers did not join"

step "calls through the cluster"
call() {  # url expect-regex curl-args...: retried while the groups elect leaders
  local url=$1 want=$2 out=""; shift 2
  for _ in $(seq 1 50); do
    out=$(curl -s "$@" "$url") && grep -qE "$want" <<<"$out" && return 0
    sleep 0.2
  done
  fail "$url answered: $out"
}
call "$M/hello" '^hello world$'
TEXT='the cat and the dog and the bird'
call "$M/word_count" '"the":3' --data-binary "$TEXT"
call "$W/word_count" '"and":2' --data-binary "$TEXT"
call "$W/word_count" '"the":' --data-binary "@$SRC/README.md"
[ "$($DOCKER ps -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)" -eq 3 ] ||
  fail "not 3 containers"
cd /
[ "$(host_net)" = "$BEFORE" ] || fail "the host's network changed: $BEFORE -> $(host_net)"
echo "PASS: docker_test (host network unchanged: $BEFORE)"
