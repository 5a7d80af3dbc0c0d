#!/usr/bin/env bash
# Configures and builds Waverless into build/ (Ninja, ccache when present),
# and the web console (ui/) into build/ui, where the node finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"

# The console: TypeScript + Vite, from the npm packages pinned in
# ui/package-lock.json. Built files only; the node never runs Node.js.
out="$(pwd)/$BUILD_DIR/ui"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "scripts/build.sh: no Node.js/npm: the web console (/ui/) is not built;" \
       "scripts/install-deps.sh installs them" >&2
elif [ -f "$out/index.html" ] && [ -z "$(find ui/src ui/index.html ui/package-lock.json \
    ui/vite.config.ts -newer "$out/index.html" 2>/dev/null | head -1)" ]; then
  :  # up to date
else
  echo "building the web console into $out"
  if [ ! -f ui/node_modules/.package-lock.json ] ||
     [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    (cd ui && npm ci --no-audit --no-fund --loglevel=error)
  fi
  (cd ui && npx tsc --noEmit -p . && npx vite build --outDir "$out" --emptyOutDir --logLevel warn)
fi
