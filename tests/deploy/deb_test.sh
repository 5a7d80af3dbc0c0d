#!/usr/bin/env bash
# The Debian package, for real: builds waverless_<version>_amd64.deb (cpack),
# checks what it holds and what it depends on, installs it with apt into a
# clean debootstrap'd bookworm chroot (apt fetches its Depends from the
# mirror), runs the command line of the packaged waverless-dev.service there
# as the package's user, and calls hello and word_count. docs/deploy.md.
#
# usage: deb_test.sh BUILD_DIR SOURCE_DIR      (root; network to the Debian mirror)
set -euo pipefail
BUILD=$(realpath "$1") SRC=$(realpath "$2")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (chroot)"; exit 77; }
source "$SRC/tests/deploy/lib.sh"
ROOT=$(mktemp -d /tmp/wl-deb-XXXXXX)
PORT=$((21000 + $$ % 4000 * 2))  # the chroot shares the host's network
NODE=
cleanup() {
  set +e
  if [ -n "$NODE" ]; then
    kill "$NODE" 2>/dev/null && sleep 0.5
    kill -9 "$NODE" 2>/dev/null
  fi
  umount "$ROOT/var/cache/apt/archives" 2>/dev/null || true
  deploy_chroot_down "$ROOT"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$ROOT/tmp/dev.log" ] && tail -30 "$ROOT/tmp/dev.log"; exit 1; }
step() { echo "== $(date +%T) $*"; }

step "package"
DEB=$(deploy_deb "$BUILD")
echo "$DEB"
[[ $(basename "$DEB") =~ ^waverless_[0-9][0-9.]*_amd64\.deb$ ]] || fail "name $(basename "$DEB")"
CONTENTS=$(dpkg-deb -c "$DEB" | awk '{print $6}')
for f in ./usr/bin/waverless ./usr/share/waverless/ui/index.html \
    ./usr/share/waverless/sdk/include/waverless.h ./usr/share/waverless/sdk/templates/c/app.yaml \
    ./usr/share/waverless/apps/hello/app.wasm ./usr/share/waverless/apps/word_count/app.wasm \
    ./usr/share/waverless/apps/word_count/files/input.txt \
    ./usr/lib/systemd/system/waverless-node@.service ./usr/lib/systemd/system/waverless-dev.service; do
  grep -qxF "$f" <<<"$CONTENTS" || fail "the package lacks $f"
done
grep -q '\.c$\|\.cpp$' <<<"$(grep '/share/waverless/apps/' <<<"$CONTENTS")" &&
  fail "demo app sources in the package (they would make the node rebuild them)"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $DEPENDS"
for d in 'libgrpc++1.51' libraft2 libuv1 libssl3 'libprotobuf32' wabt 'gcc | c-compiler' libc6-dev; do
  grep -qF "$d" <<<"$DEPENDS" || fail "Depends lacks $d"
done

step "chroot (bookworm minbase)"
deploy_chroot_up "$ROOT"
# apt's downloads are kept between runs: only the first run fetches gcc, gRPC...
mkdir -p "$WL_DEPLOY_CACHE/apt-archives/partial"
mount --bind "$WL_DEPLOY_CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
cp "$DEB" "$ROOT/tmp/"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
step "apt-get install ./$(basename "$DEB")"
in_root apt-get update -qq >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$DEB")" >"$ROOT/tmp/apt.log" 2>&1 || { tail -30 "$ROOT/tmp/apt.log"; fail "apt-get install"; }
in_root getent passwd waverless >/dev/null || fail "postinst made no waverless user"
in_root waverless completion bash >/dev/null || fail "the installed binary does not run"
# The installed SDK is found next to the binary (its templates with it).
in_root waverless new c /tmp/newapp >/dev/null 2>&1 || fail "waverless new c: no SDK found"
[ -f "$ROOT/tmp/newapp/app.yaml" ] || fail "waverless new made no app.yaml"

step "waverless-dev.service's command line, as user waverless"
UNIT=$ROOT/usr/lib/systemd/system/waverless-dev.service
# ExecStart with its continuation lines, $WAVERLESS_ARGS filled in as the
# unit's EnvironmentFile would.
EXEC=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$UNIT" | sed 's/^ExecStart=//; s/\\$//' | tr -s ' \n' '  ')
EXEC=${EXEC//\$WAVERLESS_ARGS/--addr 127.0.0.1:$PORT}
echo "$EXEC"
for d in /var/lib/waverless/dev /var/cache/waverless/dev; do  # StateDirectory=, CacheDirectory=
  install -d -m 0700 "$ROOT$d" && in_root chown waverless:waverless "$d"
done
# shellcheck disable=SC2086
chroot --userspec=waverless:waverless "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/waverless \
  $EXEC >"$ROOT/tmp/dev.log" 2>&1 &
NODE=$!
URL=http://127.0.0.1:$((PORT + 1))
for _ in $(seq 1 900); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$NODE" 2>/dev/null || fail "the node exited"
  sleep 0.2
done
curl -fs "$URL/healthz" >/dev/null || fail "the node is not healthy"

step "the demo, called from inside the chroot"
OUT=$(in_root curl -fsS "$URL/hello") || fail "hello"
[ "$OUT" = "hello world" ] || fail "hello answered '$OUT'"
OUT=$(in_root curl -fsS --data-binary 'the cat and the dog and the bird' "$URL/word_count") || fail "word_count"
grep -q '"the":3' <<<"$OUT" && grep -q '"and":2' <<<"$OUT" || fail "word_count answered $OUT"
APPS=$(in_root waverless apps --to "$URL" --token-file /var/lib/waverless/dev/admin.token --output name) ||
  fail "waverless apps"
grep -qx word_count <<<"$APPS" || fail "waverless apps: $APPS"
curl -fs "$URL/ui/" | grep -qi '<html' || fail "the console is not served from the package"
# MemoryDenyWriteExecute= in the units is safe only if the compiled modules
# ask for no executable stack (dlopen would then mprotect the stack PROT_EXEC).
SOS=$(ls "$ROOT"/var/cache/waverless/dev/*.so)
[ -n "$SOS" ] || fail "no compiled module in the cache folder"
for so in $SOS; do
  readelf -lW "$so" | grep GNU_STACK | grep -q 'RW ' || fail "$so wants an executable stack"
  readelf -lW "$so" | grep LOAD | grep -q 'RWE' && fail "$so has a W+X segment"
done
in_root stat -c '%U %a' /var/lib/waverless/dev/admin.token | grep -qx 'waverless 600' ||
  fail "admin.token is not the user's, mode 0600"
echo "PASS: deb_test ($(basename "$DEB"), $(du -h "$DEB" | cut -f1))"
