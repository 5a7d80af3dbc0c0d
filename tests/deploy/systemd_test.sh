#!/usr/bin/env bash
# The packaged, hardened units under a real systemd: this machine's PID 1
# is not systemd, so the test boots one in a container. A debootstrap'd
# bookworm gets systemd, systemd-container and the .deb; a copy of it, with
# waverless-dev and waverless-node@1 (a one-node cluster) enabled, is booted
# by that root's systemd-nspawn (from a private mount namespace,
# pivot_root'ed into the first root, since nspawn wants its root to be a
# mount point). Host networking: the ports are set in /etc/waverless. Then:
# both units are active and never restarted, both answer hello and
# word_count, the dev node deployed (AOT-compiled) the demo apps under
# ProtectSystem=strict and MemoryDenyWriteExecute=, and its process has no
# capabilities, no_new_privs and a seccomp filter. docs/deploy.md.
#
# usage: systemd_test.sh BUILD_DIR SOURCE_DIR     (root; network to the Debian mirror)
set -euo pipefail
BUILD=$(realpath "$1") SRC=$(realpath "$2")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: needs unshare"; exit 77; }
source "$SRC/tests/deploy/lib.sh"
ROOT=$(mktemp -d /tmp/wl-systemd-XXXXXX)
PORT=$((25000 + $$ % 2000 * 2))
NSPAWN=
cleanup() {
  set +e
  if [ -n "$NSPAWN" ]; then
    kill "$NSPAWN" 2>/dev/null  # nspawn powers the container off
    for _ in $(seq 1 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$NSPAWN" 2>/dev/null
  fi
  umount "$ROOT/machine" "$ROOT/var/cache/apt/archives" 2>/dev/null
  deploy_chroot_down "$ROOT"
}
trap cleanup EXIT
BOOTLOG=$ROOT/tmp/boot.log  # the outer root's /tmp: the machine is $ROOT/machine
fail() { echo "FAIL: $*"; tail -30 "$BOOTLOG" 2>/dev/null; exit 1; }
step() { echo "== $(date +%T) $*"; }

step "root with systemd, systemd-nspawn and the .deb"
DEB=$(deploy_deb "$BUILD")
deploy_chroot_up "$ROOT"
mkdir -p "$WL_DEPLOY_CACHE/apt-archives/partial"
mount --bind "$WL_DEPLOY_CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
cp "$DEB" "$ROOT/tmp/"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_root apt-get update -qq >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  systemd systemd-sysv systemd-container dbus "/tmp/$(basename "$DEB")" >"$ROOT/tmp/apt.log" 2>&1 ||
  { tail -20 "$ROOT/tmp/apt.log"; fail "apt-get install"; }

step "the machine: a copy with waverless-dev enabled"
M=$ROOT/machine
mkdir -p "$M"
(cd "$ROOT" && tar --one-file-system --exclude=./machine --exclude=./proc --exclude=./sys \
  --exclude=./dev --exclude=./var/cache/apt/archives -cf - .) | tar -C "$M" -xf -
mkdir -p "$M/proc" "$M/sys" "$M/dev" "$M/etc/waverless"
ln -sf /usr/lib/systemd/system/waverless-dev.service \
  "$M/etc/systemd/system/multi-user.target.wants/waverless-dev.service"
echo "WAVERLESS_ARGS=\"--addr 127.0.0.1:$PORT\"" >"$M/etc/waverless/dev.env"
# And waverless-node@1, a one-node cluster (meta, master and worker: its
# raft groups and peer port run under the same sandbox).
NPORT=$((PORT + 10))
printf 'nodes:\n  1: {addr: 127.0.0.1:%s, spec: [meta, master, worker]}\n' "$NPORT" \
  >"$M/etc/waverless/cluster.yaml"
echo 'WAVERLESS_ARGS="--apps /usr/share/waverless/apps"' >"$M/etc/waverless/node-1.env"
ln -sf /usr/lib/systemd/system/waverless-node@.service \
  "$M/etc/systemd/system/multi-user.target.wants/waverless-node@1.service"
mount --bind "$M" "$M"  # nspawn's directory must be a mount point

step "boot (systemd-nspawn -b)"
unshare -m bash -c "mount --make-rprivate / && mount --rbind '$ROOT' '$ROOT' && cd '$ROOT' &&
  mkdir -p old && pivot_root . old && exec chroot . /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  systemd-nspawn -q -D /machine -b --register=no --keep-unit" >"$BOOTLOG" 2>&1 </dev/null &
NSPAWN=$!
URL=http://127.0.0.1:$((PORT + 1))
for _ in $(seq 1 900); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$NSPAWN" 2>/dev/null || fail "systemd-nspawn exited"
  sleep 0.2
done
curl -fs "$URL/healthz" >/dev/null || fail "waverless-dev.service is not serving"
NURL=http://127.0.0.1:$((NPORT + 1))
for _ in $(seq 1 300); do curl -fs "$NURL/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
# unshare, chroot and env exec'd into systemd-nspawn: its child is the machine's PID 1
INIT=$(pgrep -P "$NSPAWN" | head -1)
[ "$(cat "/proc/$INIT/comm" 2>/dev/null)" = systemd ] || fail "no systemd under nspawn ($INIT)"
in_machine() { nsenter --target "$INIT" --mount --uts --ipc --net --pid "$@"; }

step "the units under systemd"
for unit in waverless-dev waverless-node@1; do
  SHOW=$(in_machine systemctl show "$unit" -p ActiveState -p NRestarts -p MainPID -p User)
  echo "$unit: $(echo "$SHOW" | tr '\n' ' ')"
  grep -qx ActiveState=active <<<"$SHOW" || fail "$unit not active: $SHOW"
  grep -qx NRestarts=0 <<<"$SHOW" || fail "$unit restarted: $SHOW"
done
for u in "$URL" "$NURL"; do
  OUT=$(curl -fsS "$u/hello") && [ "$OUT" = "hello world" ] || fail "$u/hello answered '$OUT'"
  OUT=$(curl -fsS --data-binary 'the cat and the dog and the bird' "$u/word_count") || fail "$u/word_count"
  grep -q '"the":3' <<<"$OUT" && grep -q '"and":2' <<<"$OUT" || fail "$u/word_count answered $OUT"
done
# The demo apps were compiled in the unit's sandbox (wasm2c + cc into
# CacheDirectory=, dlopen under MemoryDenyWriteExecute=).
[ "$(ls "$M"/var/cache/waverless/dev/*.so | wc -l)" -ge 3 ] || fail "no compiled modules in the cache"
PID=$(pgrep -f -n 'waverless dev --data /var/lib/waverless/dev') || fail "no node process"
STATUS=$(cat "/proc/$PID/status")
grep -q '^CapEff:[[:space:]]*0000000000000000$' <<<"$STATUS" || fail "the node has capabilities"
grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$STATUS" || fail "no_new_privs is not set"
grep -q '^Seccomp:[[:space:]]*2$' <<<"$STATUS" || fail "no seccomp filter (MemoryDenyWriteExecute=)"
[ "$(stat -c %u "/proc/$PID")" = "$(in_machine id -u waverless)" ] || fail "the node is not user waverless"
echo "PASS: systemd_test (hardened waverless-dev.service and waverless-node@1.service under systemd $(in_machine systemctl --version | head -1 | cut -d' ' -f2))"
