// What the request runner asks of a cluster: where a triggered function runs,
// which node owns a key, and how to reach another node. Implemented by
// src/cluster/; absent (null) when the node runs alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "app/app_manifest.h"

namespace waverless::meta {
struct DeployedApp;
}

namespace waverless::worker {

struct RemoteTask {
  std::string app;
  std::string function;
  std::vector<std::string> args;
  uint32_t timeout_ms = 30000;
  std::string request_id;
};

class ClusterHooks {
 public:
  virtual ~ClusterHooks() = default;
  // The node that must run fn, triggered by a set of key; nullopt: here.
  virtual std::optional<uint32_t> placeTrigger(const meta::DeployedApp& app, const app::FnSpec& fn,
                                               std::string_view key) = 0;
  // The node that stores app's key; nullopt: this node.
  virtual std::optional<uint32_t> keyOwner(std::string_view app, std::string_view key) = 0;
  // Runs task (and everything it triggers) on node; done gets its status.
  virtual void invokeRemote(uint32_t node, RemoteTask task,
                            absl::AnyInvocable<void(absl::Status)> done) = 0;
  // KV on the owning node. For get, nullopt = missing.
  virtual void kvRemote(
      uint32_t node, app::KvOp op, std::string app, std::string key, std::string value,
      absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)> done) = 0;
  // The first `limit` keys of app starting with prefix, in key order, over
  // every node that owns keys (Unavailable if one cannot be asked: the
  // answer would silently miss its keys).
  using KvPairs = std::vector<std::pair<std::string, std::string>>;
  // Stores pairs (all owned by node) atomically there.
  virtual void kvSetBatchRemote(uint32_t node, std::string app, KvPairs pairs,
                                absl::AnyInvocable<void(absl::Status)> done) = 0;
  virtual void kvScanAll(std::string app, std::string prefix, size_t limit,
                         absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done) = 0;
  // An atomic read-modify-write, done by kv::KvStore::cas / incr on the
  // owning node, so it is atomic against that node's other writes of the key.
  struct KvAtomic {
    enum class Kind { kCas, kIncr };
    Kind kind = Kind::kCas;
    std::string app;
    std::string key;
    std::optional<std::string> expected;  // kCas; nullopt: the key must be absent
    std::string value;                    // kCas
    int64_t delta = 0;                    // kIncr
  };
  struct KvAtomicResult {
    bool stored = false;  // kCas: false when the current value did not match
    int64_t sum = 0;      // kIncr: the new value
  };
  virtual void kvAtomicRemote(uint32_t node, KvAtomic op,
                              absl::AnyInvocable<void(absl::StatusOr<KvAtomicResult>)> done) = 0;
};

}  // namespace waverless::worker
