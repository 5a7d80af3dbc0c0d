// The placement groups a node replicates: one libraft instance per group, all on ONE libuv loop
// thread, all reaching their peers through one RaftMux port. Each group's state machine applies
// committed entries (shard_command.h) to the group's range of the node's KvStore.
//
// Owns: the loop thread, which alone touches raft, its I/O and the mux; the groups' raft logs and
// snapshots under RaftHostOptions::dir, in one RaftLogStore shared by the groups. Must not: route
// requests to other nodes, decide placement, or block the loop (the store writes it does are
// RocksDB memtable writes, unsynced: the raft log, which is fsynced, is what makes a write
// durable; only a term or vote change, which raft needs durable before it goes on, syncs inline).
//
// Threading: every public method may be called from any thread. Work reaches the loop through a
// mutex-protected queue and a uv_async_t; completion callbacks (ProposeDone, BarrierDone) run on
// the loop thread and must not block: post elsewhere to do real work. leaderOf() reads a view the
// loop republishes every heartbeat/2 and after every batch.
//
// Batching: proposals to one group that reach the loop in the same turn become one raft entry;
// reads in the same turn share one barrier; the appends of all groups that reach the log store's
// writer while it syncs share its next sync (raft_log_store.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shard/shard_command.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::shard {

struct Replica {
  uint64_t node = 0;
  std::string address;  // the node's RaftMux "ipv4:port"

  bool operator==(const Replica&) const = default;
};

struct RaftHostOptions {
  uint64_t node_id = 0;        // > 0; the same raft id in every group
  std::string listen_address;  // "ipv4:port" for the mux; port 0 picks one (address())
  std::filesystem::path dir;   // raft data: dir/log/ (every group's log), dir/snap/, dir/g<group>/
  std::string secret;          // the cluster secret the mux handshake proves
  std::chrono::milliseconds election_timeout{1000}, heartbeat_timeout{100};
  uint32_t snapshot_threshold = 4096;  // entries between snapshots of a group
  uint32_t snapshot_trailing = 1024;
  // When the host starts handing the leadership of its groups to replicas that lead fewer
  // (RaftHost::Impl::balanceLeaders); 0: never. Not at once: right after a start the elections
  // are still settling, and every handover briefly refuses the group's writes.
  std::chrono::milliseconds balance_leaders_after{10000};
  // Follow the writer: from then on too, a group whose writes mostly enter at one of its other
  // voters is handed to that voter (write_origins.h), and one whose writes mostly enter here
  // stays, whatever the leader counts say.
  bool follow_writes = true;
};

class RaftHost {
 public:
  RaftHost(RaftHostOptions options, kv::KvStore& store);
  ~RaftHost();  // stop()s
  RaftHost(const RaftHost&) = delete;
  RaftHost& operator=(const RaftHost&) = delete;

  absl::Status start();         // listens and starts the loop; no group yet
  void stop();                  // idempotent; closes every group; pending calls fail Unavailable
  std::string address() const;  // "ipv4:port" as bound; valid after start()

  // Opens group on this node. A group whose folder is new bootstraps `replicas` as its first
  // configuration (every first replica must pass the same list) when `bootstrap`; otherwise it
  // starts empty and waits for the group's leader to add it (a replica placed by re-replication).
  // One with state starts from it.
  absl::Status openGroup(uint32_t group, const std::vector<Replica>& replicas,
                         bool bootstrap = true);

  // Re-replication (group_config.h). While this node leads group, it moves the group's raft
  // configuration to `replicas` one change at a time: adds, catches up and promotes the new ones,
  // then removes the unwanted. Safe to call again with the same list.
  void setReplicas(uint32_t group, std::vector<Replica> replicas);
  // Closes group here and deletes its raft state and its store range: the map placed it elsewhere.
  // For a group not open here, deletes what is left of it on disk, if anything.
  void dropGroup(uint32_t group);
  // The group's voters as this node's raft knows them (empty: not open here).
  std::vector<uint64_t> votersOf(uint32_t group) const;
  std::vector<uint32_t> openGroups() const;

  // Proposes ops (applied atomically) on group, which this node must lead: FailedPrecondition
  // naming the leader otherwise, NotFound for a group not open here. OK means committed on a
  // majority of the group, fsynced there, and applied here. Unavailable with "may have committed"
  // when leadership was lost while waiting: the caller cannot know. origin: the node the write
  // entered the cluster at (0: this one), for follow-the-writer leadership.
  using ProposeDone = absl::AnyInvocable<void(absl::StatusOr<ProposalResult>)>;
  void propose(uint32_t group, std::vector<KvOp> ops, ProposeDone done, uint64_t origin = 0);

  // Completes once every entry committed before the call is applied here, and this node was the
  // leader when the barrier committed: a read of the store in `done` is linearizable.
  using BarrierDone = absl::AnyInvocable<void(absl::Status)>;
  void readBarrier(uint32_t group, BarrierDone done);

  std::optional<Replica> leaderOf(uint32_t group) const;
  bool leads(uint32_t group) const;

  struct Stats {
    uint64_t entries = 0;    // raft entries proposed here
    uint64_t proposals = 0;  // proposals in them
    uint64_t barriers = 0;
    uint64_t handshakes_refused = 0;
    uint64_t log_appends = 0;       // raft appends written to the node's shared log
    uint64_t log_syncs = 0;         // WAL syncs that made them durable (appends / syncs: batching)
    uint64_t messages_sent = 0;     // raft messages to peers, every group's (raft_wire.h)
    uint64_t message_writes = 0;    // socket writes that carried them
    uint64_t leader_transfers = 0;  // groups this node handed to a less loaded replica
    uint64_t follow_transfers = 0;  // of those, handed to the replica their writes came from
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::shard
