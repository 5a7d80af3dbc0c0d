// A node's part in a cluster: membership (heartbeats to the master, the
// master's failure detector), placement (schedulers over the replicated view,
// the straw2 key-owner rule), the peer RPC service, and deploy-once app
// shipping. Plugs into the single-node pieces through their interfaces:
// master::Dispatcher / master::Deployer (gateway), worker::ClusterHooks
// (request runner), net::PeerHandler (RPC server).
//
// Must not: execute functions or parse HTTP.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "cluster/cluster_config.h"
#include "master/gateway.h"
#include "meta/raft_log.h"
#include "net/peer.h"
#include "sched/scheduler.h"
#include "worker/cluster_hooks.h"

namespace waverless::kv {
class KvStore;
}
namespace waverless::wasm {
class Engine;
}

namespace waverless::cluster {

struct ClusterDeps {
  meta::AppRegistry& registry;
  worker::RequestRunner& runner;
  kv::KvStore& kv;
  wasm::Engine& engine;
  metrics::Registry& metrics;
  std::filesystem::path scratch_dir;
  std::filesystem::path cache_dir;  // the engine's compiled-object cache
};

struct ClusterTiming {
  std::chrono::milliseconds heartbeat{300};
  std::chrono::milliseconds dead_after{1500};  // < 3 s: a silent worker leaves scheduling
};

class Cluster : public worker::ClusterHooks,
                public net::PeerHandler,
                public master::Dispatcher,
                public master::Deployer {
 public:
  Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing = {});
  ~Cluster() override;

  absl::Status start();  // RPC server, peer clients, heartbeats
  void stop();           // idempotent

  const NodeConfig& self() const { return *self_; }
  std::string nodesJson();

  // master::Dispatcher
  // cancel reaches a request run here; one forwarded to another node is not
  // cancelled when its client goes away (it ends by its deadline).
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
  // master::Deployer
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> deploy(
      const std::string& name, const std::filesystem::path& dir) override;
  absl::Status remove(const std::string& name) override;

  // worker::ClusterHooks
  std::optional<uint32_t> placeTrigger(const meta::DeployedApp& app, const app::FnSpec& fn,
                                       std::string_view key) override;
  std::optional<uint32_t> keyOwner(std::string_view app, std::string_view key) override;
  void invokeRemote(uint32_t node, worker::RemoteTask task,
                    absl::AnyInvocable<void(absl::Status)> done) override;
  void kvSetBatchRemote(uint32_t node, std::string app, KvPairs pairs,
                        absl::AnyInvocable<void(absl::Status)> done) override;
  void kvScanAll(std::string app, std::string prefix, size_t limit,
                 absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done) override;
  void kvRemote(uint32_t node, app::KvOp op, std::string app, std::string key, std::string value,
                absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)> done) override;
  void kvAtomicRemote(uint32_t node, KvAtomic op,
                      absl::AnyInvocable<void(absl::StatusOr<KvAtomicResult>)> done) override;

  // net::PeerHandler
  void onEnvelope(net::pb::Envelope request, net::Reply reply) override;
  net::pb::HeartbeatReply heartbeat(const net::pb::HeartbeatRequest& request) override;
  net::pb::Ack installApp(const net::pb::AppPackage& package) override;
  absl::StatusOr<net::pb::AppPackage> fetchApp(const std::string& name) override;
  net::pb::Ack removeApp(const std::string& name) override;
  net::pb::Ack metaPut(const net::pb::MetaEntry& entry) override;

  // The replicated metadata (meta nodes): {"leader":..,"apps":{name:version}}.
  std::string metaJson();

 private:
  struct Member {
    const NodeConfig* config;
    bool alive = false;
    net::pb::WorkerState state;
    std::chrono::steady_clock::time_point last_seen{};
  };

  bool isMaster() const { return self_->master; }
  net::PeerClient* peer(uint32_t id);
  std::vector<sched::WorkerInfo> aliveWorkers();
  net::pb::WorkerState localState();
  void heartbeatLoop(std::stop_token st);
  void detectorLoop(std::stop_token st);
  void syncApps(const std::map<std::string, std::string>& wanted);
  // Records the desired version of an app (empty: removed) in the raft map,
  // through the leader. A no-op when the cluster has no meta nodes.
  absl::Status recordApp(const std::string& name, const std::string& version);
  void metaSyncLoop(std::stop_token st);
  std::map<std::string, std::string> wantedApps();
  absl::StatusOr<net::pb::AppPackage> packageOf(const meta::DeployedApp& app);
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> installPackage(
      const net::pb::AppPackage& package);
  void distribute(const std::string& name);
  sched::Policy policyFor(const meta::DeployedApp& app) const;
  // Answers a peer's KV request from this node's store (cluster_kv.cpp).
  void serveKv(const net::pb::KvRequest& request, net::pb::KvReply& reply);
  void dispatchTo(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec* fn,
                  std::string body, std::vector<uint32_t> excluded,
                  absl::AnyInvocable<void(worker::RequestOutcome)> done,
                  std::shared_ptr<http::BodyStream> stream = nullptr,
                  std::shared_ptr<common::CancelScope> cancel = nullptr);

  ClusterConfig config_;
  const NodeConfig* self_;
  ClusterDeps deps_;
  ClusterTiming timing_;
  std::vector<sched::WorkerInfo> all_workers_;  // configured, for the key-owner rule
  std::map<uint32_t, std::unique_ptr<net::PeerClient>> peers_;
  std::unique_ptr<net::RpcServer> server_;

  std::mutex mu_;
  std::map<uint32_t, Member> members_;  // guarded by mu_
  std::mt19937_64 rng_;                 // guarded by mu_
  std::atomic<uint64_t> install_seq_{0};
  std::mutex install_mu_;  // one app install at a time

  std::unique_ptr<meta::RaftLog> raft_;  // meta nodes only
  std::mutex sync_mu_;
  std::condition_variable_any sync_cv_;
  bool sync_pending_ = false;       // guarded by sync_mu_
  std::set<std::string> removals_;  // guarded by sync_mu_: committed erases
  std::jthread meta_sync_;
  std::jthread heartbeat_;
  std::jthread detector_;
  bool started_ = false;
};

}  // namespace waverless::cluster
