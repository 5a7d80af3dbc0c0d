// Private to master/: one value of an undecoded query string ("" when
// absent). The control API's values are names and numbers: '+' and '%' are
// not decoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace waverless::master {

// The value of `key` ("" for a bare `key`), or nullopt when it is absent.
inline std::optional<std::string_view> findParam(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
    }
    pos = amp + 1;
  }
  return std::nullopt;
}

inline std::string queryParam(std::string_view query, std::string_view key) {
  return std::string(findParam(query, key).value_or(""));
}

inline bool hasParam(std::string_view query, std::string_view key) {
  return findParam(query, key).has_value();
}

}  // namespace waverless::master
