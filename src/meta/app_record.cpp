#include "meta/app_record.h"

namespace waverless::meta {

namespace {
constexpr std::string_view kPrefix = "app/";
}

std::string appRecordKey(std::string_view name) {
  std::string key(kPrefix);
  key += name;
  return key;
}

std::optional<std::string> appOfRecordKey(std::string_view key) {
  if (!key.starts_with(kPrefix) || key.size() == kPrefix.size()) return std::nullopt;
  return std::string(key.substr(kPrefix.size()));
}

std::map<std::string, std::string> recordedApps(const std::map<std::string, std::string>& map) {
  std::map<std::string, std::string> out;
  // Keys are sorted: the app records are one contiguous range.
  for (auto it = map.lower_bound(std::string(kPrefix)); it != map.end(); ++it) {
    if (!it->first.starts_with(kPrefix)) break;
    if (auto name = appOfRecordKey(it->first)) out[*name] = it->second;
  }
  return out;
}

}  // namespace waverless::meta
