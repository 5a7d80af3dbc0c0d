/* The register workload of the fault-injection harness: see app.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waverless.h"

typedef struct {
  const char* data;
  uint32_t len;
} str;

static void out(const char* s, uint32_t n) { wl_output_write(s, n); }
static void outs(const char* s) { out(s, (uint32_t)strlen(s)); }

static void fail(wl_status code, const char* what) { wl_fail(code, what, (uint32_t)strlen(what)); }

/* Splits body into at most max '\n'-separated fields; returns how many. The last field keeps any
 * further newlines (values may hold them). */
static uint32_t fields(const wl_arg* body, str* f, uint32_t max) {
  uint32_t n = 0, at = 0;
  while (n < max) {
    const char* nl = n + 1 < max ? memchr(body->data + at, '\n', body->len - at) : NULL;
    uint32_t end = nl ? (uint32_t)(nl - body->data) : body->len;
    f[n].data = body->data + at;
    f[n].len = end - at;
    n++;
    if (!nl) break;
    at = end + 1;
  }
  return n;
}

/* prefix + s into buf (cap 512); fails the invocation if it does not fit. */
static uint32_t key(char* buf, const char* prefix, str s) {
  int n = snprintf(buf, 512, "%s%.*s", prefix, (int)s.len, s.data);
  if (n < 0 || n >= 512) fail(WL_ERR_INVALID, "key too long");
  return (uint32_t)n;
}

/* Writes are retried by nobody: a failed host call fails the request with the call's code, so
 * the harness sees a clear status (503 for WL_ERR_UNAVAILABLE). */
static void must(wl_status st, const char* what) {
  if (st != WL_OK) fail(st, what);
}

/* "<key>" -> "=<value>" or "absent" */
WL_FUNCTION(get) {
  char k[512];
  uint32_t kl = key(k, "reg_", (str){args[0].data, args[0].len});
  static char value[1 << 16];
  uint32_t len = 0;
  wl_status st = wl_kv_get(k, kl, value, sizeof value, &len);
  if (st == WL_ERR_NOT_FOUND) {
    outs("absent");
    return;
  }
  must(st, "kv_get failed");
  outs("=");
  out(value, len);
}

/* Records the write named by token: ev_<token> = key, which triggers mark. */
static void event(str token, str reg_key) {
  char ev[512];
  uint32_t el = key(ev, "ev_", token);
  must(wl_kv_set(ev, el, reg_key.data, reg_key.len), "kv_set of the event failed");
}

/* "<key>\n<token>\n<value>" -> "ok" */
WL_FUNCTION(set) {
  str f[3];
  if (fields(&args[0], f, 3) != 3) fail(WL_ERR_INVALID, "want key\\ntoken\\nvalue");
  char k[512];
  uint32_t kl = key(k, "reg_", f[0]);
  must(wl_kv_set(k, kl, f[2].data, f[2].len), "kv_set failed");
  event(f[1], f[0]);
  outs("ok");
}

/* "<key>\n<token>\n=<expected>|!\n<value>" ('!': the key must be absent) -> "stored"|"conflict" */
WL_FUNCTION(cas) {
  str f[4];
  if (fields(&args[0], f, 4) != 4 || f[2].len == 0 || (f[2].data[0] != '=' && f[2].data[0] != '!'))
    fail(WL_ERR_INVALID, "want key\\ntoken\\n=expected or !\\nvalue");
  char k[512];
  uint32_t kl = key(k, "reg_", f[0]);
  wl_status st = f[2].data[0] == '!'
                     ? wl_kv_cas(k, kl, NULL, WL_KV_ABSENT, f[3].data, f[3].len)
                     : wl_kv_cas(k, kl, f[2].data + 1, f[2].len - 1, f[3].data, f[3].len);
  if (st == WL_ERR_CONFLICT) {
    outs("conflict");
    return;
  }
  must(st, "kv_cas failed");
  event(f[1], f[0]);
  outs("stored");
}

/* "<key>\n<delta>" -> the new value */
WL_FUNCTION(incr) {
  str f[2];
  if (fields(&args[0], f, 2) != 2) fail(WL_ERR_INVALID, "want key\\ndelta");
  char k[512], d[32];
  uint32_t kl = key(k, "ctr_", f[0]);
  if (f[1].len == 0 || f[1].len >= sizeof d) fail(WL_ERR_INVALID, "bad delta");
  memcpy(d, f[1].data, f[1].len);
  d[f[1].len] = 0;
  int64_t sum = 0;
  must(wl_kv_incr(k, kl, strtoll(d, NULL, 10), &sum), "kv_incr failed");
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)sum);
  out(buf, (uint32_t)n);
}

/* Triggered by ev_<token>: leaves done_<token>. Idempotent: a re-run writes the same marker. */
WL_FUNCTION(mark) {
  str ev = {args[0].data, args[0].len};
  if (ev.len < 3 || memcmp(ev.data, "ev_", 3) != 0) fail(WL_ERR_INVALID, "not an ev_ key");
  char d[512];
  uint32_t dl = key(d, "done_", (str){ev.data + 3, ev.len - 3});
  char id[128];
  uint32_t il = 0;
  must(wl_invocation_id(id, sizeof id, &il), "invocation_id failed");
  must(wl_kv_set(d, dl, id, il), "kv_set of the marker failed");
}

/* One token per line -> one line each: "<ev><done>" as 0/1 digits ("11": written, trigger ran). */
WL_FUNCTION(probe) {
  uint32_t at = 0;
  while (at < args[0].len) {
    const char* nl = memchr(args[0].data + at, '\n', args[0].len - at);
    uint32_t end = nl ? (uint32_t)(nl - args[0].data) : args[0].len;
    str token = {args[0].data + at, end - at};
    at = end + 1;
    if (token.len == 0) continue;
    char k[512], v[8];
    uint32_t len = 0;
    char line[3] = {'0', '0', '\n'};
    wl_status st = wl_kv_get(k, key(k, "ev_", token), v, 0, &len);
    if (st == WL_OK || st == WL_ERR_BUFFER_TOO_SMALL)
      line[0] = '1';
    else if (st != WL_ERR_NOT_FOUND)
      must(st, "probe of ev_ failed");
    st = wl_kv_get(k, key(k, "done_", token), v, 0, &len);
    if (st == WL_OK || st == WL_ERR_BUFFER_TOO_SMALL)
      line[1] = '1';
    else if (st != WL_ERR_NOT_FOUND)
      must(st, "probe of done_ failed");
    out(line, 3);
  }
}

/* This invocation's id. */
WL_FUNCTION(whoami) {
  char id[128];
  uint32_t il = 0;
  must(wl_invocation_id(id, sizeof id, &il), "invocation_id failed");
  out(id, il);
}

/* cas and incr outside the kvs list: each must be refused with WL_ERR_PERMISSION. */
WL_FUNCTION(denied) {
  int64_t sum = 0;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "cas=%d incr=%d get_only_cas=%d",
                   (int)wl_kv_cas("other_1", 7, NULL, WL_KV_ABSENT, "x", 1),
                   (int)wl_kv_incr("other_2", 7, 1, &sum),
                   (int)wl_kv_cas("reg_1", 5, NULL, WL_KV_ABSENT, "x", 1));
  out(buf, (uint32_t)n);
}
