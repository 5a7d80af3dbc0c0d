#include "waverless.h"
WL_FUNCTION(which) { wl_output_write("version A", 9); }
