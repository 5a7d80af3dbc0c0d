#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test, then
# the unit tests that are sanitizer-clean again under ASan+UBSan.
#   scripts/test.sh --deploy   only the deployment tests instead (.deb in a
#                              chroot, Docker, ansible; minutes, root, network
#                              to the Debian mirror): docs/deploy.md
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--deploy" ]; then
  scripts/install-deps.sh --deploy
  scripts/build.sh
  exec tests/deploy/run.sh "${BUILD_DIR:-build}"
fi
scripts/install-deps.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "$(nproc)" --timeout 900)
[ "${WAVERLESS_SKIP_FUZZ:-0}" = 1 ] || scripts/fuzz.sh 10
if [ "${WAVERLESS_SKIP_SANITIZERS:-0}" != 1 ]; then
  ASAN_DIR=${ASAN_BUILD_DIR:-build-asan}
  if [ ! -f "$ASAN_DIR/build.ninja" ]; then
    cmake -S . -B "$ASAN_DIR" -G Ninja -DWAVERLESS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  fi
  cmake --build "$ASAN_DIR" --target sanitize_tests -j "$(nproc)"
  (cd "$ASAN_DIR" && ctest -L sanitize --output-on-failure -j "$(nproc)" --timeout 900)
fi
