/* An app with wl_init, for the snapshot end-to-end tests
 * (tests/integration/snapshot_test.cpp). wl_init builds a 4 MiB table and
 * reads files/word.txt; files/mode, if present, makes it misbehave on
 * purpose: "trap", "fail" or "kv". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "waverless.h"

#define TABLE_BYTES (4u << 20)

static uint8_t* table;
static uint32_t inits, calls;
static char word[64] = "none";
static uint64_t drawn; /* random, drawn by wl_init: tells one run of it from another */

static uint32_t readFile(const char* name, char* buf, uint32_t cap) {
  int32_t fd;
  uint32_t n = 0;
  if (wl_file_open(name, (uint32_t)strlen(name), &fd) != WL_OK) return 0;
  wl_file_read_at(fd, 0, buf, cap - 1, &n);
  wl_file_close(fd);
  buf[n] = 0;
  char* nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  return n;
}

WL_INIT() {
  char mode[16] = "";
  readFile("mode", mode, sizeof mode);
  if (strcmp(mode, "trap") == 0) __builtin_trap();
  if (strcmp(mode, "fail") == 0) wl_fail(WL_ERR_INVALID, "word list is corrupt", 20);
  if (strcmp(mode, "kv") == 0) {
    char v[8];
    uint32_t len = 0;
    wl_kv_get("config", 6, v, sizeof v, &len);
  }
  inits++;
  getentropy(&drawn, sizeof drawn);
  table = malloc(TABLE_BYTES);
  for (uint32_t i = 0; i < TABLE_BYTES; ++i) table[i] = (uint8_t)(i * 7 + 1);
  readFile("word.txt", word, sizeof word);
}

static void report(void) {
  uint64_t s = 0;
  for (uint32_t i = 0; i < TABLE_BYTES; i += 4096) s += table[i];
  char buf[160];
  int n = snprintf(buf, sizeof buf, "inits=%u calls=%u word=%s sum=%llu", inits, ++calls, word,
                   (unsigned long long)s);
  wl_output_write(buf, (uint32_t)n);
}

/* Reports what the instance sees, then writes over all of it. */
WL_FUNCTION(touch) {
  report();
  memset(table, 0xAB, TABLE_BYTES);
  strcpy(word, "scribbled");
}

/* The same, declared `instance: fresh` in app.yaml. */
WL_FUNCTION(fresh_touch) {
  report();
  memset(table, 0xAB, TABLE_BYTES);
  strcpy(word, "scribbled");
}

/* The number wl_init drew: the same on every node and after a restart when
 * they all map one snapshot, different wherever wl_init ran again. */
WL_FUNCTION(nonce) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%016llx", (unsigned long long)drawn);
  wl_output_write(buf, (uint32_t)n);
}
