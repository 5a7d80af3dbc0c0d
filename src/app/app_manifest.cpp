#include "app/app_manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <exception>
#include <limits>
#include <span>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "app/durability_spec.h"
#include "app/trigger_cycles.h"
#include "app/yaml_fields.h"

namespace waverless::app {
namespace {

using yaml::contains;
using yaml::Entry;
using yaml::findEntry;
using yaml::isPlainScalar;
using yaml::lineOf;
using yaml::oneOf;
using yaml::shown;

// app.yaml is a short hand-written file; the cap keeps a hostile upload from
// costing more than a bounded parse.
constexpr size_t kMaxManifestBytes = size_t{1} << 20;
constexpr uint64_t kWasmPageBytes = 64 * 1024;
constexpr uint64_t kMinMemoryBytes = kWasmPageBytes;
constexpr uint64_t kMaxMemoryBytes = uint64_t{4} << 30;  // wasm32's whole address space
// No invocation legitimately runs for a day; a bigger value is a unit mistake.
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24);

constexpr std::string_view kTopFields[] = {"fns",    "memory", "max_instances", "scheduler",
                                           "limits", "auth",   "durability"};
constexpr std::string_view kFnFields[] = {"event",      "args", "kvs",     "timeout",
                                          "idempotent", "body", "instance"};
constexpr std::string_view kLimitFields[] = {"request_invocations", "request_concurrency",
                                             "trigger_depth", "app_concurrency"};
constexpr std::string_view kAuthModes[] = {"none", "key"};
constexpr std::string_view kInstanceModes[] = {"reuse", "fresh"};
// Above these a limit no longer limits anything a node can hold.
constexpr uint64_t kMaxRequestInvocations = uint64_t{1} << 32;
constexpr uint64_t kMaxConcurrency = 1000000;
constexpr std::string_view kEventKinds[] = {"http_app", "kv_set", "http"};
constexpr std::string_view kHttpFields[] = {"method", "path"};
constexpr std::string_view kHttpMethods[] = {"GET", "POST", "PUT", "DELETE", "ANY"};
constexpr std::string_view kArgKinds[] = {"http_text", "kv_key"};
constexpr std::string_view kKvOps[] = {"get", "set", "delete"};
constexpr std::string_view kSchedulers[] = {"random", "hash", "straw2", "least-loaded",
                                            "data-aware"};

// Digits only: no sign, no spaces, no exponent; nullopt on overflow.
std::optional<uint64_t> parseDigits(std::string_view s) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "500ms", "10s", "2m" or a plain integer number of milliseconds.
std::optional<std::chrono::milliseconds> parseTimeout(std::string_view s) {
  uint64_t unit_ms = 1;
  if (s.ends_with("ms")) {
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
    unit_ms = 1000;
  } else if (s.ends_with("m")) {
    s.remove_suffix(1);
    unit_ms = 60 * 1000;
  }
  const std::optional<uint64_t> n = parseDigits(s);
  const auto max = static_cast<uint64_t>(kMaxTimeout.count());
  if (!n || *n == 0 || *n > max / unit_ms) return std::nullopt;
  return std::chrono::milliseconds(*n * unit_ms);
}

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

bool isValidFnName(std::string_view name) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (name.empty() || !alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alpha(c) || digit(c); });
}

// Explicit HTTP paths are served under /<app>: "/stats", "/v1/users". "/" is
// excluded because /<app> itself belongs to http_app.
bool isValidHttpPath(std::string_view path) {
  if (path.size() < 2 || path[0] != '/') return false;
  size_t pos = 1;
  while (pos <= path.size()) {
    const size_t end = std::min(path.find('/', pos), path.size());
    const std::string_view seg = path.substr(pos, end - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '~' || c == '-';
      if (!ok) return false;
    }
    pos = end + 1;
  }
  return true;
}

std::string describe(const EventSpec& ev) {
  switch (ev.kind) {
    case EventSpec::Kind::kHttpApp:
      return "http_app";
    case EventSpec::Kind::kKvSet:
      return absl::StrCat("kv_set on kvs entry ", ev.kv_index);
    case EventSpec::Kind::kHttp:
      return absl::StrCat("http ", ev.method, " ", ev.path);
  }
  return "?";
}

bool isHttp(const EventSpec& ev) {
  return ev.kind == EventSpec::Kind::kHttpApp || ev.kind == EventSpec::Kind::kHttp;
}

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

absl::Status ManifestParser::parseFn(const Entry& entry, FnSpec& fn) const {
  const std::string field = absl::StrCat("fns.", entry.key);
  fn.name = entry.key;
  fn.line = entry.line;
  if (!isValidFnName(fn.name)) {
    return error(entry.line, field,
                 "invalid function name: it is the wasm export name, so it must match "
                 "[A-Za-z_][A-Za-z0-9_]*");
  }
  const std::string event_field = absl::StrCat(field, ".event");
  if (entry.value.IsNull()) {
    return error(entry.line, event_field, "missing: every function needs at least one event");
  }
  absl::StatusOr<std::vector<Entry>> fields =
      entries(entry.value, entry.line, field, "a map of function fields", kFnFields);
  if (!fields.ok()) return fields.status();

  // kvs first: events and args refer to its entries by index or text.
  if (const Entry* kvs = findEntry(*fields, "kvs")) {
    if (absl::Status s = parseKvs(*kvs, absl::StrCat(field, ".kvs"), fn); !s.ok()) return s;
  }
  const Entry* event = findEntry(*fields, "event");
  if (event == nullptr) {
    return error(entry.line, event_field, "missing: every function needs at least one event");
  }
  if (absl::Status s = parseEvents(*event, event_field, fn); !s.ok()) return s;
  if (const Entry* args = findEntry(*fields, "args")) {
    if (absl::Status s = parseArgs(*args, absl::StrCat(field, ".args"), fn); !s.ok()) return s;
  }
  if (const Entry* timeout = findEntry(*fields, "timeout")) {
    const std::string text = timeout->value.IsScalar() ? timeout->value.Scalar() : "";
    const std::optional<std::chrono::milliseconds> ms = parseTimeout(text);
    if (!timeout->value.IsScalar() || !ms) {
      return error(lineOf(timeout->value, timeout->line), absl::StrCat(field, ".timeout"),
                   absl::StrCat(shown(timeout->value),
                                " is not a duration between 1ms and 24h: use e.g. 500ms, 10s, "
                                "2m or an integer number of milliseconds"));
    }
    fn.timeout = *ms;
  }
  if (const Entry* idempotent = findEntry(*fields, "idempotent")) {
    bool value = false;
    if (!idempotent->value.IsScalar() || !YAML::convert<bool>::decode(idempotent->value, value)) {
      return error(lineOf(idempotent->value, idempotent->line), absl::StrCat(field, ".idempotent"),
                   "must be true or false");
    }
    fn.idempotent = value;
  }
  if (const Entry* instance = findEntry(*fields, "instance")) {
    const std::string text = instance->value.IsScalar() ? instance->value.Scalar() : "";
    if (!contains(kInstanceModes, text)) {
      return error(lineOf(instance->value, instance->line), absl::StrCat(field, ".instance"),
                   absl::StrCat(shown(instance->value), " is not one of: ", oneOf(kInstanceModes)));
    }
    fn.fresh_instance = text == "fresh";
  }
  if (const Entry* body = findEntry(*fields, "body")) {
    const std::string body_field = absl::StrCat(field, ".body");
    const int line = lineOf(body->value, body->line);
    const std::string text = body->value.IsScalar() ? body->value.Scalar() : "";
    if (text != "stream" && text != "buffer") {
      return error(line, body_field,
                   absl::StrCat(shown(body->value), " is not one of: buffer, stream"));
    }
    fn.stream_body = text == "stream";
    if (fn.stream_body) {
      for (const EventSpec& ev : fn.events) {
        if (!isHttp(ev)) {
          return error(line, body_field,
                       "stream needs every event to be http_app or http (a kv_set has no body)");
        }
      }
      for (const ArgSpec& arg : fn.args) {
        if (arg.kind == ArgSpec::Kind::kHttpText) {
          return error(line, body_field,
                       "a streamed body is read with wl_body_read, not passed as an argument: "
                       "remove http_text from args");
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ManifestParser::parseKvs(const Entry& entry, const std::string& field,
                                      FnSpec& fn) const {
  if (entry.value.IsNull()) return absl::OkStatus();
  absl::StatusOr<std::vector<Entry>> patterns = entries(
      entry.value, entry.line, field, "a map of key pattern to operations, e.g. key_{}: [get]", {});
  if (!patterns.ok()) return patterns.status();
  for (const Entry& p : *patterns) {
    const std::string p_field = absl::StrCat(field, ".", p.key);
    absl::StatusOr<kv::KeyPattern> pattern = kv::KeyPattern::parse(p.key);
    if (!pattern.ok()) return error(p.line, p_field, std::string(pattern.status().message()));
    KvAccess access{*std::move(pattern)};
    access.line = p.line;
    const int ops_line = lineOf(p.value, p.line);
    if (!p.value.IsSequence()) {
      return error(ops_line, p_field, "must be a list of operations, e.g. [get, set, delete]");
    }
    if (p.value.size() == 0) {
      return error(ops_line, p_field, "no operations listed (expected get, set or delete)");
    }
    for (size_t i = 0; i < p.value.size(); ++i) {
      const YAML::Node op = p.value[i];
      const std::string text = op.IsScalar() ? op.Scalar() : "";
      if (!op.IsScalar() || !contains(kKvOps, text)) {
        return error(lineOf(op, ops_line), absl::StrCat(p_field, "[", i, "]"),
                     absl::StrCat("unknown operation ", shown(op),
                                  " (expected one of: ", oneOf(kKvOps), ")"));
      }
      (text == "get" ? access.get : text == "set" ? access.set : access.del) = true;
    }
    fn.kvs.push_back(std::move(access));
  }
  return absl::OkStatus();
}

absl::Status ManifestParser::parseEvents(const Entry& entry, const std::string& field,
                                         FnSpec& fn) const {
  const YAML::Node& list = entry.value;
  if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
    return error(entry.line, field, "empty: every function needs at least one event");
  }
  if (!list.IsSequence()) {
    return error(lineOf(list, entry.line), field,
                 "must be a list of triggers, e.g. `- http_app:` or `- kv_set: 0`");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string item_field = absl::StrCat(field, "[", i, "]");
    EventSpec ev;
    ev.line = lineOf(item, entry.line);
    // A trigger is a one-key map (`- kv_set: 0`); a bare `- http_app` is accepted too.
    std::string kind;
    YAML::Node value;
    int value_line = ev.line;
    if (item.IsScalar()) {
      kind = item.Scalar();
      if (!contains(kEventKinds, kind)) {
        return error(ev.line, item_field,
                     absl::StrCat("unknown trigger \"", kind,
                                  "\" (expected one of: ", oneOf(kEventKinds), ")"));
      }
    } else {
      absl::StatusOr<std::vector<Entry>> keys =
          entries(item, ev.line, item_field, "a trigger, e.g. `- http_app:`", kEventKinds);
      if (!keys.ok()) return keys.status();
      if (keys->size() != 1) {
        return error(ev.line, item_field,
                     absl::StrCat("one trigger per list item (found ", keys->size(), ")"));
      }
      kind = (*keys)[0].key;
      value = (*keys)[0].value;
      value_line = lineOf(value, (*keys)[0].line);
    }
    const std::string kind_field = absl::StrCat(item_field, ".", kind);

    if (kind == "http_app") {
      ev.kind = EventSpec::Kind::kHttpApp;
      if (!value.IsNull()) return error(value_line, kind_field, "takes no value");
    } else if (kind == "kv_set") {
      ev.kind = EventSpec::Kind::kKvSet;
      if (!value.IsScalar()) {
        return error(value_line, kind_field,
                     "must name one of this function's kvs entries, by index or pattern");
      }
      const std::string text = value.Scalar();
      const std::optional<uint64_t> index = isPlainScalar(value) ? parseDigits(text) : std::nullopt;
      if (index) {
        if (*index >= fn.kvs.size()) {
          return error(value_line, kind_field,
                       absl::StrCat("kvs entry ", *index, " does not exist (this function has ",
                                    fn.kvs.size(), " kvs entries)"));
        }
        ev.kv_index = static_cast<size_t>(*index);
      } else {
        auto it = std::find_if(fn.kvs.begin(), fn.kvs.end(),
                               [&](const KvAccess& a) { return a.pattern.text() == text; });
        if (it == fn.kvs.end()) {
          std::vector<std::string> known;
          for (const KvAccess& a : fn.kvs) known.push_back(a.pattern.text());
          return error(
              value_line, kind_field,
              absl::StrCat("\"", text, "\" is not one of this function's kvs patterns (",
                           known.empty() ? "it has none" : absl::StrJoin(known, ", "), ")"));
        }
        ev.kv_index = static_cast<size_t>(it - fn.kvs.begin());
      }
    } else {
      ev.kind = EventSpec::Kind::kHttp;
      if (absl::Status s = parseHttp(value, value_line, kind_field, ev); !s.ok()) return s;
    }

    // Explicit http triggers are compared across all functions later.
    if (ev.kind != EventSpec::Kind::kHttp) {
      for (size_t j = 0; j < fn.events.size(); ++j) {
        const EventSpec& prev = fn.events[j];
        if (prev.kind == ev.kind && prev.kv_index == ev.kv_index) {
          return error(ev.line, item_field,
                       absl::StrCat("same trigger as event[", j, "] (line ", prev.line, ")"));
        }
      }
    }
    fn.events.push_back(std::move(ev));
  }
  return absl::OkStatus();
}

absl::Status ManifestParser::parseHttp(const YAML::Node& node, int line, const std::string& field,
                                       EventSpec& ev) const {
  if (node.IsNull()) return error(line, field, "needs a path, e.g. {method: POST, path: /stats}");
  absl::StatusOr<std::vector<Entry>> keys =
      entries(node, line, field, "a map, e.g. {method: POST, path: /stats}", kHttpFields);
  if (!keys.ok()) return keys.status();

  ev.method = "ANY";
  if (const Entry* method = findEntry(*keys, "method")) {
    const std::string text = method->value.IsScalar() ? method->value.Scalar() : "";
    if (!method->value.IsScalar() || !contains(kHttpMethods, text)) {
      return error(lineOf(method->value, method->line), absl::StrCat(field, ".method"),
                   absl::StrCat(shown(method->value), " is not one of: ", oneOf(kHttpMethods)));
    }
    ev.method = text;
  }
  const Entry* path = findEntry(*keys, "path");
  if (path == nullptr) return error(line, absl::StrCat(field, ".path"), "missing");
  const std::string text = path->value.IsScalar() ? path->value.Scalar() : "";
  if (!path->value.IsScalar() || !isValidHttpPath(text)) {
    return error(lineOf(path->value, path->line), absl::StrCat(field, ".path"),
                 absl::StrCat(shown(path->value),
                              " is not a path like /stats or /v1/users: segments of "
                              "[A-Za-z0-9._~-] after a leading /, served under /<app>"));
  }
  ev.path = text;
  return absl::OkStatus();
}

absl::Status ManifestParser::parseArgs(const Entry& entry, const std::string& field,
                                       FnSpec& fn) const {
  const YAML::Node& list = entry.value;
  if (list.IsNull()) return absl::OkStatus();  // the original format writes a bare `args:`
  if (!list.IsSequence()) {
    return error(lineOf(list, entry.line), field,
                 "must be a list, e.g. [http_text] or [kv_key(0)]");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string item_field = absl::StrCat(field, "[", i, "]");
    const int line = lineOf(item, entry.line);
    const std::string unknown = "expected http_text or kv_key(N)";
    // Written `http_text` / `kv_key(0)`, or as the original's one-key maps
    // `- http_text:` / `- kv_key: 0`.
    std::string kind;
    std::string index_text;
    bool index_plain = true;
    if (item.IsScalar()) {
      const std::string text = item.Scalar();
      if (text == "http_text") {
        kind = text;
      } else if (text.starts_with("kv_key(") && text.ends_with(")")) {
        kind = "kv_key";
        index_text = text.substr(7, text.size() - 8);
      } else {
        return error(line, item_field, absl::StrCat("unknown arg \"", text, "\" (", unknown, ")"));
      }
    } else {
      absl::StatusOr<std::vector<Entry>> keys =
          entries(item, line, item_field, absl::StrCat("an arg (", unknown, ")"), kArgKinds);
      if (!keys.ok()) return keys.status();
      if (keys->size() != 1) {
        return error(line, item_field,
                     absl::StrCat("one arg per list item (found ", keys->size(), ")"));
      }
      const Entry& k = (*keys)[0];
      kind = k.key;
      if (kind == "http_text" && !k.value.IsNull()) {
        return error(k.line, absl::StrCat(item_field, ".http_text"), "takes no value");
      }
      if (kind == "kv_key") {
        index_text = k.value.IsScalar() ? k.value.Scalar() : "";
        index_plain = isPlainScalar(k.value);
      }
    }

    ArgSpec arg;
    if (kind == "http_text") {
      arg.kind = ArgSpec::Kind::kHttpText;
    } else {
      arg.kind = ArgSpec::Kind::kKvKey;
      const std::optional<uint64_t> index =
          index_plain ? parseDigits(index_text) : std::optional<uint64_t>();
      if (!index) {
        return error(line, item_field,
                     absl::StrCat("kv_key needs a kvs entry index, e.g. kv_key(0), not \"",
                                  index_text, "\""));
      }
      if (*index >= fn.kvs.size()) {
        return error(
            line, item_field,
            absl::StrCat("kv_key(", *index, "): kvs entry ", *index,
                         " does not exist (this function has ", fn.kvs.size(), " kvs entries)"));
      }
      arg.kv_index = static_cast<size_t>(*index);
    }

    // Every way the function can be invoked must be able to fill every arg:
    // a kv_set has no request body, a request has no triggering key.
    for (size_t j = 0; j < fn.events.size(); ++j) {
      const EventSpec& ev = fn.events[j];
      if (arg.kind == ArgSpec::Kind::kHttpText && !isHttp(ev)) {
        return error(line, item_field,
                     absl::StrCat("http_text needs every event to be http_app or http, but event[",
                                  j, "] (line ", ev.line, ") is ", describe(ev),
                                  ", which has no request body"));
      }
      if (arg.kind == ArgSpec::Kind::kKvKey &&
          (ev.kind != EventSpec::Kind::kKvSet || ev.kv_index != arg.kv_index)) {
        return error(line, item_field,
                     absl::StrCat("kv_key(", arg.kv_index,
                                  ") needs every event to be a kv_set on kvs entry ", arg.kv_index,
                                  ", but event[", j, "] (line ", ev.line, ") is ", describe(ev)));
      }
    }
    fn.args.push_back(arg);
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
