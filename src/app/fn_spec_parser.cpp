// One function's declaration in app.yaml: its own fields, its events, its args and its kvs.
#include <algorithm>
#include <chrono>

#include "absl/strings/str_join.h"
#include "app/manifest_parser.h"

namespace waverless::app {

namespace {

// No invocation legitimately runs for a day; a bigger value is a unit mistake.
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24);
constexpr std::string_view kFnFields[] = {"event",      "args", "kvs",     "timeout",
                                          "idempotent", "body", "instance"};
constexpr std::string_view kInstanceModes[] = {"reuse", "fresh"};
constexpr std::string_view kEventKinds[] = {"http_app", "kv_set", "http"};
constexpr std::string_view kHttpFields[] = {"method", "path"};
constexpr std::string_view kHttpMethods[] = {"GET", "POST", "PUT", "DELETE", "ANY"};
constexpr std::string_view kArgKinds[] = {"http_text", "kv_key"};
constexpr std::string_view kKvOps[] = {"get", "set", "delete"};

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

}  // namespace

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

}  // namespace waverless::app
