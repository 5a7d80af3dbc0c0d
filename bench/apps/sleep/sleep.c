/* sleep: waits `ms` (the request body, default 100) in the host, then
 * answers "slept". */
#include "waverless.h"

WL_FUNCTION(nap) {
  uint32_t ms = 0;
  if (argc > 0) {
    for (uint32_t i = 0; i < args[0].len && args[0].data[i] >= '0' && args[0].data[i] <= '9'; ++i) {
      ms = ms * 10 + (uint32_t)(args[0].data[i] - '0');
    }
  }
  if (ms == 0) ms = 100;
  if (wl_sleep_ms(ms) != WL_OK) {
    static const char kMsg[] = "sleep: wl_sleep_ms failed";
    wl_output_write(kMsg, sizeof kMsg - 1);
    return;
  }
  wl_output_write("slept", 5);
}
