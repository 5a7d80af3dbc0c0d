/* The string functions bench/kernel/kernel.c (and the compiler) use, for
 * its bare --target=wasm32 build: see wasm_libc.c. */
#ifndef WL_BENCH_WASM_STRING_H_
#define WL_BENCH_WASM_STRING_H_
#include <stddef.h>
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
#endif
