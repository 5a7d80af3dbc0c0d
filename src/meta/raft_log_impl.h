// Private to meta/: RaftLog's implementation, shared by its two halves. raft_log.cpp holds what
// callers' threads run (start/stop, posting work to the loop, the public API); raft_log_loop.cpp
// holds what only the loop thread runs (raft and libuv setup and teardown, proposals, leadership
// view, the state machine). The threading contract is raft_log.h's.
#pragma once

// libraft 0.15's headers have no extern "C" guards of their own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <uv.h>

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "meta/raft_command.h"
#include "meta/raft_log.h"

namespace waverless::meta {

class RaftLog::Impl {
 public:
  explicit Impl(RaftLogOptions o) : options_(std::move(o)) {}

  absl::Status start();
  void stop();
  absl::Status propose(std::string command, std::chrono::milliseconds deadline);

  std::optional<std::string> get(const std::string& key) const {
    std::lock_guard lock(map_mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> snapshot() const {
    std::lock_guard lock(map_mu_);
    return map_;
  }
  bool isLeader() const {
    std::lock_guard lock(view_mu_);
    return is_leader_;
  }
  std::optional<RaftPeer> leader() const {
    std::lock_guard lock(view_mu_);
    return leader_;
  }
  void onApply(ApplyCallback cb) { on_apply_ = std::move(cb); }

 private:
  // The request structs share their names with raft's functions, which hide them in C++.
  using RaftApply = struct raft_apply;
  using RaftBarrier = struct raft_barrier;

  // One start()..stop() run: the uv loop, the raft instance and its I/O. Apart from `thread`
  // (joined by stop()), members are touched only by the loop thread: raft_* and uv_* (but
  // uv_async_send) are never called from elsewhere.
  struct Node;
  // A raft_apply in flight; completes the proposer's promise from raft's callback.
  struct PendingApply {
    RaftApply req;
    Node* node;
    std::shared_ptr<std::promise<absl::Status>> done;
  };
  // Work handed to the loop thread; called with nullptr when the loop stopped before running it.
  using Task = std::function<void(Node*)>;

  struct Node {
    Impl* owner;
    uv_loop_t loop;
    uv_async_t wake;   // "tasks queued or stop requested"
    uv_timer_t watch;  // republishes leadership for isLeader()/leader()
    raft_uv_transport transport;
    raft_io io;
    raft_fsm fsm;
    struct raft raft_;
    std::thread::id loop_thread;  // set first thing on the loop thread
    bool loop_ready = false, handles_ready = false, transport_ready = false, io_ready = false,
         raft_ready = false, closing = false, was_leader = false;
    std::set<PendingApply*> applies;
    std::set<RaftBarrier*> barriers;
    // Stopped by stop() through `wake`, not its stop token: uv_run cannot poll a token.
    std::jthread thread;
  };

  void run(Node* n, std::promise<absl::Status>& started);
  absl::Status init(Node* n);
  static const char* lastError(Node* n);
  void beginClose(Node* n);
  void finish(Node* n);
  void drain(Node* n);
  void publish(Node* n);
  void submit(Node* n, const std::string& command,
              const std::shared_ptr<std::promise<absl::Status>>& done);
  absl::Status notLeader(Node* n);
  bool post(Task task);
  void applyChange(Change c);
  void restore(std::map<std::string, std::string> next);

  // C callbacks: noexcept, so a C++ exception terminates instead of unwinding through libraft.
  static void onWake(uv_async_t* h) noexcept;
  static void onWatch(uv_timer_t* h) noexcept;
  static void onRaftClosed(struct raft* r) noexcept;
  static void onApplied(RaftApply* req, int status, void* result) noexcept;
  static void onBarrier(RaftBarrier* req, int status) noexcept;
  static int fsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) noexcept;
  static int fsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept;
  static int fsmSnapshotFinalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept;
  static int fsmRestore(raft_fsm* fsm, raft_buffer* buf) noexcept;

  const RaftLogOptions options_;
  ApplyCallback on_apply_;  // set before start(), then only read by the loop thread

  std::mutex lifecycle_mu_;     // serializes start()/stop()
  std::unique_ptr<Node> node_;  // guarded by lifecycle_mu_

  std::mutex queue_mu_;
  std::deque<Task> tasks_;       // guarded by queue_mu_
  Node* live_ = nullptr;         // guarded by queue_mu_; non-null while accepting tasks
  bool stop_requested_ = false;  // guarded by queue_mu_

  mutable std::mutex map_mu_;
  std::map<std::string, std::string> map_;  // guarded by map_mu_; written by the loop thread

  mutable std::mutex view_mu_;
  bool is_leader_ = false;          // guarded by view_mu_
  std::optional<RaftPeer> leader_;  // guarded by view_mu_
};

}  // namespace waverless::meta
