#!/usr/bin/env bash
# First command on a fresh Debian 12 machine: install what is missing, build,
# and start a single-node cluster (`waverless dev`) with the demo apps, in
# the background. Afterwards: curl localhost:2501/hello
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
DATA=${WAVERLESS_DATA:-waverless-data}
mkdir -p "$DATA"
if [ -f "$DATA/dev.pid" ] && kill -0 "$(cat "$DATA/dev.pid")" 2>/dev/null; then
  echo "stopping the running dev node (pid $(cat "$DATA/dev.pid"))"
  kill "$(cat "$DATA/dev.pid")" && sleep 1
fi
nohup build/waverless dev --addr 127.0.0.1:2500 --data "$DATA" --apps apps \
  >"$DATA/dev.log" 2>&1 &
echo $! >"$DATA/dev.pid"
echo "waiting for the node (first start compiles the demo apps)..."
for _ in $(seq 1 600); do
  if curl -fs localhost:2501/healthz >/dev/null 2>&1; then
    echo "waverless dev is serving on http://localhost:2501 (log: $DATA/dev.log, pid $(cat "$DATA/dev.pid"))"
    echo "try: curl localhost:2501/hello"
    if [ -f build/ui/index.html ]; then
      echo "web console: http://localhost:2501/ui/ (sign in with the admin token below)"
    fi
    echo "admin token (for /api/* and the CLI): $DATA/admin.token, e.g."
    echo "  curl -H \"Authorization: Bearer \$(cat $DATA/admin.token)\" localhost:2501/api/apps"
    exit 0
  fi
  if ! kill -0 "$(cat "$DATA/dev.pid")" 2>/dev/null; then
    echo "the node exited; see $DATA/dev.log" >&2
    tail -20 "$DATA/dev.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the node did not become healthy; see $DATA/dev.log" >&2
exit 1
