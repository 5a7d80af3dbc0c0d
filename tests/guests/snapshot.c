/* Test guest for instance snapshots: wl_init builds state every instance
 * must see; functions read it, write over it, and report what they see. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "waverless.h"

#ifndef TABLE_BYTES
#define TABLE_BYTES (4u << 20)
#endif

static uint8_t* table;         /* malloc'd by wl_init: heap state in the snapshot */
static uint32_t inits;         /* how many times wl_init ran in this memory */
static uint32_t calls;         /* calls this memory has seen since the snapshot */
static char word[64] = "none"; /* the first line of files/word.txt, if any */
static uint64_t drawn;         /* random, drawn by wl_init: which run of it this memory holds */

static void outf(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  wl_output_write(buf, (uint32_t)n);
}

static uint64_t sum(void) {
  uint64_t s = 0;
  for (uint32_t i = 0; i < TABLE_BYTES; i += 4096) s += table[i];
  return s;
}

WL_INIT() {
  inits++;
  getentropy(&drawn, sizeof drawn);
  table = malloc(TABLE_BYTES);
  if (table == NULL) wl_fail(WL_ERR_TOO_LARGE, "no memory", 9);
  for (uint32_t i = 0; i < TABLE_BYTES; ++i) table[i] = (uint8_t)(i * 7 + 1);
  int32_t fd;
  if (wl_file_open("word.txt", 8, &fd) == WL_OK) {
    uint32_t n = 0;
    wl_file_read_at(fd, 0, word, sizeof word - 1, &n);
    word[n] = 0;
    char* nl = strchr(word, '\n');
    if (nl) *nl = 0;
    wl_file_close(fd);
  }
}

/* What this instance sees: wl_init's runs, its table's checksum, the word,
 * and how many calls its memory has seen (1 on a pristine instance). */
WL_FUNCTION(state) {
  calls++;
  outf("inits=%u sum=%llu word=%s calls=%u", inits, (unsigned long long)sum(), word, calls);
}

/* Scribbles over the table and the heap, and grows the memory by 8 MiB. */
WL_FUNCTION(scribble) {
  calls++;
  memset(table, 0xAB, TABLE_BYTES);
  strcpy(word, "scribbled");
  void* more = malloc(8u << 20);
  if (more) memset(more, 1, 8u << 20);
  outf("scribbled sum=%llu", (unsigned long long)sum());
}

WL_FUNCTION(trap) { __builtin_trap(); }

WL_FUNCTION(nonce) { outf("%016llx", (unsigned long long)drawn); }

/* Parks on a KV read of a "slow" key (the test host holds it), so several
 * instances are alive at once. */
WL_FUNCTION(park) {
  calls++;
  char buf[64];
  uint32_t len = 0;
  wl_kv_get("slow-park", 9, buf, sizeof buf, &len);
  outf("parked sum=%llu", (unsigned long long)sum());
}
