#include "app/yaml_fields.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace waverless::app::yaml {

const Entry* findEntry(const std::vector<Entry>& entries, std::string_view key) {
  for (const Entry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

absl::StatusOr<std::vector<Entry>> mapEntries(std::string_view file, const YAML::Node& map,
                                              int line, const std::string& field,
                                              std::string_view expected,
                                              std::span<const std::string_view> allowed) {
  auto error = [file](int at, std::string_view f, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(file), ":", at, ": ", std::string(f), ": ", std::string(what)));
  };
  if (!map.IsMap()) {
    return error(lineOf(map, line), field, absl::StrCat("must be ", std::string(expected)));
  }
  std::vector<Entry> out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const int key_line = lineOf(it->first, line);
    if (!it->first.IsScalar()) {
      return error(key_line, field.empty() ? "document" : field, "keys must be plain names");
    }
    std::string key = it->first.Scalar();
    const std::string key_field = field.empty() ? key : absl::StrCat(field, ".", key);
    if (!allowed.empty() && !contains(allowed, key)) {
      return error(key_line, key_field,
                   absl::StrCat("unknown field (expected one of: ", oneOf(allowed), ")"));
    }
    if (const Entry* first = findEntry(out, key)) {
      return error(key_line, key_field,
                   absl::StrCat("listed twice (first at line ", first->line, ")"));
    }
    out.push_back({std::move(key), key_line, it->second});
  }
  return out;
}

int lineOf(const YAML::Node& node, int fallback) {
  if (node.IsNull()) return fallback;
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : mark.line + 1;
}

std::string shown(const YAML::Node& node) {
  if (node.IsScalar()) return absl::StrCat("\"", node.Scalar(), "\"");
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "an empty value";
}

bool isPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

bool contains(std::span<const std::string_view> set, std::string_view s) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

std::string oneOf(std::span<const std::string_view> set) {
  std::string out;
  for (std::string_view s : set) absl::StrAppend(&out, out.empty() ? "" : ", ", std::string(s));
  return out;
}

}  // namespace waverless::app::yaml
