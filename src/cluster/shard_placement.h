// Which workers replicate each placement group over the cluster's life: the versioned ShardMap
// (shard/shard_map.h) every node routes by, and re-replication, which changes it.
//
//  - Every node holds the newest map it has seen. Version 1 comes from cluster.yaml alone, so all
//    first replicas agree without talking; later versions are committed in the meta raft group
//    (key "shard/map") and reach nodes outside it in the master's heartbeat reply.
//  - A worker that adopts a map opens the groups it newly holds (empty: their leader fills them by
//    raft snapshot), drops those it no longer holds, and gives every group's replica list to its
//    raft host, whose group leaders then move each raft configuration there (group_config.h).
//  - The master replaces a worker that has been down longer than `replace_after` in every group
//    it holds (ShardMap::without: only its groups move) and commits the new version. It does not
//    when a group would be left with fewer copies: a group of R-1 live voters that waits for its
//    node is as safe as a smaller one, and can take that node back.
//
// Threads: one of its own adopts maps (opening a group waits for the raft loop) and, on the
// master, checks the membership view every second. Must not: route requests (ShardedKv does) or
// detect failures (Membership does).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "cluster/cluster_config.h"
#include "shard/shard_map.h"

namespace waverless::meta {
class RaftLog;
}
namespace waverless::metrics {
class Registry;
}
namespace waverless::shard {
class RaftHost;
}

namespace waverless::cluster {

class Membership;
class ShardedKv;

struct ShardPlacementDeps {
  const ClusterConfig& config;
  Membership& membership;
  ShardedKv& kv;
  shard::RaftHost* host;  // workers only: this node's groups
  meta::RaftLog* raft;    // meta nodes only: where new versions are committed
};

class ShardPlacement {
 public:
  static constexpr const char* kMetaKey = "shard/map";

  ShardPlacement(uint32_t self, ShardPlacementDeps deps,
                 std::shared_ptr<const shard::ShardMap> first);
  ~ShardPlacement();

  // Opens this node's groups of the newest map known now, then starts the thread.
  absl::Status start();
  void stop();  // idempotent

  std::shared_ptr<const shard::ShardMap> map() const;
  // An encoded map from the meta raft log or a heartbeat reply: adopted if it is newer. Any
  // thread; does not block.
  void offer(std::string encoded);

  // wl_shard_map_version; on workers wl_shard_groups_hosted and wl_shard_groups_off_map (groups
  // this node leads whose raft voters are not yet the map's replicas).
  void registerMetrics(metrics::Registry& metrics);

 private:
  void loop(std::stop_token st);
  void adopt(std::shared_ptr<const shard::ShardMap> next);  // this object's thread
  void openGroups(const shard::ShardMap& map);
  void replaceDeadWorkers();  // on the master

  const uint32_t self_;
  ShardPlacementDeps deps_;
  mutable std::mutex mu_;
  std::shared_ptr<const shard::ShardMap> map_ ABSL_GUARDED_BY(mu_);
  std::string offered_ ABSL_GUARDED_BY(mu_);  // the newest offer not yet adopted
  std::condition_variable_any cv_;
  // Workers seen down by this node, since when (the master's clock).
  std::map<uint32_t, std::chrono::steady_clock::time_point> down_since_;
  std::map<uint32_t, bool> warned_;  // "cannot replace" said once per outage
  std::jthread thread_;
};

}  // namespace waverless::cluster
