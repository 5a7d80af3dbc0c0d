// A node's part in a cluster: the role objects, wired together, and the
// peer RPC service that routes each call to its role.
//
//   Membership  heartbeats, the master's failure detector, the published view
//   ShardedKv   the request runner's KV (worker::ClusterKv): replicated
//               placement groups (src/shard/) and `durability: local` keys
//   Dispatcher  placement, remote invocation, retry (master::Dispatcher,
//               worker::ClusterHooks) and the invoke tasks peers send
//   TriggerLog  durable triggers: runs of committed trigger records, their
//               re-placement when a node is lost, orphans on group leaders
//   AppShipper  deploy once, the raft record of app versions, app sync
//               (master::Deployer)
//   ShardPlacement  the versioned shard map and re-replication
//
// Also owns what the roles share: the peer clients, the RPC server and, on
// meta nodes, the meta raft group; on workers, the raft host of their
// placement groups. Must not: execute functions or parse HTTP.
#pragma once

#include <filesystem>
#include <memory>

#include "cluster/app_shipper.h"
#include "cluster/cluster_config.h"
#include "cluster/cpu_load.h"
#include "cluster/dispatcher.h"
#include "cluster/membership.h"
#include "cluster/peers.h"
#include "cluster/shard_placement.h"
#include "cluster/sharded_kv.h"
#include "cluster/trigger_log.h"
#include "meta/raft_log.h"
#include "net/peer.h"
#include "shard/raft_host.h"

namespace waverless::kv {
class KvStore;
}
namespace waverless::wasm {
class Engine;
}
namespace waverless::metrics {
class Registry;
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
  // Proves membership to peers' raft ports (the placement groups' handshake);
  // every node of the cluster has the same one.
  std::string cluster_secret;
};

class Cluster : public net::PeerHandler {
 public:
  // The roles exist from construction (so the node can hand them out before
  // start); nothing runs until start().
  Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing = {});
  ~Cluster() override;

  absl::Status start();  // RPC server, raft, app sync, heartbeats
  void stop();           // idempotent; reverse order

  const NodeConfig& self() const { return *self_; }
  Membership& membership() { return *membership_; }
  ShardedKv& kv() { return *kv_; }
  TriggerLog& triggers() { return *triggers_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  AppShipper& shipper() { return *shipper_; }

  // net::PeerHandler: a router to the roles.
  void onEnvelope(net::pb::Envelope request, net::Reply reply) override;
  net::pb::HeartbeatReply heartbeat(const net::pb::HeartbeatRequest& request) override;
  net::pb::Ack installApp(const net::pb::AppPackage& package) override;
  absl::StatusOr<net::pb::AppPackage> fetchApp(const std::string& name) override;
  net::pb::Ack removeApp(const std::string& name, net::Removal scope) override;
  net::pb::Ack metaPut(const net::pb::MetaEntry& entry) override;

 private:
  net::pb::WorkerState localState();
  double localLoad() const;
  absl::Status startShards();  // the raft host and this node's placement groups

  ClusterConfig config_;
  const NodeConfig* self_;
  ClusterDeps deps_;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<meta::RaftLog> raft_;  // meta nodes only
  std::unique_ptr<Membership> membership_;
  std::shared_ptr<const shard::ShardMap> shard_map_;
  std::unique_ptr<shard::RaftHost> shard_host_;  // workers only
  std::unique_ptr<ShardPlacement> placement_;
  std::unique_ptr<ShardedKv> kv_;
  std::unique_ptr<TriggerLog> triggers_;
  std::unique_ptr<Dispatcher> dispatcher_;
  mutable CpuLoad cpu_load_;
  std::unique_ptr<AppShipper> shipper_;
  std::unique_ptr<net::RpcServer> server_;
  bool started_ = false;
};

}  // namespace waverless::cluster
