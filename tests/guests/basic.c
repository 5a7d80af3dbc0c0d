/* Test guest exercising the host ABI, WASI and every trap kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#include "waverless.h"

static void out(const char* s) { wl_output_write(s, (uint32_t)strlen(s)); }
static void outf(const char* fmt, long v) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, fmt, v);
  wl_output_write(buf, (uint32_t)n);
}

WL_FUNCTION(hello) { out("hello world"); }

/* Output: the arguments joined with '|'. */
WL_FUNCTION(echo) {
  for (uint32_t i = 0; i < argc; ++i) {
    if (i) out("|");
    wl_output_write(args[i].data, args[i].len);
  }
}

/* Exported without arguments: the cheapest possible call. */
WL_EXPORT(noop) void noop(void) {}

static int counter;
WL_FUNCTION(count) { outf("%ld", ++counter); }

WL_FUNCTION(printer) {
  printf("to stdout %d\n", 42);
  fprintf(stderr, "to stderr\n");
  const char msg[] = "structured";
  wl_log(WL_LOG_WARN, msg, sizeof msg - 1);
  out("printed");
}

/* kv: set args[0]=args[1], read back, probe a missing and an empty key. */
WL_FUNCTION(kv_roundtrip) {
  wl_status s = wl_kv_set(args[0].data, args[0].len, args[1].data, args[1].len);
  if (s != WL_OK) {
    outf("set failed %ld", s);
    return;
  }
  char small[2];
  uint32_t len = 0;
  s = wl_kv_get(args[0].data, args[0].len, small, sizeof small, &len);
  if (s != WL_ERR_BUFFER_TOO_SMALL && args[1].len > sizeof small) {
    outf("expected too small, got %ld", s);
    return;
  }
  char* buf = malloc(len ? len : 1);
  s = wl_kv_get(args[0].data, args[0].len, buf, len, &len);
  if (s != WL_OK) {
    outf("get failed %ld", s);
    return;
  }
  wl_output_write(buf, len);
  free(buf);
  s = wl_kv_get("missing", 7, small, sizeof small, &len);
  outf(" missing=%ld", s);
  wl_kv_set("empty", 5, "", 0);
  len = 99;
  s = wl_kv_get("empty", 5, small, sizeof small, &len);
  outf(" empty=%ld", s);
  outf(" len=%ld", len);
  s = wl_kv_delete(args[0].data, args[0].len);
  s = wl_kv_get(args[0].data, args[0].len, small, sizeof small, &len);
  outf(" deleted=%ld", s);
}

/* Reads a key the test host answers only later (suspends the invocation). */
WL_FUNCTION(slow_get) {
  char buf[64];
  uint32_t len = 0;
  wl_status s = wl_kv_get(args[0].data, args[0].len, buf, sizeof buf, &len);
  if (s != WL_OK) {
    outf("err %ld", s);
    return;
  }
  wl_output_write(buf, len);
}

/* Sleeps args[0] milliseconds in a host call. */
WL_FUNCTION(nap) {
  char buf[16] = {0};
  memcpy(buf, args[0].data, args[0].len < 15 ? args[0].len : 15);
  outf("nap=%ld", wl_sleep_ms((uint32_t)atoi(buf)));
}

WL_FUNCTION(wait) { outf("wait=%ld", wl_wait_triggered()); }

/* --- traps --- */
WL_FUNCTION(trap_oob) {
  volatile char* p = (volatile char*)0xFFFFFFF0u;
  outf("%ld", *p);
}
WL_FUNCTION(trap_unreachable) { __builtin_trap(); }
static volatile int zero = 0;
WL_FUNCTION(trap_div0) { outf("%ld", 10 / zero); }
/* No address-taken locals: the recursion uses the native stack only (the
 * wasm shadow stack in linear memory is not touched). */
static volatile int sink;
__attribute__((noinline)) static int recurse(int n) {
  sink = n;
  return recurse(n + 1) + sink;
}
WL_FUNCTION(trap_stack) { outf("%ld", recurse(0)); }
WL_FUNCTION(loop_forever) {
  volatile unsigned long i = 0;
  for (;;) ++i;
}
/* Loops inside host calls: the timeout must still end it. */
WL_FUNCTION(loop_in_host_calls) {
  for (;;) wl_output_write("", 0);
}

WL_FUNCTION(exit_code) { exit(args[0].len ? atoi(args[0].data) : 0); }

/* cas, incr and invocation_id, each outcome printed: "<call>=<status>[:<value>]". */
WL_FUNCTION(atomics) {
  char buf[128];
  int64_t v = 0;
  uint32_t len = 0;
  outf("cas_new=%ld ", wl_kv_cas("c", 1, 0, WL_KV_ABSENT, "one", 3));
  outf("cas_new_again=%ld ", wl_kv_cas("c", 1, 0, WL_KV_ABSENT, "two", 3));
  outf("cas_wrong=%ld ", wl_kv_cas("c", 1, "two", 3, "three", 5));
  outf("cas_right=%ld ", wl_kv_cas("c", 1, "one", 3, "three", 5));
  wl_kv_get("c", 1, buf, sizeof buf, &len);
  wl_output_write("c=", 2);
  wl_output_write(buf, len);
  outf(" incr=%ld", wl_kv_incr("n", 1, 5, &v));
  outf(":%ld", (long)v);
  outf(" incr=%ld", wl_kv_incr("n", 1, -7, &v));
  outf(":%ld", (long)v);
  outf(" incr_text=%ld", wl_kv_incr("c", 1, 1, &v));
  wl_kv_set("max", 3, "9223372036854775807", 19);
  outf(" incr_over=%ld", wl_kv_incr("max", 3, 1, &v));
  outf(" id_small=%ld", wl_invocation_id(buf, 1, &len));
  outf(":%ld ", len);
  outf("id=%ld:", wl_invocation_id(buf, sizeof buf, &len));
  wl_output_write(buf, len);
}

/* --- bad pointers: one per host call; argument 0 names which --- */
#define BAD ((void*)0xFFFFFF00u)
WL_FUNCTION(bad_pointer) {
  const char* w = args[0].data;
  uint32_t n = args[0].len;
  uint32_t len;
  int32_t fd;
  uint64_t size;
#define IS(x) (n == sizeof(x) - 1 && memcmp(w, x, n) == 0)
  if (IS("kv_get_key"))
    wl_kv_get(BAD, 1000, 0, 0, &len);
  else if (IS("kv_get_buf")) {
    wl_kv_set("k", 1, "v", 1);
    wl_kv_get("k", 1, BAD, 1000, &len);
  } else if (IS("kv_get_len"))
    wl_kv_get("k", 1, 0, 0, BAD);
  else if (IS("kv_set_key"))
    wl_kv_set(BAD, 1000, "v", 1);
  else if (IS("kv_set_value"))
    wl_kv_set("k", 1, BAD, 1000);
  else if (IS("kv_delete"))
    wl_kv_delete(BAD, 1000);
  else if (IS("kv_cas_key"))
    wl_kv_cas(BAD, 1000, 0, WL_KV_ABSENT, "v", 1);
  else if (IS("kv_cas_expected"))
    wl_kv_cas("k", 1, BAD, 1000, "v", 1);
  else if (IS("kv_cas_value"))
    wl_kv_cas("k", 1, 0, WL_KV_ABSENT, BAD, 1000);
  else if (IS("kv_incr_key")) {
    int64_t v;
    wl_kv_incr(BAD, 1000, 1, &v);
  } else if (IS("kv_incr_result"))
    wl_kv_incr("n", 1, 1, (int64_t*)BAD);
  else if (IS("invocation_id_buf"))
    wl_invocation_id(BAD, 1000, &len);
  else if (IS("invocation_id_len")) {
    char id[8];
    wl_invocation_id(id, sizeof id, BAD);
  } else if (IS("output_write"))
    wl_output_write(BAD, 1000);
  else if (IS("log"))
    wl_log(1, BAD, 1000);
  else if (IS("file_open_path"))
    wl_file_open(BAD, 1000, &fd);
  else if (IS("file_open_fd"))
    wl_file_open("a.txt", 5, BAD);
  else if (IS("file_size")) {
    wl_file_open("a.txt", 5, &fd);
    wl_file_size(fd, BAD);
  } else if (IS("file_read_at")) {
    wl_file_open("a.txt", 5, &fd);
    wl_file_read_at(fd, 0, BAD, 1000, &len);
  } else if (IS("file_read_at_len")) {
    wl_file_open("a.txt", 5, &fd);
    wl_file_read_at(fd, 0, &size, 1, BAD);
  } else if (IS("fd_write")) {
    __wasi_size_t nw;
    (void)__wasi_fd_write(1, (const __wasi_ciovec_t*)BAD, 1, &nw);
  } else if (IS("fd_write_buf")) {
    __wasi_ciovec_t iov = {(const uint8_t*)BAD, 1000};
    __wasi_size_t nw;
    (void)__wasi_fd_write(1, &iov, 1, &nw);
  } else if (IS("wrap"))
    wl_output_write((void*)0xFFFFFFFFu, 2);
  else {
    out("unknown case");
    return;
  }
  out("survived");
}

/* Reads files/<args[0]> whole; output = contents or "status N". */
WL_FUNCTION(read_file) {
  int32_t fd;
  wl_status s = wl_file_open(args[0].data, args[0].len, &fd);
  if (s != WL_OK) {
    outf("status %ld", s);
    return;
  }
  uint64_t size = 0;
  wl_file_size(fd, &size);
  char* buf = malloc(size + 1);
  uint64_t off = 0;
  for (;;) {
    uint32_t got = 0;
    wl_file_read_at(fd, off, buf + off, (uint32_t)(size - off + 1), &got);
    if (got == 0) break;
    off += got;
  }
  wl_output_write(buf, (uint32_t)off);
  wl_file_close(fd);
  free(buf);
}

/* Grows linear memory page by page with memory.grow; reports pages gained. */
WL_FUNCTION(grow_raw) {
  long pages = 0;
  while (__builtin_wasm_memory_grow(0, 1) != (size_t)-1) ++pages;
  outf("%ld", pages);
}

/* Allocates 1 MiB blocks until malloc fails; reports how many it got. The
 * blocks are kept: the heap stays full, as a leaking function leaves it. */
static void* volatile last_block;
WL_FUNCTION(malloc_until_null) {
  long n = 0;
  while ((last_block = malloc(1 << 20)) != NULL) ++n;
  outf("%ld", n);
}
