/* The two stdlib functions bench/kernel/kernel.c uses, for its bare
 * --target=wasm32 build (no WASI, no libc): see wasm_libc.c. */
#ifndef WL_BENCH_WASM_STDLIB_H_
#define WL_BENCH_WASM_STDLIB_H_
#include <stddef.h>
void* malloc(size_t size);
void free(void* ptr);
#endif
