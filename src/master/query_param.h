// Private to master/: one value of an undecoded query string ("" when
// absent). The control API's values are names and numbers: '+' and '%' are
// not decoded.
#pragma once

#include <string>
#include <string_view>

namespace waverless::master {

inline std::string queryParam(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      return eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
    }
    pos = amp + 1;
  }
  return "";
}

}  // namespace waverless::master
