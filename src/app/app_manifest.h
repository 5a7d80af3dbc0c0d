// The app subsystem: what an app declares in its app.yaml, parsed and validated.
//
// An AppManifest is the platform's only view of an app's functions: which
// events trigger each one, which arguments it receives, which keys it may
// touch and how, and the app-wide limits. parseManifest() treats app.yaml as
// untrusted input: every problem comes back as an InvalidArgumentError naming
// file, line and field, never as an exception. This subsystem does not load
// wasm, route requests or store keys; it only answers questions about the
// declarations (triggeredBy, allowed, httpFn) for the parts that do.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/key_pattern.h"

namespace waverless::app {

enum class KvOp { kGet, kSet, kDelete };

// One `kvs:` entry of a function: a key pattern and the operations allowed on
// keys it matches.
struct KvAccess {
  kv::KeyPattern pattern;
  bool get = false, set = false, del = false;
  int line = 0;
};

// One `event:` list item. kv_index names the function's own kvs entry whose
// pattern a kv_set must match. method/path are set for kHttp only; path is
// relative to /<app> ("/stats") and method is GET, POST, PUT, DELETE or ANY.
struct EventSpec {
  enum class Kind { kHttpApp, kKvSet, kHttp } kind = Kind::kHttpApp;
  size_t kv_index = 0;
  std::string method, path;
  int line = 0;
};

// One `args:` item: http_text is the request body, kv_key(N) the key whose
// set (matched by kvs entry N) triggered the call. Validation guarantees that
// every event of the function can supply every arg.
struct ArgSpec {
  enum class Kind { kHttpText, kKvKey } kind = Kind::kHttpText;
  size_t kv_index = 0;
};

struct FnSpec {
  std::string name;  // also the wasm export name
  std::vector<EventSpec> events;
  std::vector<ArgSpec> args;
  std::vector<KvAccess> kvs;
  std::optional<std::chrono::milliseconds> timeout;
  bool idempotent = false;
  // body: stream — the function starts while its request body still
  // arrives and reads it with wl_body_read (no http_text argument).
  bool stream_body = false;
  // instance: fresh — every invocation gets a pristine instance (no heap or
  // globals left by an earlier call); the default reuses a healthy one.
  bool fresh_instance = false;
  int line = 0;
};

// What one request (an HTTP call and everything it triggers) may use, and
// what one app may have in flight on a node. Defaults in docs/limits.md;
// each is settable under `limits:` in app.yaml.
struct AppLimitsSpec {
  uint64_t request_invocations = 100000;  // all invocations a request triggers
  uint32_t request_concurrency = 2000;    // of those, queued or running at once
  uint32_t trigger_depth = 500;           // longest kv_set chain below the entry
  uint32_t app_concurrency = 4000;        // this app's invocations in flight on a node
};

enum class AuthMode { kNone, kKey };

// How many copies a key has in a cluster (docs/replication.md). replicated: one per replica of
// its placement group, through raft. local: one, in the store of the node that wrote it; the
// functions its set triggers run there, and losing the node loses it. A single node keeps one
// copy either way.
enum class KeyDurability { kReplicated, kLocal };

// One `durability:` entry: keys matching pattern have this durability.
struct DurabilityRule {
  kv::KeyPattern pattern;
  KeyDurability durability = KeyDurability::kReplicated;
  int line = 0;
};

struct AppManifest {
  std::string name;         // the app folder name, passed in
  std::vector<FnSpec> fns;  // sorted by function name: this IS the documented trigger order
  std::optional<uint32_t> memory_pages;  // 64 KiB wasm pages
  std::optional<size_t> max_instances;
  std::optional<std::string> scheduler;  // random|hash|straw2|least-loaded|data-aware
  AppLimitsSpec limits;
  // auth: key — invoking /<app> needs `Authorization: Bearer <app key>`.
  AuthMode auth = AuthMode::kNone;
  std::vector<DurabilityRule> durability;  // in document order; the first match decides
  std::vector<std::string> warnings;       // "file:line: field: ...", e.g. kv_set trigger cycles

  const FnSpec* find(std::string_view fn) const;
  const FnSpec* httpAppFn() const;  // nullptr if none
  // The function with an explicit http trigger on `path` (relative to /<app>)
  // for request method `method`; a trigger declared with ANY matches every
  // method. Validation rejects overlapping triggers, so at most one matches.
  const FnSpec* httpFn(std::string_view method, std::string_view path) const;
  // Functions whose kv_set event pattern matches key, in order (fns by name,
  // then event order), with the bound kvs index.
  std::vector<std::pair<const FnSpec*, size_t>> triggeredBy(std::string_view key) const;
  // Access list: may fn do op on key? (any kvs entry whose pattern matches key and allows op)
  bool allowed(const FnSpec& fn, KvOp op, std::string_view key) const;
  // The first durability rule matching key decides; replicated when none does.
  KeyDurability durabilityOf(std::string_view key) const;
};

// Parses and validates; errors are InvalidArgumentError with "<file>:<line>: <field>: <what>".
absl::StatusOr<AppManifest> parseManifest(std::string_view yaml, std::string_view app_name,
                                          std::string_view file = "app.yaml");

// Every fn must be exported by app.wasm: error "<file>:<line>: fns.<name>: not exported by
// app.wasm", one line per missing function.
absl::Status checkExports(const AppManifest& m, const std::vector<std::string>& exports,
                          std::string_view file = "app.yaml");

}  // namespace waverless::app
