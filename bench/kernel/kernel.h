/* A compute kernel with real work, built both as wasm and natively from the
 * same source: sort N pseudo-random 32-bit keys, then SHA-256 the result
 * `rounds` times. Returns the first 8 bytes of the final digest. */
#ifndef WAVERLESS_BENCH_KERNEL_H_
#define WAVERLESS_BENCH_KERNEL_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
uint64_t kernel_run(uint32_t n, uint32_t rounds);
#ifdef __cplusplus
}
#endif
#endif
