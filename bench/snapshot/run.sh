#!/usr/bin/env bash
# Instance snapshots (issue 11 part 3), side by side in one run: cold start
# of an app whose wl_init builds a 64 MiB table with and without the
# snapshot, warm hello under instance: fresh against reuse, and memory per
# idle instance. Engine-level (no HTTP), like engine_bench.
#
#   bench/snapshot/run.sh [--quick]      (build dir: $BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
cmake --build "$BUILD_DIR" --target snapshot_bench >/dev/null
exec "$BUILD_DIR/bench/snapshot_bench" "$@"
