// RaftLog's loop thread: raft and libuv setup and teardown, proposals, the leadership view and
// the state machine (raft_log_impl.h).
#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "meta/raft_log_impl.h"

namespace waverless::meta {

namespace {

// ---- Errors ---------------------------------------------------------------------------------

absl::Status fromRaft(int rv, const std::string& what, const char* errmsg) {
  std::string msg = absl::StrCat("raft ", what, ": ", raft_strerror(rv));
  if (errmsg != nullptr && errmsg[0] != '\0') absl::StrAppend(&msg, " (", errmsg, ")");
  switch (rv) {
    case RAFT_NOTLEADER:
      return absl::FailedPreconditionError(msg);
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
    case RAFT_IOERR:  // like kv: a disk or socket failure may go away on retry
    case RAFT_NOCONNECTION:
    case RAFT_BUSY:
    case RAFT_CANCELED:
      return absl::UnavailableError(msg);
    case RAFT_NOMEM:
    case RAFT_NOSPACE:
    case RAFT_TOOMANY:
      return absl::ResourceExhaustedError(msg);
    case RAFT_TOOBIG:
    case RAFT_NAMETOOLONG:
    case RAFT_INVALID:
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
      return absl::InvalidArgumentError(msg);
    case RAFT_NOTFOUND:
      return absl::NotFoundError(msg);
    case RAFT_UNAUTHORIZED:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

// ---- The loop thread ------------------------------------------------------------------------

void RaftLog::Impl::run(Node* n, std::promise<absl::Status>& started) {
  // libuv writes to sockets with write(2): a peer that went away raises SIGPIPE, which would kill
  // the process. Blocked on this thread (and the libuv threads it spawns) the write fails with
  // EPIPE instead, and the process-wide disposition stays the embedder's choice.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  n->loop_thread = std::this_thread::get_id();
  absl::Status s = init(n);
  if (!s.ok()) beginClose(n);
  // `started` lives on start()'s stack: nothing may touch it after this.
  started.set_value(std::move(s));
  if (n->loop_ready) uv_run(&n->loop, UV_RUN_DEFAULT);
  finish(n);
}

// raft copies its I/O's message into its own only on some paths (and a failed listen leaves both
// empty): take whichever is set.
const char* RaftLog::Impl::lastError(Node* n) {
  const char* msg = raft_errmsg(&n->raft_);
  return (msg != nullptr && msg[0] != '\0') ? msg : n->io.errmsg;
}

absl::Status RaftLog::Impl::init(Node* n) {
  const RaftLogOptions& o = options_;
  if (int rv = uv_loop_init(&n->loop); rv != 0) {
    return absl::InternalError(absl::StrCat("raft log: uv_loop_init: ", uv_strerror(rv)));
  }
  n->loop_ready = true;
  uv_async_init(&n->loop, &n->wake, &Impl::onWake);
  uv_timer_init(&n->loop, &n->watch);
  n->wake.data = n;
  n->watch.data = n;
  n->handles_ready = true;

  if (int rv = raft_uv_tcp_init(&n->transport, &n->loop); rv != 0) {
    return fromRaft(rv, "tcp transport", n->transport.errmsg);
  }
  n->transport_ready = true;
  const std::string dir = o.dir.string();
  if (int rv = raft_uv_init(&n->io, &n->loop, dir.c_str(), &n->transport); rv != 0) {
    return fromRaft(rv, absl::StrCat("storage in ", dir), n->io.errmsg);
  }
  n->io_ready = true;

  n->fsm = {};
  n->fsm.version = 2;  // snapshot_finalize: we free the snapshot buffers we allocate
  n->fsm.data = n;
  n->fsm.apply = &Impl::fsmApply;
  n->fsm.snapshot = &Impl::fsmSnapshot;
  n->fsm.restore = &Impl::fsmRestore;
  n->fsm.snapshot_finalize = &Impl::fsmSnapshotFinalize;
  if (int rv = raft_init(&n->raft_, &n->io, &n->fsm, o.id, o.address.c_str()); rv != 0) {
    return fromRaft(rv, "init", lastError(n));
  }
  n->raft_ready = true;
  n->raft_.data = n;
  raft_set_election_timeout(&n->raft_, static_cast<unsigned>(o.election_timeout.count()));
  raft_set_heartbeat_timeout(&n->raft_, static_cast<unsigned>(o.heartbeat_timeout.count()));
  raft_set_snapshot_threshold(&n->raft_, o.snapshot_threshold);
  raft_set_snapshot_trailing(&n->raft_, o.snapshot_trailing);
  raft_set_install_snapshot_timeout(&n->raft_,
                                    static_cast<unsigned>(o.install_snapshot_timeout.count()));
  // A restarted node with a stale log must not depose a healthy leader.
  raft_set_pre_vote(&n->raft_, true);

  raft_configuration conf;
  raft_configuration_init(&conf);
  int rv = 0;
  for (const RaftPeer& p : o.peers) {
    rv = raft_configuration_add(&conf, p.id, p.address.c_str(), RAFT_VOTER);
    if (rv != 0) {
      raft_configuration_close(&conf);
      return fromRaft(rv, absl::StrCat("peer ", p.id, " at ", p.address), nullptr);
    }
  }
  // Every node bootstraps the same configuration; once dir holds state this is refused.
  rv = raft_bootstrap(&n->raft_, &conf);
  raft_configuration_close(&conf);
  if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
    return fromRaft(rv, absl::StrCat("bootstrap in ", dir), lastError(n));
  }
  if (rv = raft_start(&n->raft_); rv != 0) {
    return fromRaft(rv, absl::StrCat("start (listen on ", o.address, ", data in ", dir, ")"),
                    lastError(n));
  }
  const uint64_t period =
      std::max<uint64_t>(10, static_cast<uint64_t>(o.heartbeat_timeout.count()) / 2);
  uv_timer_start(&n->watch, &Impl::onWatch, 0, period);
  return absl::OkStatus();
}

void RaftLog::Impl::beginClose(Node* n) {
  if (n->closing) return;
  n->closing = true;
  {
    std::lock_guard lock(view_mu_);
    is_leader_ = false;
    leader_.reset();
  }
  if (n->handles_ready) {
    uv_close(reinterpret_cast<uv_handle_t*>(&n->watch), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&n->wake), nullptr);
  }
  if (n->raft_ready) {
    // Fails the pending applies and barriers, closes the I/O, then calls onRaftClosed.
    raft_close(&n->raft_, &Impl::onRaftClosed);
    return;
  }
  if (n->io_ready) raft_uv_close(&n->io);
  if (n->transport_ready) raft_uv_tcp_close(&n->transport);
}

void RaftLog::Impl::onRaftClosed(struct raft* r) noexcept {
  auto* n = static_cast<Node*>(r->data);
  raft_uv_close(&n->io);
  raft_uv_tcp_close(&n->transport);
}

void RaftLog::Impl::finish(Node* n) {
  if (n->loop_ready) {
    if (uv_loop_close(&n->loop) == UV_EBUSY) {
      // Unreachable unless a handle above was not closed: close stragglers rather than leak.
      uv_walk(
          &n->loop,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
      uv_run(&n->loop, UV_RUN_DEFAULT);
      uv_loop_close(&n->loop);
    }
  }
  // raft is closed: whatever it did not complete will never be.
  for (PendingApply* p : n->applies) {
    p->done->set_value(absl::UnavailableError("raft log: stopped; the entry may have committed"));
    delete p;
  }
  n->applies.clear();
  for (RaftBarrier* b : n->barriers) delete b;
  n->barriers.clear();
}

void RaftLog::Impl::onWake(uv_async_t* h) noexcept {
  auto* n = static_cast<Node*>(h->data);
  n->owner->drain(n);
}

void RaftLog::Impl::drain(Node* n) {
  assert(std::this_thread::get_id() == n->loop_thread);
  std::deque<Task> tasks;
  bool stop;
  {
    std::lock_guard lock(queue_mu_);
    tasks.swap(tasks_);
    stop = stop_requested_;
  }
  for (Task& t : tasks) t(n);
  if (stop) {
    beginClose(n);
  } else {
    publish(n);
  }
}

void RaftLog::Impl::onWatch(uv_timer_t* h) noexcept {
  auto* n = static_cast<Node*>(h->data);
  n->owner->publish(n);
}

void RaftLog::Impl::publish(Node* n) {
  assert(std::this_thread::get_id() == n->loop_thread);
  if (n->closing) return;
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&n->raft_, &id, &address);
  const bool leader = raft_state(&n->raft_) == RAFT_LEADER;
  if (leader && !n->was_leader) {
    // Entries of earlier terms commit only with one of the new term (raft §5.4.2): a barrier
    // makes a new leader apply them (and report them to followers) without waiting for a put.
    auto* b = new RaftBarrier{};
    b->data = n;
    if (raft_barrier(&n->raft_, b, &Impl::onBarrier) == 0) {
      n->barriers.insert(b);
    } else {
      delete b;
    }
  }
  n->was_leader = leader;
  std::lock_guard lock(view_mu_);
  is_leader_ = leader;
  if (id != 0 && address != nullptr) {
    leader_ = RaftPeer{id, address};
  } else {
    leader_.reset();
  }
}

void RaftLog::Impl::onBarrier(RaftBarrier* req, int) noexcept {
  auto* n = static_cast<Node*>(req->data);
  n->barriers.erase(req);
  delete req;
}

absl::Status RaftLog::Impl::notLeader(Node* n) {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&n->raft_, &id, &address);
  if (id == 0 || address == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft log: node ", options_.id, " is not the leader and no leader is known"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "raft log: node ", options_.id, " is not the leader; leader is node ", id, " at ", address));
}

void RaftLog::Impl::submit(Node* n, const std::string& command,
                           const std::shared_ptr<std::promise<absl::Status>>& done) {
  assert(std::this_thread::get_id() == n->loop_thread);
  if (n->closing) {
    done->set_value(absl::UnavailableError("raft log: stopping"));
    return;
  }
  if (raft_state(&n->raft_) != RAFT_LEADER) {
    done->set_value(notLeader(n));
    return;
  }
  raft_buffer buf;
  buf.len = command.size();
  buf.base = raft_malloc(buf.len);
  if (buf.base == nullptr) {
    done->set_value(absl::ResourceExhaustedError("raft log: out of memory"));
    return;
  }
  std::memcpy(buf.base, command.data(), buf.len);
  auto* p = new PendingApply{};
  p->req.data = p;
  p->node = n;
  p->done = done;
  if (int rv = raft_apply(&n->raft_, &p->req, &buf, 1, &Impl::onApplied); rv != 0) {
    raft_free(buf.base);  // ownership passes to raft only on success
    delete p;
    done->set_value(rv == RAFT_NOTLEADER ? notLeader(n)
                                         : fromRaft(rv, "apply", raft_errmsg(&n->raft_)));
    return;
  }
  n->applies.insert(p);
}

void RaftLog::Impl::onApplied(RaftApply* req, int status, void*) noexcept {
  auto* p = static_cast<PendingApply*>(req->data);
  Node* n = p->node;
  n->applies.erase(p);
  if (status == 0) {
    p->done->set_value(absl::OkStatus());
  } else if (status == RAFT_NOTLEADER) {
    p->done->set_value(n->owner->notLeader(n));
  } else {
    absl::Status s = fromRaft(status, "apply", nullptr);
    if (status == RAFT_LEADERSHIPLOST || status == RAFT_SHUTDOWN) {
      s = absl::UnavailableError(absl::StrCat(s.message(), "; the entry may still commit"));
    }
    p->done->set_value(std::move(s));
  }
  delete p;
}

// ---- The state machine (loop thread) --------------------------------------------------------

void RaftLog::Impl::applyChange(Change c) {
  {
    std::lock_guard lock(map_mu_);
    if (c.value) {
      map_.insert_or_assign(c.key, *c.value);
    } else {
      map_.erase(c.key);
    }
  }
  if (on_apply_) on_apply_(c.key, c.value);
}

void RaftLog::Impl::restore(std::map<std::string, std::string> next) {
  std::vector<Change> changes;
  {
    std::lock_guard lock(map_mu_);
    for (const auto& [k, v] : map_) {
      if (!next.contains(k)) changes.push_back({k, std::nullopt});
    }
    for (const auto& [k, v] : next) {
      auto it = map_.find(k);
      if (it == map_.end() || it->second != v) changes.push_back({k, v});
    }
    map_ = std::move(next);
  }
  if (on_apply_) {
    for (const Change& c : changes) on_apply_(c.key, c.value);
  }
}

int RaftLog::Impl::fsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) noexcept {
  *result = nullptr;
  auto* n = static_cast<Node*>(fsm->data);
  // Only our own encoder writes entries and raft checksums them; should one still not decode,
  // every replica skips it alike, so they stay identical (an error would stall the log).
  if (std::optional<Change> c =
          decodeChange(std::string_view(static_cast<const char*>(buf->base), buf->len))) {
    n->owner->applyChange(std::move(*c));
  } else {
    fprintf(stderr,
            "level=error node=%llu msg=\"raft log: skipped a malformed entry of %zu bytes\"\n",
            static_cast<unsigned long long>(n->owner->options_.id), buf->len);
  }
  return 0;
}

int RaftLog::Impl::fsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
  auto* n = static_cast<Node*>(fsm->data);
  // Runs on the loop thread, between applies: the map is exactly the state at last_applied.
  std::string data;
  {
    std::lock_guard lock(n->owner->map_mu_);
    data = encodeMap(n->owner->map_);
  }
  auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (out == nullptr) return RAFT_NOMEM;
  out->len = data.size();
  out->base = raft_malloc(data.size());
  if (out->base == nullptr) {
    raft_free(out);
    return RAFT_NOMEM;
  }
  std::memcpy(out->base, data.data(), data.size());
  *bufs = out;
  *n_bufs = 1;
  return 0;
}

int RaftLog::Impl::fsmSnapshotFinalize(raft_fsm*, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
  if (*bufs != nullptr) {
    for (unsigned i = 0; i < *n_bufs; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = nullptr;
  *n_bufs = 0;
  return 0;
}

int RaftLog::Impl::fsmRestore(raft_fsm* fsm, raft_buffer* buf) noexcept {
  auto* n = static_cast<Node*>(fsm->data);
  std::optional<std::map<std::string, std::string>> next =
      decodeMap(std::string_view(static_cast<const char*>(buf->base), buf->len));
  if (!next) return RAFT_MALFORMED;  // raft keeps (and frees) the buffer on failure
  raft_free(buf->base);              // ... and hands it to us on success
  buf->base = nullptr;
  n->owner->restore(std::move(*next));
  return 0;
}

}  // namespace waverless::meta
