// Where functions run in a cluster: placement of HTTP entries and triggered
// functions through the app's scheduler (sched/) over the published
// membership view, remote invocation over the peer stream, and the retry of
// an idempotent entry whose node was lost mid-request. Also the serving side:
// invoke tasks other nodes send here.
//
// Must not: store keys (worker::ClusterKv does) or change membership.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "cluster/cluster_config.h"
#include "master/gateway.h"
#include "net/peer.h"
#include "sched/scheduler.h"
#include "worker/cluster_hooks.h"

namespace waverless::meta {
class AppRegistry;
}
namespace waverless::worker {
class ClusterKv;
class RequestRunner;
}  // namespace waverless::worker

namespace waverless::cluster {

class Membership;
class Peers;
class TriggerLog;

struct DispatcherDeps {
  const ClusterConfig& config;  // the default scheduler
  Membership& membership;       // the live workers and their load
  worker::ClusterKv& kv;        // where a key's data is read locally
  Peers& peers;
  meta::AppRegistry& registry;
  worker::RequestRunner& runner;
  TriggerLog& triggers;  // durable triggers: their runs, re-placement and orphans
  // This node's load now (Cluster::localLoad). The view's is its last heartbeat's, up to 300 ms
  // old: a burst would all see "idle" and stay, or all see "busy" and leave.
  std::function<double()> local_load;
};

class Dispatcher : public master::Dispatcher, public worker::ClusterHooks {
 public:
  Dispatcher(uint32_t self, DispatcherDeps deps);

  // master::Dispatcher. cancel reaches a request run here; one forwarded to
  // another node is not cancelled when its client goes away (it ends by its
  // deadline).
  void dispatch(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                std::string body, absl::AnyInvocable<void(worker::RequestOutcome)> done,
                std::shared_ptr<common::CancelScope> cancel = nullptr) override;
  // A streamed body: kept streaming when the function is placed here,
  // collected and sent whole when it runs on another node.
  bool canStream() const override { return true; }
  void dispatchStream(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                      std::shared_ptr<http::BodyStream> body,
                      absl::AnyInvocable<void(worker::RequestOutcome)> done,
                      std::shared_ptr<common::CancelScope> cancel = nullptr) override;

  // worker::ClusterHooks
  std::optional<uint32_t> placeTrigger(const meta::DeployedApp& app, const app::FnSpec& fn,
                                       std::string_view key) override;
  void invokeRemote(uint32_t node, worker::RemoteTask task,
                    absl::AnyInvocable<void(absl::Status)> done) override;
  void runDurable(std::shared_ptr<const meta::DeployedApp> app, worker::TriggerRecord record,
                  absl::AnyInvocable<void(absl::Status)> done) override;
  // "<node>-<start time, ms, hex>-": unique in the cluster and across this node's restarts.
  std::string requestIdPrefix() const override { return id_prefix_; }

  // An invoke task from another node (an HTTP entry or a triggered
  // function): runs it here and replies exactly once with its outcome.
  void serveInvoke(const net::pb::Envelope& request, net::Reply reply);

 private:
  sched::Policy policyFor(const meta::DeployedApp& app) const;
  // The view's workers, with this node's load read now.
  std::vector<sched::WorkerInfo> workers() const;
  uint64_t random();
  void dispatchTo(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec* fn,
                  std::string body, std::vector<uint32_t> excluded,
                  absl::AnyInvocable<void(worker::RequestOutcome)> done,
                  std::shared_ptr<http::BodyStream> stream = nullptr,
                  std::shared_ptr<common::CancelScope> cancel = nullptr);

  const uint32_t self_;
  const bool self_worker_;
  const std::string id_prefix_;
  DispatcherDeps deps_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace waverless::cluster
