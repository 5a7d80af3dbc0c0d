#include "app/durability_spec.h"

#include "absl/strings/str_cat.h"

namespace waverless::app {

namespace {
constexpr std::string_view kDurabilities[] = {"replicated", "local"};
}

absl::StatusOr<std::vector<DurabilityRule>> parseDurability(std::string_view file,
                                                            const yaml::Entry& entry) {
  std::vector<DurabilityRule> rules;
  if (entry.value.IsNull()) return rules;
  absl::StatusOr<std::vector<yaml::Entry>> fields =
      yaml::mapEntries(file, entry.value, entry.line, "durability",
                       "a map of key pattern to replicated or local", {});
  if (!fields.ok()) return fields.status();
  for (const yaml::Entry& f : *fields) {
    const std::string field = absl::StrCat("durability.", f.key);
    const int line = yaml::lineOf(f.value, f.line);
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(file), ":", line, ": ", field, ": ", what));
    };
    absl::StatusOr<kv::KeyPattern> pattern = kv::KeyPattern::parse(f.key);
    if (!pattern.ok()) return error(std::string(pattern.status().message()));
    const std::string text = f.value.IsScalar() ? f.value.Scalar() : "";
    if (!f.value.IsScalar() || !yaml::contains(kDurabilities, text)) {
      return error(
          absl::StrCat(yaml::shown(f.value), " is not one of: ", yaml::oneOf(kDurabilities)));
    }
    rules.push_back({std::move(*pattern),
                     text == "local" ? KeyDurability::kLocal : KeyDurability::kReplicated, line});
  }
  return rules;
}

}  // namespace waverless::app
