/* hello: GET/POST /hello answers "hello world". */
#include "waverless.h"

WL_FUNCTION(fn2) {
  (void)args;
  (void)argc;
  static const char kReply[] = "hello world";
  if (wl_output_write(kReply, sizeof kReply - 1) != WL_OK) {
    static const char kMsg[] = "hello: output_write failed";
    wl_log(WL_LOG_ERROR, kMsg, sizeof kMsg - 1);
  }
}
