// A node's part in a cluster: the peer RPC service, routed to the roles
// (Membership, RemoteKv, Dispatcher), and deploy-once app shipping, which
// plugs into the gateway as its master::Deployer.
//
// Must not: execute functions or parse HTTP.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "cluster/cluster_config.h"
#include "cluster/dispatcher.h"
#include "cluster/membership.h"
#include "cluster/peers.h"
#include "cluster/remote_kv.h"
#include "master/gateway.h"
#include "meta/raft_log.h"
#include "net/peer.h"

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

class Cluster : public net::PeerHandler, public master::Deployer {
 public:
  Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing = {});
  ~Cluster() override;

  absl::Status start();  // RPC server, peer clients, heartbeats
  void stop();           // idempotent

  const NodeConfig& self() const { return *self_; }
  RemoteKv& kv() { return *kv_; }
  Membership& membership() { return *membership_; }
  Dispatcher& dispatcher() { return *dispatcher_; }

  // master::Deployer
  absl::StatusOr<std::shared_ptr<const meta::DeployedApp>> deploy(
      const std::string& name, const std::filesystem::path& dir) override;
  absl::Status remove(const std::string& name) override;

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
  bool isMaster() const { return self_->master; }
  net::PeerClient* peer(uint32_t id) { return peers_->get(id); }
  net::pb::WorkerState localState();
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

  ClusterConfig config_;
  const NodeConfig* self_;
  ClusterDeps deps_;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<RemoteKv> kv_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<net::RpcServer> server_;

  std::atomic<uint64_t> install_seq_{0};
  std::mutex install_mu_;  // one app install at a time

  std::unique_ptr<meta::RaftLog> raft_;  // meta nodes only
  std::mutex sync_mu_;
  std::condition_variable_any sync_cv_;
  bool sync_pending_ = false;       // guarded by sync_mu_
  std::set<std::string> removals_;  // guarded by sync_mu_: committed erases
  std::jthread meta_sync_;
  bool started_ = false;
};

}  // namespace waverless::cluster
