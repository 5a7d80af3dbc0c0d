#include "app/app_manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "app/manifest_parser.h"

namespace waverless::app {
namespace {

// app.yaml is a short hand-written file; the cap keeps a hostile upload from
// costing more than a bounded parse.
constexpr size_t kMaxManifestBytes = size_t{1} << 20;

}  // namespace

const FnSpec* AppManifest::find(std::string_view fn) const {
  auto it =
      std::lower_bound(fns.begin(), fns.end(), fn,
                       [](const FnSpec& f, std::string_view wanted) { return f.name < wanted; });
  return it != fns.end() && it->name == fn ? &*it : nullptr;
}

const FnSpec* AppManifest::httpAppFn() const {
  for (const FnSpec& fn : fns) {
    for (const EventSpec& ev : fn.events) {
      if (ev.kind == EventSpec::Kind::kHttpApp) return &fn;
    }
  }
  return nullptr;
}

const FnSpec* AppManifest::httpFn(std::string_view method, std::string_view path) const {
  for (const FnSpec& fn : fns) {
    for (const EventSpec& ev : fn.events) {
      if (ev.kind == EventSpec::Kind::kHttp && ev.path == path &&
          (ev.method == "ANY" || ev.method == method)) {
        return &fn;
      }
    }
  }
  return nullptr;
}

std::vector<std::pair<const FnSpec*, size_t>> AppManifest::triggeredBy(std::string_view key) const {
  std::vector<std::pair<const FnSpec*, size_t>> out;
  for (const FnSpec& fn : fns) {
    for (const EventSpec& ev : fn.events) {
      if (ev.kind == EventSpec::Kind::kKvSet && fn.kvs[ev.kv_index].pattern.matches(key)) {
        out.emplace_back(&fn, ev.kv_index);
      }
    }
  }
  return out;
}

bool AppManifest::allowed(const FnSpec& fn, KvOp op, std::string_view key) const {
  for (const KvAccess& access : fn.kvs) {
    const bool allows = op == KvOp::kGet ? access.get : op == KvOp::kSet ? access.set : access.del;
    if (allows && access.pattern.matches(key)) return true;
  }
  return false;
}

KeyDurability AppManifest::durabilityOf(std::string_view key) const {
  for (const DurabilityRule& rule : durability) {
    if (rule.pattern.matches(key)) return rule.durability;
  }
  return KeyDurability::kReplicated;
}

absl::StatusOr<AppManifest> parseManifest(std::string_view yaml, std::string_view app_name,
                                          std::string_view file) {
  const ManifestParser parser(file);
  if (yaml.size() > kMaxManifestBytes) {
    return parser.error(1, "document",
                        absl::StrCat("too large (", yaml.size(), " bytes, the limit is 1 MiB)"));
  }
  // yaml-cpp reports syntax errors (and depth overruns) by throwing; nothing
  // it throws may leave this function.
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    AppManifest m;
    m.name = std::string(app_name);
    if (absl::Status s = parser.parse(root, m); !s.ok()) return s;
    return m;
  } catch (const YAML::Exception& e) {
    return parser.error(e.mark.is_null() ? 1 : e.mark.line + 1, "yaml", e.msg);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(std::string(file), ": unexpected error while parsing: ", e.what()));
  }
}

absl::Status checkExports(const AppManifest& m, const std::vector<std::string>& exports,
                          std::string_view file) {
  std::vector<const FnSpec*> missing;
  for (const FnSpec& fn : m.fns) {
    if (std::find(exports.begin(), exports.end(), fn.name) == exports.end()) {
      missing.push_back(&fn);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  std::sort(missing.begin(), missing.end(),
            [](const FnSpec* a, const FnSpec* b) { return a->line < b->line; });
  std::vector<std::string> lines;
  for (const FnSpec* fn : missing) {
    lines.push_back(absl::StrCat(std::string(file), ":", fn->line, ": fns.", fn->name,
                                 ": not exported by app.wasm"));
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace waverless::app
