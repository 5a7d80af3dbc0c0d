// Reading a hand-written YAML document strictly, with a line to blame for
// every error: the map reader app.yaml's parser is built on. Private to
// app/ (it exposes yaml-cpp types).
#pragma once

#include <yaml-cpp/yaml.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::app::yaml {

// One key of a YAML map, with the line to blame for it.
struct Entry {
  std::string key;
  int line = 0;
  YAML::Node value;
};

const Entry* findEntry(const std::vector<Entry>& entries, std::string_view key);

// The keys of a map in document order. Rejects non-maps, non-scalar and
// repeated keys (yaml-cpp keeps duplicates, and a repeated function name
// would otherwise shadow silently) and, if `allowed` is non-empty, keys
// outside it. Errors read "<file>:<line>: <field>: <what>".
absl::StatusOr<std::vector<Entry>> mapEntries(std::string_view file, const YAML::Node& map,
                                              int line, const std::string& field,
                                              std::string_view expected,
                                              std::span<const std::string_view> allowed);

// yaml-cpp lines are 0-based, and absent on nodes it did not read from text.
// An empty value (`key:`) carries the mark of the token after it, often on a
// later line, so nulls are blamed on the fallback (their key's line).
int lineOf(const YAML::Node& node, int fallback);

// How a value is quoted back in an error message.
std::string shown(const YAML::Node& node);

// A plain (unquoted) scalar: `kv_set: 0` is an index, `kv_set: "0"` is text.
bool isPlainScalar(const YAML::Node& node);

bool contains(std::span<const std::string_view> set, std::string_view s);
std::string oneOf(std::span<const std::string_view> set);  // "a, b, c"

}  // namespace waverless::app::yaml
