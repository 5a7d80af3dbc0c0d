// Functions that use the C++ SDK layer, so its wrappers run under test.
#include <string>

#include "waverless.hpp"

// body: stream. Reads the first piece with wl::body_read and the rest with
// wl::read_body; answers "<pieces> <bytes> <first byte><last byte>".
WL_FUNCTION(body_stats) {
  std::string head;
  wl_status s = WL_OK;
  int pieces = wl::body_read(head, 1000, &s) ? 1 : 0;
  std::optional<std::string> rest = wl::read_body(&s);
  if (!rest) {
    wl_fail(s, "read_body failed", 16);
  }
  std::string all = head + *rest;
  std::string out = std::to_string(pieces) + " " + std::to_string(all.size());
  if (!all.empty()) out += std::string(" ") + all.front() + all.back();
  wl::output(out);
}
