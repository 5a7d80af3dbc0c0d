// Which placement group an app's key belongs to, and which workers replicate each group.
//
// A key maps to one of S groups by hash (S is fixed for the life of a cluster: cluster.yaml
// `shards:`); each group is placed on R workers by straw2, as Ceph's CRUSH places a placement
// group: the group's R highest straw2 draws among the eligible workers. Because each worker's draw
// depends only on the group and itself, replacing one worker moves only the groups it held.
//
// A ShardMap is an immutable value with a version; the cluster publishes new versions (through the
// meta raft group) and readers hold a shared_ptr to the one they use. Must not: know about raft,
// the network or liveness beyond the worker list it is given.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/scheduler.h"

namespace waverless::shard {

class ShardMap {
 public:
  // Places `groups` groups on min(replicas, live workers) of `workers` each (dead ones excluded).
  // InvalidArgument for no groups, no replicas or no live worker.
  static absl::StatusOr<ShardMap> place(uint32_t groups, uint32_t replicas,
                                        std::span<const sched::WorkerInfo> workers,
                                        uint64_t version = 1);

  uint32_t groupOf(std::string_view app, std::string_view key) const;
  const std::vector<uint32_t>& replicasOf(uint32_t group) const { return replicas_.at(group); }
  std::vector<uint32_t> groupsOn(uint32_t node) const;
  uint32_t groups() const { return static_cast<uint32_t>(replicas_.size()); }
  uint32_t replicationFactor() const { return factor_; }
  uint64_t version() const { return version_; }

  // The next version with `dead` replaced, in every group that has it, by the best-drawing eligible
  // worker not already in the group; every other group keeps its replicas. A group that finds no
  // replacement keeps fewer replicas. The result is what re-replication moves to.
  ShardMap without(uint32_t dead, std::span<const sched::WorkerInfo> workers) const;

  std::string encode() const;
  static std::optional<ShardMap> decode(std::string_view bytes);

  bool operator==(const ShardMap&) const = default;

 private:
  uint32_t factor_ = 0;
  uint64_t version_ = 0;
  std::vector<std::vector<uint32_t>> replicas_;  // per group, in straw2 rank order
};

}  // namespace waverless::shard
