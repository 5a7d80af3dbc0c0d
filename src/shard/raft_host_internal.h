// RaftHost's insides, shared by raft_host.cpp (the loop: queues, proposals, barriers, the view
// it publishes, start/stop) and raft_host_groups.cpp (a group's life: open, state machine,
// reconfiguration, close, drop). Not for use outside src/shard/raft_host*.
#pragma once

// libraft 0.15's headers have no extern "C" guards of their own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <uv.h>

#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kv/kv_store.h"
#include "shard/raft_host.h"
#include "shard/raft_log_store.h"
#include "shard/raft_mux.h"
#include "shard/raft_wire.h"
#include "shard/write_origins.h"

namespace waverless::shard {

using RaftApply = struct raft_apply;
using RaftBarrier = struct raft_barrier;

// libraft's error codes as the statuses RaftHost's callers see.
absl::Status fromRaft(int rv, const std::string& what);

struct Group;

// A batch of proposals in one raft entry, waiting for raft's apply callback.
struct PendingEntry {
  RaftApply req;
  Group* group;
  std::vector<std::pair<uint64_t, RaftHost::ProposeDone>> waiters;  // proposal id, done
};

struct PendingBarrier {
  RaftBarrier req;
  Group* group;
  std::vector<RaftHost::BarrierDone> waiters;
};

struct Group {
  RaftHost::Impl* host = nullptr;
  uint32_t id = 0;
  raft_uv_transport* transport = nullptr;
  raft_io io{};
  raft_fsm fsm{};
  struct raft raft {};
  bool raft_ready = false, closing = false, was_leader = false;
  uint64_t applied = 0;  // last command entry applied to the store
  std::vector<Proposal> queued;
  std::vector<RaftHost::ProposeDone> queued_done;
  std::vector<RaftHost::BarrierDone> queued_reads;
  std::set<PendingEntry*> entries;
  std::set<PendingBarrier*> barriers;
  // Re-replication: the replicas the shard map wants (empty: no opinion yet), and the one
  // configuration change in flight, if any.
  std::vector<Replica> wanted;
  struct raft_change change {};
  bool changing = false;
  struct raft_transfer transfer {};  // leadership handed to a less loaded replica (balanceLeaders)
  bool transferring = false;
  WriteOrigins origins;  // of the proposals made to it while this node led it
  bool drop = false;     // closing because the map moved the group away: delete its data
};
struct RaftHost::Impl {
  RaftHostOptions options;
  kv::KvStore& store;
  std::string bound_address;

  // Loop-thread state.
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t watch;
  std::unique_ptr<RaftMux> mux;
  std::unique_ptr<RaftWire> wire;  // after mux: it closes first
  std::unique_ptr<RaftLogStore> log;
  std::map<uint32_t, std::unique_ptr<Group>> groups;
  std::set<Group*> dirty;
  std::vector<std::unique_ptr<Group>> closed_groups;
  uint64_t next_proposal = 1;
  // Results the state machine produced for proposals of this node still awaited.
  std::unordered_map<uint64_t, ProposalResult> results;
  std::set<uint64_t> awaited;
  std::thread::id loop_thread;
  bool closing = false;
  bool transports_closing = false;  // log, wire and mux, once every group closed
  // The published view (leaders, leading, voters) misses a group opened or closed since.
  bool view_stale = true;
  uint64_t published_at_ms = 0;   // uv_now of the last publish()
  uint64_t next_transfer_ms = 0;  // balanceLeaders: no transfer before this uv_now (0: never)
  size_t closing_groups = 0;
  std::jthread thread;

  // Cross-thread.
  using Task = absl::AnyInvocable<void(bool running)>;
  std::mutex lifecycle_mu;  // start()/stop()
  std::mutex queue_mu;
  std::deque<Task> tasks;       // guarded by queue_mu
  bool live = false;            // guarded by queue_mu
  bool stop_requested = false;  // guarded by queue_mu

  mutable std::mutex view_mu;
  std::map<uint32_t, std::optional<Replica>> leaders;  // guarded by view_mu
  std::set<uint32_t> leading;                          // guarded by view_mu
  std::map<uint32_t, std::vector<uint64_t>> voters;    // guarded by view_mu
  mutable std::mutex stats_mu;
  Stats stats;  // guarded by stats_mu

  Impl(RaftHostOptions o, kv::KvStore& s) : options(std::move(o)), store(s) {}

  bool post(Task task);

  // ---- Loop thread ----

  void drain();
  Group* find(uint32_t id);
  absl::Status notHosted(uint32_t group) const;  // the NotFound for a group find() lacks
  absl::Status notLeader(Group* g);
  void flush();
  void proposeQueued(Group* g);
  void onApplied(PendingEntry* p, int status);
  void barrierQueued(Group* g);
  void publish();

  // One step toward the wanted replicas (group_config.h), on the leader, one change at a time.
  void reconfigure(Group* g);
  // Hands one group's leadership to a replica that leads at least two fewer of the groups both
  // vote in (view: every hosted group's leader). At most one a second.
  void balanceLeaders(const std::map<uint32_t, std::optional<Replica>>& view);

  // ---- State machine (loop thread) ----

  static int fsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) noexcept;
  static int fsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept;
  static int fsmSnapshotFinalize(raft_fsm*, raft_buffer* bufs[], unsigned* n_bufs) noexcept;
  static int fsmRestore(raft_fsm* fsm, raft_buffer* buf) noexcept;

  // ---- Groups ----

  absl::Status open(uint32_t id, const std::vector<Replica>& replicas, bool bootstrap);

  // Before the shared log, each group's folder held libraft's segment files. A node started on
  // such a folder would bootstrap an empty log beside them and forget what it had acknowledged.
  static absl::Status refuseSegmentFiles(const std::filesystem::path& dir);
  absl::Status openLog();
  void closeGroup(Group* g);

  // The group's copy here is no longer wanted: its raft folder and its range of the store go.
  // Closed first, so this node no longer votes in it: as safe as this node being down.
  void dropData(uint32_t id);
  void beginClose();
  void maybeClosed();
  void run(std::promise<absl::Status>& started);
};

}  // namespace waverless::shard
