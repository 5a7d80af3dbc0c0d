#!/usr/bin/env bash
# First command on a fresh Debian 12 machine: install, build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo "built: $(pwd)/build"
