#include "app/manifest_parser.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <system_error>

#include "app/durability_spec.h"
#include "app/trigger_cycles.h"

namespace waverless::app {

namespace {

// Memory limits, in bytes: from one wasm page to wasm32's whole address space.
constexpr uint64_t kWasmPageBytes = 64 * 1024;
constexpr uint64_t kMinMemoryBytes = kWasmPageBytes;
constexpr uint64_t kMaxMemoryBytes = uint64_t{4} << 30;  // wasm32's whole address space
constexpr std::string_view kTopFields[] = {"fns",    "memory", "max_instances", "scheduler",
                                           "limits", "auth",   "durability"};
constexpr std::string_view kLimitFields[] = {"request_invocations", "request_concurrency",
                                             "trigger_depth", "app_concurrency"};
constexpr std::string_view kAuthModes[] = {"none", "key"};
// Above these a limit no longer limits anything a node can hold.
constexpr uint64_t kMaxRequestInvocations = uint64_t{1} << 32;
constexpr uint64_t kMaxConcurrency = 1000000;
constexpr std::string_view kSchedulers[] = {"random", "hash", "straw2", "least-loaded",
                                            "data-aware"};

// "64KiB", "256MiB", "4GiB" or a plain integer number of bytes.
std::optional<uint64_t> parseBytes(std::string_view s) {
  uint64_t unit = 1;
  if (s.ends_with("KiB")) {
    unit = uint64_t{1} << 10;
  } else if (s.ends_with("MiB")) {
    unit = uint64_t{1} << 20;
  } else if (s.ends_with("GiB")) {
    unit = uint64_t{1} << 30;
  }
  if (unit != 1) s.remove_suffix(3);
  const std::optional<uint64_t> n = parseDigits(s);
  if (!n || *n > std::numeric_limits<uint64_t>::max() / unit) return std::nullopt;
  return *n * unit;
}

}  // namespace

// Digits only: no sign, no spaces, no exponent; nullopt on overflow.
std::optional<uint64_t> parseDigits(std::string_view s) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

absl::Status ManifestParser::parse(const YAML::Node& root, AppManifest& m) const {
  if (root.IsNull()) return error(1, "fns", "missing: list the app's functions under fns:");
  absl::StatusOr<std::vector<Entry>> top =
      entries(root, 1, "", "a map with fns: at the top level", kTopFields);
  if (!top.ok()) {
    // A root that is not a map has no key to name; say where the text starts.
    if (!root.IsMap()) return error(lineOf(root, 1), "document", "must be a map with fns:");
    return top.status();
  }

  const Entry* fns = findEntry(*top, "fns");
  if (fns == nullptr) return error(1, "fns", "missing: list the app's functions under fns:");
  for (const Entry& e : *top) {
    if (e.key == "fns") {
      if (e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0)) {
        return error(e.line, "fns", "empty: list at least one function");
      }
      absl::StatusOr<std::vector<Entry>> fn_entries =
          entries(e.value, e.line, "fns", "a map of function name to function", {});
      if (!fn_entries.ok()) return fn_entries.status();
      for (const Entry& fe : *fn_entries) {
        FnSpec fn;
        if (absl::Status s = parseFn(fe, fn); !s.ok()) return s;
        m.fns.push_back(std::move(fn));
      }
    } else if (absl::Status s = parseTopScalar(e, m); !s.ok()) {
      return s;
    }
  }

  if (absl::Status s = checkHttpTriggers(m.fns); !s.ok()) return s;
  std::sort(m.fns.begin(), m.fns.end(),
            [](const FnSpec& a, const FnSpec& b) { return a.name < b.name; });
  addTriggerCycleWarnings(m, file_);
  return absl::OkStatus();
}

absl::Status ManifestParser::parseTopScalar(const Entry& e, AppManifest& m) const {
  const std::string text = e.value.IsScalar() ? e.value.Scalar() : "";
  const int line = lineOf(e.value, e.line);
  if (e.key == "memory") {
    const std::optional<uint64_t> bytes = parseBytes(text);
    if (!e.value.IsScalar() || !bytes || *bytes < kMinMemoryBytes || *bytes > kMaxMemoryBytes) {
      return error(line, e.key,
                   absl::StrCat(shown(e.value),
                                " is not a memory size between 64KiB and 4GiB: use e.g. 64KiB, "
                                "256MiB, 1GiB or an integer number of bytes"));
    }
    m.memory_pages = static_cast<uint32_t>((*bytes + kWasmPageBytes - 1) / kWasmPageBytes);
  } else if (e.key == "max_instances") {
    const std::optional<uint64_t> n = parseDigits(text);
    if (!e.value.IsScalar() || !n || *n == 0) {
      return error(line, e.key, absl::StrCat(shown(e.value), " is not a positive integer"));
    }
    m.max_instances = static_cast<size_t>(*n);
  } else if (e.key == "limits") {
    return parseLimits(e, m.limits);
  } else if (e.key == "durability") {
    absl::StatusOr<std::vector<DurabilityRule>> rules = parseDurability(file_, e);
    if (!rules.ok()) return rules.status();
    m.durability = std::move(*rules);
  } else if (e.key == "auth") {
    if (!e.value.IsScalar() || !contains(kAuthModes, text)) {
      return error(line, e.key,
                   absl::StrCat(shown(e.value), " is not one of: ", oneOf(kAuthModes)));
    }
    m.auth = text == "key" ? AuthMode::kKey : AuthMode::kNone;
  } else if (e.key == "scheduler") {
    if (!e.value.IsScalar() || !contains(kSchedulers, text)) {
      return error(line, e.key,
                   absl::StrCat(shown(e.value),
                                " is not a scheduler (expected one of: ", oneOf(kSchedulers), ")"));
    }
    m.scheduler = text;
  }
  return absl::OkStatus();
}

absl::Status ManifestParser::parseLimits(const Entry& entry, AppLimitsSpec& limits) const {
  if (entry.value.IsNull()) return absl::OkStatus();
  absl::StatusOr<std::vector<Entry>> fields =
      entries(entry.value, entry.line, "limits", "a map of limit name to number", kLimitFields);
  if (!fields.ok()) return fields.status();
  for (const Entry& f : *fields) {
    const std::string field = absl::StrCat("limits.", f.key);
    const uint64_t max = f.key == "request_invocations" ? kMaxRequestInvocations : kMaxConcurrency;
    const std::optional<uint64_t> n =
        f.value.IsScalar() ? parseDigits(f.value.Scalar()) : std::nullopt;
    if (!n || *n == 0 || *n > max) {
      return error(lineOf(f.value, f.line), field,
                   absl::StrCat(shown(f.value), " is not an integer between 1 and ", max));
    }
    if (f.key == "request_invocations") {
      limits.request_invocations = *n;
    } else if (f.key == "request_concurrency") {
      limits.request_concurrency = static_cast<uint32_t>(*n);
    } else if (f.key == "trigger_depth") {
      limits.trigger_depth = static_cast<uint32_t>(*n);
    } else {
      limits.app_concurrency = static_cast<uint32_t>(*n);
    }
  }
  return absl::OkStatus();
}

absl::Status ManifestParser::checkHttpTriggers(const std::vector<FnSpec>& fns) const {
  struct Seen {
    const FnSpec* fn;
    size_t index;
  };
  const FnSpec* http_app = nullptr;
  std::vector<Seen> http;
  for (const FnSpec& fn : fns) {
    for (size_t i = 0; i < fn.events.size(); ++i) {
      const EventSpec& ev = fn.events[i];
      const std::string field = absl::StrCat("fns.", fn.name, ".event[", i, "]");
      if (ev.kind == EventSpec::Kind::kHttpApp) {
        if (http_app != nullptr && http_app != &fn) {
          return error(ev.line, absl::StrCat(field, ".http_app"),
                       absl::StrCat("only one function per app may use http_app, and fns.",
                                    http_app->name, " (line ", http_app->line, ") already does"));
        }
        http_app = &fn;
      } else if (ev.kind == EventSpec::Kind::kHttp) {
        for (const Seen& seen : http) {
          const EventSpec& other = seen.fn->events[seen.index];
          if (other.path == ev.path &&
              (other.method == ev.method || other.method == "ANY" || ev.method == "ANY")) {
            return error(ev.line, absl::StrCat(field, ".http"),
                         absl::StrCat(ev.method, " ", ev.path, " clashes with ", other.method, " ",
                                      other.path, " of fns.", seen.fn->name, ".event[", seen.index,
                                      "] (line ", other.line, ")"));
          }
        }
        http.push_back({&fn, i});
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace waverless::app
