// Who is in the cluster, how loaded each node is, and which node holds the
// master role.
//
// The master role follows the meta raft group's leader, so it moves when its
// node dies. Every node heartbeats to every meta node (every `heartbeat`);
// every meta node runs the failure detector on the heartbeats it receives, so
// whichever of them is elected next already has a warm view and serves
// /api/nodes at once. A node outside the raft group takes its view, its app
// set and the master's id from the reply of the node that says it is the
// master. A cluster without meta nodes keeps a fixed master (the configured
// one), which is then the only detector.
//
// The view is published as an immutable snapshot (`view()`): readers (every
// placement decision, /api/nodes, /metrics) copy one shared_ptr and take no
// lock. Writers (heartbeats in and out, the detector) serialize on one mutex
// that is never held across an RPC or a read of /proc: the node's own load is
// read before the lock is taken.
//
// Must not: decide placement (Dispatcher) or install apps (AppShipper); the
// app versions in heartbeats pass through the callbacks in MembershipDeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "cluster/cluster_config.h"
#include "net/waverless.pb.h"
#include "sched/scheduler.h"

namespace waverless::metrics {
class Registry;
}
namespace waverless::net {
class PeerClient;
}

namespace waverless::cluster {

struct ClusterTiming {
  std::chrono::milliseconds heartbeat{300};
  std::chrono::milliseconds dead_after{1500};  // < 3 s: a silent worker leaves scheduling
  std::chrono::milliseconds detector_period{100};
};

using AppVersions = std::map<std::string, std::string>;  // name -> version

struct MembershipDeps {
  // This node's load (running invocations, instances, RSS, CPU). Reads /proc:
  // called with no lock held.
  std::function<net::pb::WorkerState()> local_state;
  // The app versions this node serves, sent in heartbeats and replies.
  std::function<AppVersions()> app_versions;
  // The versions in the master's heartbeat reply (nodes outside the raft
  // group take the app set from there); may be empty.
  std::function<void(const AppVersions&)> on_master_apps;
  // On meta nodes: the meta raft group's leader as this node knows it. Null
  // elsewhere (the master is learned from heartbeat replies).
  std::function<std::optional<uint32_t>()> meta_leader;
  // The newest shard map this node holds (version, encoded), sent to nodes that hold an older one;
  // and a map in the master's reply (nodes outside the raft group take it from there). Optional.
  std::function<std::pair<uint64_t, std::string>()> shard_map;
  std::function<void(std::string)> on_master_map;
};

class Membership {
 public:
  struct Member {
    const NodeConfig* config = nullptr;
    bool alive = false;
    net::pb::WorkerState state;
    std::chrono::steady_clock::time_point last_seen{};
  };
  // One published cluster view; never changed once published.
  struct View {
    std::map<uint32_t, Member> members;  // every node of cluster.yaml
    // The workers, alive or not, with their weight and load.
    std::vector<sched::WorkerInfo> workers() const;
  };

  // config must outlive this object.
  Membership(const ClusterConfig& config, uint32_t self, MembershipDeps deps,
             ClusterTiming timing = {});
  ~Membership();

  // The nodes this one heartbeats to, by id: every meta node but itself
  // (`heartbeatTargets`). A meta node (or the fixed master of a cluster
  // without meta nodes) also runs the failure detector.
  using Targets = std::map<uint32_t, net::PeerClient*>;
  absl::Status start(Targets targets);
  void stop();  // idempotent

  // Who start() should be given, by id.
  static std::vector<uint32_t> heartbeatTargets(const ClusterConfig& config, uint32_t self);

  std::shared_ptr<const View> view() const { return view_.load(); }
  // The node holding the master role now; nullopt while the meta group has
  // no leader (an election, or no majority) or none is known yet.
  std::optional<uint32_t> master() const;

  // A detector's side of a heartbeat: records the sender's state and answers
  // with the view of every worker, the app versions this node serves and the
  // master it knows.
  net::pb::HeartbeatReply heartbeat(const net::pb::HeartbeatRequest& request);

  // /api/nodes: [{"id":..,"addr":..,"roles":[..],"alive":..,...}]
  std::string nodesJson() const;
  // wl_node_up, wl_node_running, wl_node_rss_bytes, per node.
  void registerMetrics(metrics::Registry& metrics);

 private:
  bool detects() const;  // runs the failure detector
  void heartbeatLoop(std::stop_token st, uint32_t target, net::PeerClient* client);
  void detectorLoop(std::stop_token st);
  // Publishes edit(copy of the current view) as the new view.
  void update(const std::function<void(View&)>& edit);

  const ClusterConfig& config_;
  const uint32_t self_;
  MembershipDeps deps_;
  ClusterTiming timing_;
  std::atomic<std::shared_ptr<const View>> view_;
  std::mutex write_mu_;                      // serializes update(); readers never take it
  std::atomic<uint32_t> learned_master_{0};  // from replies, on nodes outside the raft group
  std::vector<std::jthread> heartbeats_;     // one per target: a dead one delays no other
  std::jthread detector_;
};

}  // namespace waverless::cluster
