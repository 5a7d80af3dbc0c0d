/* Just enough libc for the compute kernel as a bare wasm32 module (what
 * runs in workerd): a bump allocator over memory.grow whose free() pops the
 * latest block (the kernel frees its one buffer before the next call), and
 * byte loops for memcpy/memset. Built with -fno-builtin so the loops are
 * not turned back into calls to themselves. */
#include <stdint.h>

#include "stdlib.h"
#include "string.h"

extern unsigned char __heap_base;
static uintptr_t heap_top;
static uintptr_t last_block;

void* malloc(size_t size) {
  if (heap_top == 0) heap_top = (uintptr_t)&__heap_base;
  uintptr_t p = (heap_top + 15) & ~(uintptr_t)15;
  uintptr_t end = p + size;
  uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) {
    return 0;
  }
  last_block = p;
  heap_top = end;
  return (void*)p;
}

void free(void* ptr) {
  if (ptr != 0 && (uintptr_t)ptr == last_block) heap_top = last_block;
}

void* memcpy(void* dst, const void* src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  unsigned char* d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
