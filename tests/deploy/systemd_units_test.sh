#!/usr/bin/env bash
# deploy/systemd's units pass `systemd-analyze verify` with no warning: a
# throwaway root with this machine's systemd units (the targets they name),
# ours, and the binary at /usr/bin/waverless where ExecStart= wants it.
# A copy with an unknown key must be flagged, so the check itself can fail.
#
# usage: systemd_units_test.sh WAVERLESS_BINARY SOURCE_DIR
set -euo pipefail
BIN=$1 SRC=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
[ -d /lib/systemd/system ] || { echo "SKIP: no systemd units on this machine"; exit 77; }
ROOT=$(mktemp -d /tmp/wl-units-XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/usr/bin" "$ROOT/usr/lib/systemd" "$ROOT/etc/waverless"
cp -a /lib/systemd/system "$ROOT/usr/lib/systemd/"
cp "$BIN" "$ROOT/usr/bin/waverless"
cp "$SRC"/deploy/systemd/*.service "$ROOT/usr/lib/systemd/system/"
UNITS=(waverless-dev.service waverless-node@1.service)
verify() { SYSTEMD_LOG_LEVEL=info systemd-analyze verify --root="$ROOT" "${UNITS[@]}" 2>&1; }
OUT=$(verify) || { echo "$OUT"; echo "FAIL: systemd-analyze verify"; exit 1; }
[ -z "$OUT" ] || { echo "$OUT"; echo "FAIL: systemd-analyze verify warned"; exit 1; }
echo 'NoSuchOption=yes' >>"$ROOT/usr/lib/systemd/system/waverless-node@.service"
OUT=$(verify) || true
grep -q NoSuchOption <<<"$OUT" || { echo "FAIL: a bad key went unnoticed: $OUT"; exit 1; }
# The hardening the units promise (docs/deploy.md) is really there.
for key in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    MemoryDenyWriteExecute=yes LimitNOFILE=1048576 Restart=on-failure \
    'StateDirectory=waverless/%i' 'CacheDirectory=waverless/%i'; do
  grep -qxF "$key" "$SRC/deploy/systemd/waverless-node@.service" || { echo "FAIL: node unit lacks $key"; exit 1; }
done
echo "PASS: systemd units verified (${UNITS[*]})"
