/* The exports every Waverless guest provides: the allocator the host uses to
 * copy arguments into guest memory. */
#include <stdlib.h>

#include "waverless.h"

void* wl_alloc(uint32_t size) { return malloc(size ? size : 1); }
void wl_free(void* ptr) { free(ptr); }
