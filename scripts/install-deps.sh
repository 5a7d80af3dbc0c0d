#!/usr/bin/env bash
# Installs every Debian 12 package Waverless needs to build, test and run.
# Idempotent: does nothing (and needs no network) when all are present.
# --deploy adds what the opt-in deployment tests need (scripts/test.sh
# --deploy, docs/deploy.md): never installed by default, since docker's
# daemon and a debootstrap'd chroot are not part of building or running.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build ccache g++ pkg-config clang-format
  # engine: WABT (wasm2c, libwabt), fibers, hashing, errors
  wabt libboost-context-dev libssl-dev libabsl-dev
  # guests: clang's wasm32-wasi target with wasi-libc and libc++
  clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
  libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
  # Rust guests: Debian's rustc 1.63 and cargo with the wasm32-wasi std (not rustup);
  # it links with lld-14, listed above
  rustc cargo libstd-rust-dev-wasm32
  # fuzzing (scripts/fuzz.sh): libFuzzer and the sanitizer runtimes for clang-14
  libclang-rt-14-dev
  # platform: storage, consensus, RPC, config
  librocksdb-dev libraft-dev libuv1-dev libgrpc++-dev libprotobuf-dev
  protobuf-compiler protobuf-compiler-grpc libyaml-cpp-dev libarchive-dev libboost-dev
  # tests and benchmarks (libhiredis-dev: bench/run's Redis pipeline, found at configure
  # time, so it must be here before the first configure, not installed by bench/run later)
  libgtest-dev libgmock-dev libbenchmark-dev curl iproute2 openssl libhiredis-dev
  # the web console's browser test (ui/tests): headless Chromium
  chromium
)
# AssemblyScript guests run the pinned asc, and scripts/build.sh builds the web
# console, with Node.js and npm; a Node.js from elsewhere (e.g. NodeSource, which
# bundles npm) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi
if [ "${1:-}" = "--deploy" ]; then
  # .deb (dpkg-shlibdeps), chroot, docker (Debian's daemon; compose v1, the
  # one bookworm has), ansible over ssh to netns hosts, systemd unit checks
  PACKAGES+=(dpkg-dev file debootstrap docker.io docker-compose ansible openssh-server
             openssh-client systemd)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
