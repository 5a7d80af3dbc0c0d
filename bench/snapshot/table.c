/* The snapshot benchmark's app: a 64 MiB lookup table every call needs.
 * Built twice (bench/CMakeLists.txt): with wl_init building the table once
 * (snapshotted), and with -DNO_SNAPSHOT, where each new instance builds it
 * on its first call, as an app without snapshots must. */
#include <stdio.h>
#include <stdlib.h>

#include "waverless.h"

#define TABLE_WORDS (16u << 20) /* 64 MiB of uint32_t */

static uint32_t* table;

static void build(void) {
  table = malloc(TABLE_WORDS * sizeof *table);
  if (table == NULL) wl_fail(WL_ERR_TOO_LARGE, "no memory for the table", 23);
  uint32_t x = 2463534242u;
  for (uint32_t i = 0; i < TABLE_WORDS; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    table[i] = x;
  }
}

#ifndef NO_SNAPSHOT
WL_INIT() { build(); }
#endif

/* Output: table[i] for the decimal index in args[0] (0 without one). */
WL_FUNCTION(lookup) {
#ifdef NO_SNAPSHOT
  if (table == NULL) build();
#endif
  uint32_t i = 0;
  for (uint32_t k = 0; argc > 0 && k < args[0].len; ++k) i = i * 10 + (args[0].data[k] - '0');
  char out[16];
  int n = snprintf(out, sizeof out, "%08x", table[i % TABLE_WORDS]);
  wl_output_write(out, (uint32_t)n);
}

/* Parks in a KV read (the benchmark's host holds it), then looks up 16
 * entries: lets the benchmark hold many instances at once. */
WL_FUNCTION(park) {
#ifdef NO_SNAPSHOT
  if (table == NULL) build();
#endif
  char v[8];
  uint32_t len = 0;
  wl_kv_get("park", 4, v, sizeof v, &len);
  uint32_t s = 0;
  for (uint32_t k = 0; k < 16; ++k) s += table[(k * 1048573u) % TABLE_WORDS];
  char out[16];
  int n = snprintf(out, sizeof out, "%08x", s);
  wl_output_write(out, (uint32_t)n);
}

WL_FUNCTION(hello) { wl_output_write("hello world", 11); }
