// What the request runner asks of a cluster about running functions: where a
// triggered function runs, and how to run it on another node. Implemented by
// cluster::Dispatcher; absent (null) when the node runs alone. The cluster's
// KV is worker/cluster_kv.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "app/app_manifest.h"
#include "worker/cluster_kv.h"

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
  // Runs task (and everything it triggers) on node; done gets its status.
  virtual void invokeRemote(uint32_t node, RemoteTask task,
                            absl::AnyInvocable<void(absl::Status)> done) = 0;
  // Runs a durable trigger whose record has committed with its write, with everything it
  // triggers: on its key's group leader, and again on the group's next leader when the node
  // running it is lost, until record.timeout_ms has passed. done gets the outcome of one run.
  virtual void runDurable(std::shared_ptr<const meta::DeployedApp> app, TriggerRecord record,
                          absl::AnyInvocable<void(absl::Status)> done) = 0;
  // What this node's request ids start with: it makes them (and so the invocation ids of durable
  // triggers) unique in the cluster and across the node's restarts.
  virtual std::string requestIdPrefix() const = 0;
};

}  // namespace waverless::worker
