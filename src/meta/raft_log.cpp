#include "meta/raft_log.h"

#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "meta/raft_log_impl.h"

namespace waverless::meta {

namespace {

absl::Status validate(const RaftLogOptions& o) {
  if (o.id == 0) return absl::InvalidArgumentError("raft log: node id must be > 0");
  if (o.dir.empty()) return absl::InvalidArgumentError("raft log: dir must be set");
  constexpr auto kMaxMs = std::chrono::milliseconds(std::numeric_limits<unsigned>::max());
  if (o.heartbeat_timeout.count() <= 0 || o.election_timeout <= o.heartbeat_timeout ||
      o.election_timeout > kMaxMs || o.install_snapshot_timeout.count() <= 0 ||
      o.install_snapshot_timeout > kMaxMs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft log: need 0 < heartbeat_timeout (", o.heartbeat_timeout.count(),
        "ms) < election_timeout (", o.election_timeout.count(),
        "ms) and install_snapshot_timeout (", o.install_snapshot_timeout.count(), "ms) > 0"));
  }
  bool self = false;
  for (const RaftPeer& p : o.peers) {
    if (p.id == 0 || p.address.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("raft log: peer ", p.id, " at \"", p.address,
                                                     "\" needs an id > 0 and an address"));
    }
    if (p.id == o.id) {
      if (p.address != o.address) {
        return absl::InvalidArgumentError(absl::StrCat("raft log: peers list node ", o.id, " at ",
                                                       p.address, " but address is ", o.address));
      }
      self = true;
    }
  }
  if (!self) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft log: peers must include this node (id ", o.id, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- Callers' threads: the lifecycle and handing work to the loop ----------------------------

absl::Status RaftLog::Impl::start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (node_) return absl::FailedPreconditionError("raft log: already started");
  if (absl::Status s = validate(options_); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("raft log: create ", options_.dir.string(), ": ", ec.message()));
  }
  {
    // The loop replays the persisted snapshot and log into an empty map.
    std::lock_guard lock(map_mu_);
    map_.clear();
  }
  node_ = std::make_unique<Node>();
  node_->owner = this;
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  Node* n = node_.get();
  n->thread = std::jthread([this, n, &started] { run(n, started); });
  absl::Status s = result.get();
  if (!s.ok()) {
    n->thread.join();
    node_.reset();
    return s;
  }
  std::lock_guard lock(queue_mu_);
  stop_requested_ = false;
  live_ = n;
  return absl::OkStatus();
}

void RaftLog::Impl::stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (!node_) return;
  {
    std::lock_guard lock(queue_mu_);
    if (live_ != nullptr) {
      stop_requested_ = true;
      uv_async_send(&live_->wake);
      live_ = nullptr;
    }
  }
  node_->thread.join();
  std::deque<Task> cancelled;
  {
    std::lock_guard lock(queue_mu_);
    cancelled.swap(tasks_);
  }
  for (Task& t : cancelled) t(nullptr);
  node_.reset();
}

bool RaftLog::Impl::post(Task task) {
  std::lock_guard lock(queue_mu_);
  if (live_ == nullptr) return false;
  tasks_.push_back(std::move(task));
  // Under queue_mu_: stop() clears live_ under the same lock before the handle is closed.
  uv_async_send(&live_->wake);
  return true;
}

absl::Status RaftLog::Impl::propose(std::string command, std::chrono::milliseconds deadline) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  bool posted = post([this, command = std::move(command), done](Node* n) {
    if (n == nullptr) {
      done->set_value(absl::UnavailableError("raft log: stopped before the entry was proposed"));
    } else {
      submit(n, command, done);
    }
  });
  if (!posted) return absl::UnavailableError("raft log: not running");
  if (result.wait_for(deadline) == std::future_status::timeout) {
    return absl::DeadlineExceededError(absl::StrCat("raft log: entry not applied within ",
                                                    deadline.count(), "ms; it may still commit"));
  }
  return result.get();
}
// ---- RaftLog --------------------------------------------------------------------------------

RaftLog::RaftLog(RaftLogOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
RaftLog::~RaftLog() { impl_->stop(); }

absl::Status RaftLog::start() { return impl_->start(); }
void RaftLog::stop() { impl_->stop(); }

absl::Status RaftLog::put(const std::string& key, const std::string& value,
                          std::chrono::milliseconds deadline) {
  if (key.size() > std::numeric_limits<uint32_t>::max() ||
      value.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("raft log: key or value over 4 GiB");
  }
  return impl_->propose(encodeChange(key, value), deadline);
}

absl::Status RaftLog::erase(const std::string& key, std::chrono::milliseconds deadline) {
  if (key.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("raft log: key over 4 GiB");
  }
  return impl_->propose(encodeChange(key, std::nullopt), deadline);
}

std::optional<std::string> RaftLog::get(const std::string& key) const { return impl_->get(key); }
std::map<std::string, std::string> RaftLog::snapshot() const { return impl_->snapshot(); }
bool RaftLog::isLeader() const { return impl_->isLeader(); }
std::optional<RaftPeer> RaftLog::leader() const { return impl_->leader(); }
void RaftLog::onApply(ApplyCallback cb) { impl_->onApply(std::move(cb)); }

}  // namespace waverless::meta
