/* kvput: see app.yaml. */
#include <string.h>

#include "waverless.h"

enum { kKeys = 100000 };

static void fail(wl_status code, const char* what) { wl_fail(code, what, (uint32_t)strlen(what)); }

/* FNV-1a: the invocation id differs per request; any spread over kKeys will do. */
static uint32_t spread(const char* s, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; ++i) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h % kKeys;
}

WL_FUNCTION(put) {
  if (argc < 1) fail(WL_ERR_INVALID, "want key\\nvalue");
  const char* body = args[0].data;
  uint32_t len = args[0].len;
  const char* nl = memchr(body, '\n', len);
  if (nl == NULL || nl == body) fail(WL_ERR_INVALID, "want key\\nvalue");
  uint32_t klen = (uint32_t)(nl - body);
  if (klen > 200) fail(WL_ERR_INVALID, "key longer than 200 bytes");
  char key[256] = "bk_";
  uint32_t kl = 3;
  if (klen == 1 && body[0] == '-') {
    char id[128];
    uint32_t il = 0;
    if (wl_invocation_id(id, sizeof id, &il) != WL_OK) fail(WL_ERR_FAILED, "no invocation id");
    uint32_t k = spread(id, il);
    char digits[8];
    uint32_t nd = 0;
    do {
      digits[nd++] = (char)('0' + k % 10);
      k /= 10;
    } while (k != 0);
    while (nd > 0) key[kl++] = digits[--nd];
  } else {
    memcpy(key + kl, body, klen);
    kl += klen;
  }
  wl_status st = wl_kv_set(key, kl, nl + 1, len - klen - 1);
  if (st != WL_OK) fail(st, "kv_set failed");
  wl_output_write(key, kl);
}
