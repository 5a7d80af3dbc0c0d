/* wl_init misbehaving, chosen at build time: traps, fails, or reads KV. */
#include <stdint.h>

#include "waverless.h"

WL_INIT() {
#if defined(INIT_TRAP)
  volatile int* p = (int*)0xFFFFFFF0u;
  *p = 1; /* out of bounds: a trap */
#elif defined(INIT_FAIL)
  wl_fail(WL_ERR_INVALID, "dictionary missing", 18);
#elif defined(INIT_KV)
  char buf[8];
  uint32_t len = 0;
  wl_kv_get("config", 6, buf, sizeof buf, &len);
#endif
}

WL_FUNCTION(hello) { wl_output_write("hi", 2); }
