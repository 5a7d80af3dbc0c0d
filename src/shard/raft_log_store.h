// The raft logs of every placement group a node hosts, in ONE RocksDB written by ONE thread.
//
// Why: libraft's own storage (raft_uv) keeps a folder of segment files per raft instance and
// syncs each instance's appends on its own. With 64–256 groups per node and concurrent writes
// spread over them, a group rarely has two writes to batch, so every write cost its own fsync on
// every replica (bench/RESULTS.md, "Replicated KV against etcd"). Here the appends, truncations
// and snapshot records of all groups that reach the writer while it is busy go to disk with one
// WAL sync: group commit across groups, as multi-raft stores do (TiKV's raft engine, CockroachDB's
// shared engine).
//
// How: libraft's raft_io is a table of functions. attach() builds a group's raft_io whose
// persistence (load, bootstrap, recover, set_term, set_vote, append, truncate, snapshot_put,
// snapshot_get) is this store, whose ticks and clock are a raft_uv I/O it owns, and whose
// messages go through the node's RaftWire (one channel per peer for all groups).
//
// Layout: the RocksDB at dir/log; keys are big-endian so a group's entries sort by index.
//   'm' group        -> term, voted_for                          set_term/set_vote: synced inline
//   'e' group index  -> term, type, payload                      append
//   's' group        -> the last snapshot's index, term, configuration and data file
// Snapshot data: dir/snap/g<group>-<index>.snap, written and fsynced before its 's' record.
//
// Threading: attach(), release(), drop(), close() and every raft_io entry run on the loop thread
// that owns `loop`; the writer thread only executes queued jobs, in order, and hands completions
// back to the loop through a uv_async_t. Callbacks to raft therefore run on the loop thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct uv_loop_s;
struct raft_io;
struct raft_uv_transport;

namespace waverless::shard {

class RaftWire;

class RaftLogStore {
 public:
  // Opens (or creates) dir/log and dir/snap. Call on the loop thread.
  static absl::StatusOr<std::unique_ptr<RaftLogStore>> open(uv_loop_s* loop,
                                                            std::filesystem::path dir);
  ~RaftLogStore();  // after close()'s done ran, or before any attach()
  RaftLogStore(const RaftLogStore&) = delete;
  RaftLogStore& operator=(const RaftLogStore&) = delete;

  // Fills `io` for group: persistence here, ticks and the clock from a raft_uv I/O (with its
  // small metadata folder in `uv_dir`), messages through `wire` (raft_wire.h) when given, else
  // through `transport`. Then raft_init(io, ...) as with raft_uv_init.
  absl::Status attach(raft_io* io, uint32_t group, const std::filesystem::path& uv_dir,
                      raft_uv_transport* transport, RaftWire* wire = nullptr);
  // Frees what attach() made, once raft_close's callback has run (or raft_init failed).
  void release(raft_io* io);
  // Deletes every record of group: log, term, vote, snapshot. The group must not be attached.
  absl::Status drop(uint32_t group);
  // Stops the writer once the queued jobs are done; `done` runs on the loop when the store's
  // handle is closed.
  void close(std::function<void()> done);

  struct Stats {
    uint64_t appends = 0;  // raft append requests written
    uint64_t syncs = 0;    // WAL syncs that made them durable
  };
  Stats stats() const;

  struct Impl;

 private:
  explicit RaftLogStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::shard
