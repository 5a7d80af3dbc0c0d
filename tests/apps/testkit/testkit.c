/* Test functions: each provokes one behaviour the platform must handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waverless.h"

static void out(const char* s) { wl_output_write(s, (uint32_t)strlen(s)); }

/* Sets a key outside its kvs list, then one inside; reports both codes. */
WL_FUNCTION(perm) {
  char buf[64];
  wl_status bad = wl_kv_set("forbidden_1", 11, "x", 1);
  wl_status good = wl_kv_set("allowed_1", 9, "x", 1);
  snprintf(buf, sizeof buf, "forbidden=%d allowed=%d", (int)bad, (int)good);
  out(buf);
}

WL_FUNCTION(boom_entry) {
  wl_kv_set("boom_1", 6, "10", 2);
  out(wl_wait_triggered() == WL_ERR_FAILED ? "saw failure" : "no failure");
}

static volatile int zero = 0;
WL_FUNCTION(boom) {
  char v[8];
  uint32_t len = 0;
  wl_kv_get(args[0].data, args[0].len, v, sizeof v, &len);
  char buf[16];
  snprintf(buf, sizeof buf, "%d", (v[0] - '0') / zero);
  out(buf);
}

WL_FUNCTION(spin) {
  volatile unsigned long i = 0;
  for (;;) ++i;
}

/* Body "key=value": stores value under store_<key>. */
WL_FUNCTION(put) {
  const char* eq = memchr(args[0].data, '=', args[0].len);
  if (!eq) {
    out("want key=value");
    return;
  }
  char key[128];
  int klen = snprintf(key, sizeof key, "store_%.*s", (int)(eq - args[0].data), args[0].data);
  uint32_t vlen = args[0].len - (uint32_t)(eq - args[0].data) - 1;
  wl_status st = wl_kv_set(key, (uint32_t)klen, eq + 1, vlen);
  if (st != WL_OK) wl_fail(st, "set failed", 10);
  out("ok");
}

/* Body "key": outputs the value of store_<key>, or "missing". */
WL_FUNCTION(get) {
  char key[128];
  int klen = snprintf(key, sizeof key, "store_%.*s", (int)args[0].len, args[0].data);
  char value[256];
  uint32_t len = 0;
  wl_status s = wl_kv_get(key, (uint32_t)klen, value, sizeof value, &len);
  if (s == WL_ERR_NOT_FOUND) {
    out("missing");
  } else if (s != WL_OK) {
    wl_fail(s, "get failed", 10);
  } else {
    wl_output_write(value, len);
  }
}

static uint32_t pack(char* buf, uint32_t at, const char* k, const char* v) {
  uint32_t kl = (uint32_t)strlen(k), vl = (uint32_t)strlen(v);
  memcpy(buf + at, &kl, 4);
  memcpy(buf + at + 4, k, kl);
  at += 4 + kl;
  memcpy(buf + at, &vl, 4);
  memcpy(buf + at + 4, v, vl);
  return at + 4 + vl;
}

/* A batch with a forbidden key writes nothing; a good batch is then listed
 * back with a prefix scan. */
WL_FUNCTION(batch) {
  char buf[256], line[64];
  uint32_t n = pack(buf, 0, "store_b1", "one");
  n = pack(buf, n, "elsewhere_x", "no");
  wl_status refused = wl_kv_set_batch(buf, n);
  n = pack(buf, 0, "store_b1", "one");
  n = pack(buf, n, "store_b2", "two");
  n = pack(buf, n, "store_b3", "");
  wl_status stored = wl_kv_set_batch(buf, n);
  snprintf(line, sizeof line, "refused=%d stored=%d:", (int)refused, (int)stored);
  out(line);
  char result[8];
  uint32_t len = 0;
  wl_status s = wl_kv_scan("store_b", 7, 100, result, sizeof result, &len);
  if (s != WL_ERR_BUFFER_TOO_SMALL) return;
  char big[512];
  if (wl_kv_scan("store_b", 7, 100, big, sizeof big, &len) != WL_OK) return;
  uint32_t pos = 0, kl, vl;
  const char *k, *v;
  while (wl_kv_each(big, len, &pos, &k, &kl, &v, &vl)) {
    snprintf(line, sizeof line, " %.*s=%.*s", (int)kl, k, (int)vl, v);
    out(line);
  }
}

/* Fails the invocation on purpose: the request answers 400 with the text. */
WL_FUNCTION(refuse) { wl_fail(WL_ERR_INVALID, "bad input", 9); }

/* Rest 1.5 s in a host call: long enough to lose the node under it. The
 * first is marked idempotent in app.yaml, so it may be retried elsewhere. */
WL_FUNCTION(nap_retry) {
  wl_sleep_ms(1500);
  out("rested");
}
WL_FUNCTION(nap_once) {
  wl_sleep_ms(1500);
  out("rested");
}

/* body: stream. Reads the body in 64 KiB pieces; reports its size and a
 * position-weighted checksum, so lost, repeated or reordered bytes show. */
WL_FUNCTION(body_sum) {
  static char buf[65536];
  unsigned long long bytes = 0, sum = 0;
  for (;;) {
    uint32_t got = 0;
    wl_status s = wl_body_read(buf, sizeof buf, &got);
    if (s != WL_OK) wl_fail(s, "body_read failed", 16);
    if (got == 0) break;
    for (uint32_t i = 0; i < got; ++i) sum += (unsigned char)buf[i] * ((bytes + i) % 251 + 1);
    bytes += got;
  }
  char line[64];
  snprintf(line, sizeof line, "bytes=%llu sum=%llu", bytes, sum);
  out(line);
}

/* body: stream, but answers without reading any of it. */
WL_FUNCTION(body_skip) { out("skipped"); }

/* A buffered-body function has no stream: wl_body_read says so. */
WL_FUNCTION(body_none) {
  char buf[16];
  uint32_t got = 0;
  char line[32];
  snprintf(line, sizeof line, "status=%d", (int)wl_body_read(buf, sizeof buf, &got));
  out(line);
}

/* Body: a key prefix. Lists the store_ keys under it (sorted, one scan). */
WL_FUNCTION(scan) {
  static char buf[65536];
  char prefix[128];
  int plen = snprintf(prefix, sizeof prefix, "store_%.*s", (int)args[0].len, args[0].data);
  uint32_t len = 0;
  wl_status s = wl_kv_scan(prefix, (uint32_t)plen, 1000, buf, sizeof buf, &len);
  if (s != WL_OK) wl_fail(s, "scan failed", 11);
  uint32_t pos = 0, kl, vl;
  const char *k, *v;
  char line[160];
  while (wl_kv_each(buf, len, &pos, &k, &kl, &v, &vl)) {
    snprintf(line, sizeof line, "%.*s=%.*s ", (int)kl, k, (int)vl, v);
    out(line);
  }
}

/* Durable triggers: see app.yaml. */
static void must(wl_status st, const char* what) {
  if (st != WL_OK) wl_fail(st, what, (uint32_t)strlen(what));
}

WL_FUNCTION(durable_put) {
  const char* a = args[0].data;
  uint32_t n = args[0].len;
  const char* nl = memchr(a, '\n', n);
  if (!nl) must(WL_ERR_INVALID, "want x\\ntag\\nms");
  char key[256], value[256], marker[256];
  int kl = snprintf(key, sizeof key, "dur_%.*s", (int)(nl - a), a);
  const char* rest = nl + 1;
  uint32_t rl = n - (uint32_t)(rest - a);
  const char* nl2 = memchr(rest, '\n', rl);
  if (!nl2) must(WL_ERR_INVALID, "want x\\ntag\\nms");
  int vl = snprintf(value, sizeof value, "%.*s %.*s", (int)(nl2 - rest), rest,
                    (int)(rl - (uint32_t)(nl2 + 1 - rest)), nl2 + 1);
  int ml = snprintf(marker, sizeof marker, "marker_%.*s", (int)(nl2 - rest), rest);
  must(wl_kv_set(key, (uint32_t)kl, value, (uint32_t)vl), "set failed");
  must(wl_wait_triggered(), "durable_mark failed");
  char id[256];
  uint32_t len = 0;
  must(wl_kv_get(marker, (uint32_t)ml, id, sizeof id, &len), "no marker");
  out("marked ");
  wl_output_write(id, len);
}

WL_FUNCTION(durable_mark) {
  char value[256], k[256], id[256], runs[4096];
  uint32_t vlen = 0, ilen = 0;
  must(wl_kv_get(args[0].data, args[0].len, value, sizeof value - 1, &vlen), "no value");
  value[vlen] = 0;
  char* space = strchr(value, ' ');
  if (!space) must(WL_ERR_INVALID, "want tag ms");
  *space = 0;
  const char* tag = value;
  unsigned ms = (unsigned)atoi(space + 1);
  must(wl_invocation_id(id, sizeof id, &ilen), "no invocation id");
  /* Append this run's id to runs_<tag>: a cas loop, so a re-run's id is added, not lost. */
  int kl = snprintf(k, sizeof k, "runs_%s", tag);
  for (;;) {
    uint32_t rlen = 0;
    wl_status st = wl_kv_get(k, (uint32_t)kl, runs, sizeof runs - sizeof id - 2, &rlen);
    int absent = st == WL_ERR_NOT_FOUND;
    if (!absent) must(st, "get runs failed");
    char next[4096];
    memcpy(next, runs, absent ? 0 : rlen);
    uint32_t nlen = absent ? 0 : rlen;
    memcpy(next + nlen, id, ilen);
    nlen += ilen;
    next[nlen++] = ';';
    st = wl_kv_cas(k, (uint32_t)kl, absent ? NULL : runs, absent ? WL_KV_ABSENT : rlen, next, nlen);
    if (st == WL_OK) break;
    if (st != WL_ERR_CONFLICT) must(st, "cas runs failed");
  }
  wl_sleep_ms(ms);
  kl = snprintf(k, sizeof k, "marker_%s", tag);
  must(wl_kv_set(k, (uint32_t)kl, id, ilen), "set marker failed");
}

/* "<tag>" -> "<runs_ value>|<marker_ value>" (empty when absent) */
WL_FUNCTION(durable_probe) {
  char k[256], v[4096];
  uint32_t len = 0;
  int kl = snprintf(k, sizeof k, "runs_%.*s", (int)args[0].len, args[0].data);
  if (wl_kv_get(k, (uint32_t)kl, v, sizeof v, &len) == WL_OK) wl_output_write(v, len);
  out("|");
  kl = snprintf(k, sizeof k, "marker_%.*s", (int)args[0].len, args[0].data);
  if (wl_kv_get(k, (uint32_t)kl, v, sizeof v, &len) == WL_OK) wl_output_write(v, len);
}
