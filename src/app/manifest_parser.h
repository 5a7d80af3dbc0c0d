// Private to app/: the parser behind parseManifest(). Its top level (the app-wide fields, limits
// and the checks across functions) is in manifest_parser.cpp; one function's declaration (event,
// args, kvs and its own fields) in fn_spec_parser.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "app/app_manifest.h"
#include "app/yaml_fields.h"

namespace waverless::app {

// The parser's vocabulary (yaml_fields.h), in scope for both of its files.
using yaml::contains;
using yaml::Entry;
using yaml::findEntry;
using yaml::isPlainScalar;
using yaml::lineOf;
using yaml::oneOf;
using yaml::shown;

// Digits only: no sign, no spaces, no exponent; nullopt on overflow.
std::optional<uint64_t> parseDigits(std::string_view s);

class ManifestParser {
 public:
  explicit ManifestParser(std::string_view file) : file_(file) {}

  absl::Status error(int line, std::string_view field, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", line, ": ", std::string(field), ": ", std::string(what)));
  }

  absl::Status parse(const YAML::Node& root, AppManifest& m) const;

 private:
  absl::StatusOr<std::vector<Entry>> entries(const YAML::Node& map, int line,
                                             const std::string& field, std::string_view expected,
                                             std::span<const std::string_view> allowed) const {
    return yaml::mapEntries(file_, map, line, field, expected, allowed);
  }
  absl::Status parseFn(const Entry& entry, FnSpec& fn) const;
  absl::Status parseKvs(const Entry& entry, const std::string& field, FnSpec& fn) const;
  absl::Status parseEvents(const Entry& entry, const std::string& field, FnSpec& fn) const;
  absl::Status parseHttp(const YAML::Node& node, int line, const std::string& field,
                         EventSpec& ev) const;
  absl::Status parseArgs(const Entry& entry, const std::string& field, FnSpec& fn) const;
  absl::Status parseTopScalar(const Entry& entry, AppManifest& m) const;
  absl::Status parseLimits(const Entry& entry, AppLimitsSpec& limits) const;
  // Checks across functions; `fns` is in document order so the later of two
  // clashing declarations is the one reported.
  absl::Status checkHttpTriggers(const std::vector<FnSpec>& fns) const;

  std::string file_;
};

}  // namespace waverless::app
