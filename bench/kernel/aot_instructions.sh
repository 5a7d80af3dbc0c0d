#!/usr/bin/env bash
# Instructions of the compute kernel (kernel_run 200000 20: sort + SHA-256),
# counted by callgrind: repeatable on a shared, noisy machine where wall
# times drift. Compares the same C built natively (gcc -O2) with the wasm
# path (guest clang-14 flags -> wasm2c -> the C compiler with the AOT
# flags of src/wasm/compiler.cpp), for guest and AOT variants. The wasm
# side runs wasm2c's own runtime (wasm-rt-impl.c) instead of the engine:
# the generated code and its flags are the production ones, the call into
# it is direct. Every variant must print the native digest.
#
#   bench/kernel/aot_instructions.sh [--current] [N ROUNDS]
#       needs valgrind, clang-14, wasm2c; wasm-opt for its row, if installed.
#       --current: only native and the production guest flags (the other
#       variants are history). N ROUNDS: kernel_run's arguments, 200000 20
#       by default; the suite's case is 1000000 20 (5x the sort, 5x the
#       hashing: about 8x the callgrind time).
set -euo pipefail
current=0
if [ "${1:-}" = "--current" ]; then current=1; shift; fi
ARGS="${1:-200000} ${2:-20}"
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp kernel.c kernel.h "$T"
cd "$T"
AOT="-O2 -fno-strict-aliasing -fstack-clash-protection -fno-optimize-sibling-calls -fsignaling-nans -w"
RT=/usr/src/wasm2c
cat >main.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "k.h"
int main(int argc, char** argv) {
  unsigned n = atoi(argv[1]), rounds = atoi(argv[2]);
  wasm_rt_init();
  Z_k_init_module();
  Z_k_instance_t inst;
  Z_k_instantiate(&inst);
  Z_kZ__initialize(&inst);
  printf("%016llx\n", (unsigned long long)Z_kZ_kernel_run(&inst, n, rounds));
  Z_k_free(&inst);
  return 0;
}
EOF
cat >native.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "kernel.h"
int main(int argc, char** argv) {
  printf("%016llx\n", (unsigned long long)kernel_run(atoi(argv[1]), atoi(argv[2])));
  return 0;
}
EOF

count() {  # binary function -> instructions in that function and below
  valgrind --tool=callgrind --toggle-collect="$2" --callgrind-out-file=cg.out "./$1" $ARGS \
    >/dev/null 2>vg.log
  sed -n 's/.*Collected : //p' vg.log
}

gcc -O2 native.c kernel.c -o native
want=$(./native $ARGS)
base=$(count native kernel_run)
printf 'kernel_run %s\n\n| build | instructions | vs native |\n|---|---|---|\n' "$ARGS"
printf '| native, gcc -O2 | %s | 1.000x |\n' "$base"

# variant NAME "GUEST FLAGS" [wasm-opt level] [AOT compiler] [extra AOT flags]
variant() {
  local name=$1 guest=$2 opt=${3:-} cc=${4:-gcc} extra=${5:-}
  # shellcheck disable=SC2086
  clang-14 --target=wasm32-wasi $guest -mexec-model=reactor -Wl,--export=kernel_run kernel.c \
    -o k.wasm
  if [ -n "$opt" ]; then wasm-opt "$opt" k.wasm -o k.wasm; fi
  wasm2c -n k k.wasm -o k.c
  # shellcheck disable=SC2086
  $cc $AOT $extra -I"$RT" -I. main.c k.c "$RT/wasm-rt-impl.c" -o aot -lm
  [ "$(./aot $ARGS)" = "$want" ] || { echo "$name: wrong digest" >&2; exit 1; }
  local n
  n=$(count aot Z_kZ_kernel_run)
  printf '| %s | %s | %s |\n' "$name" "$n" "$(python3 -c "print(f'{$n/$base:.3f}x')")"
}

if [ "$current" = 0 ]; then
  variant "guest -O2 (before), AOT gcc" "-O2"
  variant "guest -O2, AOT clang-14" "-O2" "" clang-14
  if command -v wasm-opt >/dev/null; then variant "guest -O2, wasm-opt -O3, AOT gcc" "-O2" -O3; fi
  variant "guest -O2 -funroll-loops, AOT gcc" "-O2 -funroll-loops"
  variant "guest -O3 -funroll-loops, AOT gcc" "-O3 -funroll-loops"
  variant "guest -O2 -mllvm -unroll-threshold=2000, AOT gcc" "-O2 -mllvm -unroll-threshold=2000"
fi
variant "**guest -O2 -mllvm -unroll-threshold=5000 (now)**, AOT gcc" \
  "-O2 -mllvm -unroll-threshold=5000"
