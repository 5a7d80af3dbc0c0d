/* Misbehaving tenants: see app.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "waverless.h"

static void out(const char* s) { wl_output_write(s, (uint32_t)strlen(s)); }

static long argNumber(const wl_arg* a) {
  char buf[24] = {0};
  memcpy(buf, a->data, a->len < sizeof buf - 1 ? a->len : sizeof buf - 1);
  return atol(buf);
}

static long nowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void computeFor(long ms) {
  volatile unsigned long i = 0;
  long until = nowMs() + ms;
  while (nowMs() < until) {
    for (int k = 0; k < 10000; ++k) ++i;
  }
}

WL_FUNCTION(bomb_entry) {
  wl_kv_set("bomb_a", 6, "", 0);
  wl_kv_set("bomb_b", 6, "", 0);
  wl_status s = wl_wait_triggered();
  out(s == WL_OK ? "the bomb finished" : "the bomb failed");
}

/* bomb_<path>: sets bomb_<path>a and bomb_<path>b. */
WL_FUNCTION(bomb) {
  char key[512];
  uint32_t n = args[0].len < sizeof key - 2 ? args[0].len : sizeof key - 2;
  memcpy(key, args[0].data, n);
  key[n] = 'a';
  wl_kv_set(key, n + 1, "", 0);
  key[n] = 'b';
  wl_kv_set(key, n + 1, "", 0);
}

WL_FUNCTION(chain_entry) { wl_kv_set("loop_0", 6, "0", 1); }

WL_FUNCTION(loop) {
  char key[32];
  wl_arg digits = {args[0].data + 5, args[0].len - 5}; /* after "loop_" */
  long n = argNumber(&digits);
  computeFor(1);
  int len = snprintf(key, sizeof key, "loop_%ld", n + 1);
  wl_kv_set(key, (uint32_t)len, "", 0);
}

/* Allocates until malloc fails, touching every page, then holds it all for
 * the body's number of milliseconds. */
static char* volatile last_block; /* keeps clang from eliding the mallocs */
WL_FUNCTION(hog) {
  long blocks = 0;
  while ((last_block = malloc(1 << 20)) != NULL) {
    for (int i = 0; i < (1 << 20); i += 4096) last_block[i] = 1;
    ++blocks;
  }
  if (argc > 0 && args[0].len > 0) wl_sleep_ms((uint32_t)argNumber(&args[0]));
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", blocks);
  out(buf);
}

static long counter;
WL_FUNCTION(count) {
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", ++counter);
  out(buf);
}
WL_FUNCTION(fresh_count) {
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", ++counter);
  out(buf);
}

WL_FUNCTION(spin) {
  computeFor(argNumber(&args[0]));
  out("spun");
}

WL_FUNCTION(sleep) {
  wl_status s = wl_sleep_ms((uint32_t)argNumber(&args[0]));
  out(s == WL_OK ? "slept" : "woken");
}
