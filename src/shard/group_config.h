// Re-replication, one raft configuration change at a time: given a group's current raft
// configuration and the replicas the shard map wants, the next change its leader should make.
// Private to src/shard (raft_host.cpp executes the step; this decides it, with no raft state, so
// the order is tested on its own).
//
// The order keeps R copies whenever it can: a wanted node joins as a spare (libraft's
// raft_add), is promoted to voter (raft_assign, which first catches it up from the leader's log
// or a snapshot), and only when every wanted node votes is an unwanted one removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace waverless::shard {

struct Replica;

struct ConfigMember {
  uint64_t node = 0;
  bool voter = false;
};

struct ConfigStep {
  enum class Kind { kNone, kAdd, kPromote, kRemove };
  Kind kind = Kind::kNone;
  uint64_t node = 0;
  std::string address;  // kAdd: where the new replica's raft listens

  bool operator==(const ConfigStep&) const = default;
};

// `self` (the leader) is never removed: the map never drops a live leader, and a leader removing
// itself would leave the group leaderless until an election.
ConfigStep nextConfigStep(const std::vector<ConfigMember>& current,
                          const std::vector<Replica>& wanted, uint64_t self);

}  // namespace waverless::shard
