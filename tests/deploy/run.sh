#!/usr/bin/env bash
# The opt-in deployment group (scripts/test.sh --deploy): the unit files,
# the .deb in a chroot, the hardened unit under systemd in a container, the
# Docker cluster, then the netns tests right after
# Docker (they break if a daemon changed the host's forwarding), then
# ansible. Prints how long each took. docs/deploy.md.
#
# usage: tests/deploy/run.sh [BUILD_DIR]     (root)
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$SRC/build}")
declare -A took status
failed=0
run() {  # name command...
  local name=$1 t0=$SECONDS rc; shift
  echo "=== $name"
  "$@"; rc=$?
  took[$name]=$((SECONDS - t0))
  case $rc in 0) status[$name]=pass ;; 77) status[$name]=skip ;; *) status[$name]="FAIL ($rc)"; failed=1 ;; esac
}
run systemd_units "$SRC/tests/deploy/systemd_units_test.sh" "$BUILD/waverless" "$SRC"
run deb "$SRC/tests/deploy/deb_test.sh" "$BUILD" "$SRC"
run systemd "$SRC/tests/deploy/systemd_test.sh" "$BUILD" "$SRC"
run docker "$SRC/tests/deploy/docker_test.sh" "$BUILD" "$SRC"
run netns_after_docker bash -c "cd '$BUILD' && ctest -R netns --output-on-failure"
run ansible "$SRC/tests/deploy/ansible_test.sh" "$BUILD" "$SRC"
echo "=== summary"
for n in systemd_units deb systemd docker netns_after_docker ansible; do
  printf '%-20s %-10s %4ss\n' "$n" "${status[$n]}" "${took[$n]}"
done
exit $failed
