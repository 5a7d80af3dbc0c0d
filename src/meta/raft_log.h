// A replicated map<string, string> kept consistent by the C `raft` library
// (libraft, libuv I/O and TCP transport): every committed put/erase is applied
// on every node, in log order, and survives restarts (raft's log and FSM
// snapshots live in RaftLogOptions::dir).
//
// Owns: one libuv loop thread per start()..stop() run, which alone touches the
// raft instance; the applied map. Must not: block the loop thread, or know what
// the keys mean (callers build metadata on top of it).
//
// Threading: put()/erase() hand a task to the loop thread (mutex-protected
// queue + uv_async_t) and block their caller on a promise that raft's apply
// callback completes. get()/snapshot() read the applied map under a mutex.
// isLeader()/leader() read a view the loop thread republishes every few
// milliseconds (at most max(heartbeat/2, 10ms) stale).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace waverless::meta {

struct RaftPeer {
  uint64_t id;
  std::string address;  // "host:port" (IPv4) for raft's TCP transport

  bool operator==(const RaftPeer&) const = default;
};

struct RaftLogOptions {
  uint64_t id;                  // this node, > 0
  std::string address;          // where this node's raft listens; must match its entry in peers
  std::vector<RaftPeer> peers;  // ALL voters including this node (static, bootstrapped once)
  std::filesystem::path dir;    // raft's data dir (created if missing)
  std::chrono::milliseconds election_timeout{1000}, heartbeat_timeout{100};
  // Log entries between FSM snapshots, and entries kept after one so a
  // slightly lagging follower needs no snapshot (raft's defaults).
  uint32_t snapshot_threshold = 1024;
  uint32_t snapshot_trailing = 128;
  // How long the leader waits for an InstallSnapshot to be acknowledged before sending it again.
  // A follower busy taking its own snapshot drops the request without replying (libraft 0.15),
  // so this bounds its catch-up time; raft's default is 30 s.
  std::chrono::milliseconds install_snapshot_timeout{5000};
};

class RaftLog {
 public:
  // Called on the raft loop thread after each applied change (value nullopt =
  // erased); must not block and must not call put()/erase()/stop(). A
  // snapshot restore reports every key whose value changed.
  using ApplyCallback =
      std::function<void(const std::string& key, const std::optional<std::string>& value)>;

  explicit RaftLog(RaftLogOptions options);
  ~RaftLog();  // stop()s
  RaftLog(const RaftLog&) = delete;
  RaftLog& operator=(const RaftLog&) = delete;

  // Bootstraps the static configuration on first start (a no-op once dir holds
  // raft state), loads the persisted snapshot + log and starts the loop
  // thread. May be called again after stop(). The map starts from the last
  // local snapshot; later log entries are applied once a leader confirms them
  // committed (a new leader commits a barrier for that right after election).
  absl::Status start();
  // Idempotent. Closes raft and the loop cleanly; pending put()/erase() calls
  // complete with Unavailable.
  void stop();

  // Proposes on the leader and waits until the entry is committed and applied
  // locally, or until `deadline` (DeadlineExceeded: the entry may still
  // commit). Not leader: FailedPrecondition naming the leader (see leader()).
  // Leadership lost while waiting: Unavailable (the entry may still commit).
  absl::Status put(const std::string& key, const std::string& value,
                   std::chrono::milliseconds deadline);
  absl::Status erase(const std::string& key, std::chrono::milliseconds deadline);

  std::optional<std::string> get(const std::string& key) const;  // local applied state
  std::map<std::string, std::string> snapshot() const;           // local applied state
  bool isLeader() const;
  std::optional<RaftPeer> leader() const;

  void onApply(ApplyCallback cb);  // set before start()

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::meta
