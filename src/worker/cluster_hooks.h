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
};

}  // namespace waverless::worker
