/* The kernel as a Waverless function: args "n rounds", output the digest. */
#include <stdio.h>
#include <stdlib.h>

#include "kernel.h"
#include "waverless.h"

WL_FUNCTION(kernel) {
  char buf[64] = {0};
  uint32_t len = argc > 0 && args[0].len < sizeof buf ? args[0].len : 0;
  for (uint32_t i = 0; i < len; ++i) buf[i] = args[0].data[i];
  unsigned n = 100000, rounds = 10;
  sscanf(buf, "%u %u", &n, &rounds);
  char out[32];
  int k = snprintf(out, sizeof out, "%016llx", (unsigned long long)kernel_run(n, rounds));
  wl_output_write(out, (uint32_t)k);
}
