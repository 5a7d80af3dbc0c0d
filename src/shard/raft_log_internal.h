// RaftLogStore's insides, shared by raft_log_store.cpp (the store and its writer thread) and
// raft_log_io.cpp (the raft_io entries libraft calls). Not for use outside src/shard/raft_log*.
#pragma once

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "shard/raft_log_format.h"
#include "shard/raft_log_store.h"
#include "shard/raft_wire.h"

namespace waverless::shard {

using raft_log_format::SnapshotRecord;

// One group's raft_io: its persistence goes to the store, its networking to `inner`.
struct GroupLog {
  RaftLogStore::Impl* store = nullptr;
  uint32_t group = 0;
  raft_io* outer = nullptr;
  raft_io inner{};
  RaftWire* wire = nullptr;  // null: messages go through inner's transport
  raft_io_tick_cb tick = nullptr;
  raft_io_recv_cb recv = nullptr;
  raft_io_close_cb close_cb = nullptr;
  bool closing = false, inner_closed = false;
  uint64_t next_index = 1;  // where the next append goes
  size_t pending = 0;       // jobs queued and not yet completed
};

struct Job {
  enum class Kind { kAppend, kTruncate, kSnapshotPut, kSnapshotGet } kind;
  GroupLog* log = nullptr;
  rocksdb::WriteBatch batch;
  raft_io_append* append = nullptr;
  raft_io_snapshot_put* put = nullptr;
  raft_io_snapshot_get* get = nullptr;
  SnapshotRecord record;              // snapshot put
  std::string data;                   // snapshot put
  unsigned trailing = 0;              // snapshot put
  raft_snapshot* snapshot = nullptr;  // snapshot get's result
  int status = 0;
};

struct RaftLogStore::Impl {
  uv_loop_t* loop = nullptr;
  std::filesystem::path snap_dir;
  std::unique_ptr<rocksdb::DB> db;
  uv_async_t finished_async{};
  std::thread writer;
  std::function<void()> close_done;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Job>> queue;      // guarded by mu
  std::vector<std::unique_ptr<Job>> finished;  // guarded by mu
  bool stopping = false;                       // guarded by mu

  std::atomic<uint64_t> appends{0}, syncs{0};

  // ---- Loop thread ----

  void submit(std::unique_ptr<Job> job);
  void complete();
  static void maybeClosed(GroupLog* gl);
  rocksdb::Status syncWrite(rocksdb::WriteBatch& batch);
  bool readMeta(uint32_t group, uint64_t* term, uint64_t* vote, rocksdb::Status* st);
  bool readRecord(uint32_t group, SnapshotRecord* rec, bool* found);

  // The last snapshot, as raft wants it: raft takes ownership of everything.
  int loadSnapshot(uint32_t group, raft_snapshot** out);

  // Snapshot files of group other than `keep` (stale ones: a crash between a file and its
  // record, or a record replaced before its old file was removed).
  void removeSnapshotFiles(uint32_t group, const std::string& keep);

  // ---- Writer thread ----

  void writerMain();
  // Writes the snapshot file durably and adds its record (and the log it retires) to j.batch.
  int putSnapshot(Job& j, std::vector<std::filesystem::path>* obsolete);
};

// Points io's table at the entries of raft_log_io.cpp, for gl (attach()).
void fillRaftIo(raft_io* io, GroupLog* gl);

}  // namespace waverless::shard
