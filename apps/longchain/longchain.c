/* longchain: one request passes its data through a chain of 100 functions,
 * each triggered by the key its predecessor set, to measure per-hop cost.
 *
 *   start   chain_<token>_0 = body ─► step ─► chain_<token>_1 ─► step ─► ...
 *           ─► step (hop 99) ─► chainres_<token>   (read back by start)
 *
 * Every hop rotates ASCII letters by one (a→b, z→a), so the result after
 * 100 hops is each letter shifted by 100 % 26 = 22 places. */
#define _DEFAULT_SOURCE /* getentropy() is a BSD extension; -std=c11 hides it */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "waverless.h"

enum { kHops = 100, kTokenLen = 16, kKeyCap = 64 };

static void logError(const char* msg) { wl_log(WL_LOG_ERROR, msg, (uint32_t)strlen(msg)); }
static void output(const char* s) { wl_output_write(s, (uint32_t)strlen(s)); }

/* Logs the failure and fails the invocation with it (the request then
 * answers with this text and a status derived from s). key may be NULL. */
static void fail(const char* what, const char* key, wl_status s) {
  char msg[200];
  snprintf(msg, sizeof msg, "longchain: %s%s%s (status %d)", what, key ? ": " : "", key ? key : "",
           (int)s);
  logError(msg);
  wl_fail(s, msg, (uint32_t)strlen(msg));
}

/* Keys are shared by all concurrent requests of the app, so each request
 * names its keys with 16 random hex chars. */
static void newToken(char token[kTokenLen + 1]) {
  unsigned char raw[kTokenLen / 2];
  if (getentropy(raw, sizeof raw) != 0) {
    logError("longchain: getentropy failed; the host's random_get is broken");
    __builtin_trap();
  }
  for (size_t i = 0; i < sizeof raw; ++i) snprintf(token + 2 * i, 3, "%02x", raw[i]);
}

/* Reads key into a malloc'd buffer sized by a first guess and, when the host
 * says it is too small, by the size it reports. The caller frees *out. */
static wl_status kvGetAlloc(const char* key, uint32_t guess, char** out, uint32_t* len) {
  uint32_t cap = guess ? guess : 1;
  for (;;) {
    char* buf = malloc(cap);
    if (buf == NULL) return WL_ERR_TOO_LARGE;
    wl_status s = wl_kv_get(key, (uint32_t)strlen(key), buf, cap, len);
    if (s == WL_OK) {
      *out = buf;
      return WL_OK;
    }
    free(buf);
    if (s != WL_ERR_BUFFER_TOO_SMALL) return s;
    cap = *len ? *len : 1;
  }
}

static wl_status kvSet(const char* key, const void* value, uint32_t len) {
  return wl_kv_set(key, (uint32_t)strlen(key), value, len);
}
static wl_status kvDelete(const char* key) { return wl_kv_delete(key, (uint32_t)strlen(key)); }

/* Batches small writes: escaping would otherwise cost a host call per
 * escaped byte. */
typedef struct {
  char buf[4096];
  uint32_t len;
} OutBuf;

static void outFlush(OutBuf* o) {
  wl_output_write(o->buf, o->len);
  o->len = 0;
}

static void outPut(OutBuf* o, const char* data, uint32_t len) {
  if (o->len + len > sizeof o->buf) outFlush(o);
  if (len > sizeof o->buf) {
    wl_output_write(data, len);
    return;
  }
  memcpy(o->buf + o->len, data, len);
  o->len += len;
}

/* Appends data as the body of a JSON string. Bytes >= 0x80 pass through, so
 * UTF-8 input stays UTF-8 (the rotation never touches them). */
static void outJsonString(OutBuf* o, const char* data, uint32_t len) {
  uint32_t run = 0; /* start of the pending run of bytes needing no escape */
  for (uint32_t i = 0; i < len; ++i) {
    unsigned char c = (unsigned char)data[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    outPut(o, data + run, i - run);
    char esc[8];
    switch (c) {
      case '"':
      case '\\':
        esc[0] = '\\';
        esc[1] = (char)c;
        esc[2] = '\0';
        break;
      case '\n':
        strcpy(esc, "\\n");
        break;
      case '\r':
        strcpy(esc, "\\r");
        break;
      case '\t':
        strcpy(esc, "\\t");
        break;
      default:
        snprintf(esc, sizeof esc, "\\u%04x", c);
    }
    outPut(o, esc, (uint32_t)strlen(esc));
    run = i + 1;
  }
  outPut(o, data + run, len - run);
}

/* HTTP entry: runs the chain over the request body and reports the result. */
WL_FUNCTION(start) {
  if (argc < 1) {
    fail("start expects the request body as its argument", NULL, WL_ERR_INVALID);
    return;
  }
  char token[kTokenLen + 1], first[kKeyCap], result[kKeyCap];
  newToken(token);
  snprintf(first, sizeof first, "chain_%s_0", token);
  snprintf(result, sizeof result, "chainres_%s", token);

  wl_status s = kvSet(first, args[0].data, args[0].len);
  if (s != WL_OK) {
    fail("storing the first hop failed (a body over the value limit is refused)", first, s);
    return;
  }
  s = wl_wait_triggered();
  if (s != WL_OK) {
    fail("a step of the chain failed; see its log", first, s);
    kvDelete(result); /* in case the last hop got through */
    return;
  }
  char* data = NULL;
  uint32_t len = 0;
  s = kvGetAlloc(result, args[0].len, &data, &len);
  if (s != WL_OK) {
    fail(s == WL_ERR_NOT_FOUND ? "the chain ended without a result; see the step logs"
                               : "reading the chain result failed",
         result, s);
    return;
  }
  s = kvDelete(result);
  if (s != WL_OK) fail("deleting the chain result failed", result, s);

  OutBuf out;
  out.len = (uint32_t)snprintf(out.buf, sizeof out.buf, "{\"hops\":%d,\"final\":\"", kHops);
  outJsonString(&out, data, len);
  outPut(&out, "\"}", 2);
  outFlush(&out);
  free(data);
}

/* Splits chain_<token>_<hop>. The event pattern chain_{}_{} guarantees the
 * shape, but a segment may itself contain '_'; our tokens are hex, so the
 * last '_' is the separator. Returns 0 for a key this app never creates. */
static int parseChainKey(const char* key, const char** token, int* token_len, long* hop) {
  static const char kPrefix[] = "chain_";
  if (strncmp(key, kPrefix, sizeof kPrefix - 1) != 0) return 0;
  *token = key + sizeof kPrefix - 1;
  const char* sep = strrchr(*token, '_');
  if (sep == NULL || sep == *token || sep[1] < '0' || sep[1] > '9') return 0;
  char* end = NULL;
  *hop = strtol(sep + 1, &end, 10);
  *token_len = (int)(sep - *token);
  return *end == '\0' && *hop < kHops;
}

/* One hop: chain_<token>_<i> → rotate letters → chain_<token>_<i+1>, or
 * chainres_<token> after the last hop. */
WL_FUNCTION(step) {
  if (argc < 1 || args[0].len >= kKeyCap) {
    fail("step expects its triggering key (chain_<token>_<i>) as its argument", NULL,
         WL_ERR_INVALID);
    return;
  }
  char key[kKeyCap];
  memcpy(key, args[0].data, args[0].len);
  key[args[0].len] = '\0';

  const char* token;
  int token_len;
  long hop;
  if (!parseChainKey(key, &token, &token_len, &hop)) {
    fail("step triggered by a key that is not chain_<token>_<0..99>", key, WL_ERR_INVALID);
    return;
  }

  char* data = NULL;
  uint32_t len = 0;
  wl_status s = kvGetAlloc(key, 4096, &data, &len);
  if (s == WL_ERR_NOT_FOUND) {
    /* A step can run again (a durable trigger whose node died): if an earlier run already moved
     * the chain on and consumed this hop, the data is gone and the chain's rest ran without this
     * run waiting for it. Transient for the request: 503. */
    fail("this hop was consumed by an earlier run of the step (its node was lost)", key,
         WL_ERR_UNAVAILABLE);
    return;
  }
  if (s != WL_OK) {
    fail("reading this hop's data failed", key, s);
    return;
  }
  for (uint32_t i = 0; i < len; ++i) {
    char c = data[i];
    if (c >= 'a' && c <= 'z') data[i] = (char)('a' + (c - 'a' + 1) % 26);
    if (c >= 'A' && c <= 'Z') data[i] = (char)('A' + (c - 'A' + 1) % 26);
  }
  char next[kKeyCap];
  if (hop + 1 < kHops) {
    snprintf(next, sizeof next, "chain_%.*s_%ld", token_len, token, hop + 1);
  } else {
    snprintf(next, sizeof next, "chainres_%.*s", token_len, token);
  }
  /* The next hop first, then this one's key: a run that dies between the two is run again and
   * writes the same next hop (its trigger keeps its invocation id). */
  s = kvSet(next, data, len);
  if (s != WL_OK) fail("storing the next hop failed", next, s);
  free(data);
  s = kvDelete(key);
  if (s != WL_OK) fail("deleting this hop's key failed", key, s);
}
