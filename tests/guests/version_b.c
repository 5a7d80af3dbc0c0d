#include "waverless.h"
static int calls;
WL_FUNCTION(which) {
  ++calls;
  wl_output_write("version B", 9);
}
