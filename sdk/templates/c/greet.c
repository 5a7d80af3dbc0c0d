/* {{app}}: greets the name in the request body and counts the calls per name
 * in the KV store (key calls_<name>, allowed by app.yaml's kvs list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waverless.h"

WL_FUNCTION(greet) {
  char name[64] = "world";
  if (argc > 0 && args[0].len > 0 && args[0].len < sizeof name) {
    memcpy(name, args[0].data, args[0].len);
    name[args[0].len] = '\0';
  }
  char key[80];
  int klen = snprintf(key, sizeof key, "calls_%s", name);
  char count[24] = "0";
  uint32_t len = 0;
  if (wl_kv_get(key, (uint32_t)klen, count, sizeof count - 1, &len) == WL_OK) count[len] = '\0';
  long calls = strtol(count, NULL, 10) + 1;
  int n = snprintf(count, sizeof count, "%ld", calls);
  wl_kv_set(key, (uint32_t)klen, count, (uint32_t)n);
  char out[128];
  n = snprintf(out, sizeof out, "hello %s (call %ld)", name, calls);
  wl_output_write(out, (uint32_t)n);
}
