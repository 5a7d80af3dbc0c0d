#include "shard/raft_host.h"

#include <pthread.h>

#include <cassert>
#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "shard/raft_host_internal.h"

namespace waverless::shard {

absl::Status fromRaft(int rv, const std::string& what) {
  std::string msg = absl::StrCat("raft ", what, ": ", raft_strerror(rv));
  switch (rv) {
    case RAFT_NOTLEADER:
      return absl::FailedPreconditionError(msg);
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
      return absl::UnavailableError(absl::StrCat(msg, "; the entry may have committed"));
    case RAFT_IOERR:
    case RAFT_NOCONNECTION:
    case RAFT_BUSY:
      return absl::UnavailableError(msg);
    case RAFT_NOMEM:
    case RAFT_NOSPACE:
    case RAFT_TOOMANY:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool RaftHost::Impl::post(Task task) {
  std::lock_guard lock(queue_mu);
  if (!live) return false;
  tasks.push_back(std::move(task));
  uv_async_send(&wake);
  return true;
}

void RaftHost::Impl::drain() {
  assert(std::this_thread::get_id() == loop_thread);
  std::deque<Task> batch;
  bool stop;
  {
    std::lock_guard lock(queue_mu);
    batch.swap(tasks);
    stop = stop_requested;
  }
  for (Task& t : batch) t(true);
  flush();
  if (stop) beginClose();
  // Under load the loop drains thousands of times a second; rebuilding the view of every group
  // each time cost ~4% of a replicated write. Leadership changes reach it within 10 ms this way
  // (an election takes a second), and the watch timer catches them when the loop is idle.
  if (view_stale || uv_now(&loop) - published_at_ms >= 10) publish();
}

absl::Status RaftHost::Impl::notHosted(uint32_t group) const {
  return absl::NotFoundError(
      absl::StrCat("group ", group, " is not hosted on node ", options.node_id));
}

Group* RaftHost::Impl::find(uint32_t id) {
  auto it = groups.find(id);
  return it == groups.end() || it->second->closing ? nullptr : it->second.get();
}

absl::Status RaftHost::Impl::notLeader(Group* g) {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&g->raft, &id, &address);
  if (id == 0 || address == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("group ", g->id, ": node ", options.node_id,
                                                      " is not its leader; no leader is known"));
  }
  return absl::FailedPreconditionError(absl::StrCat("group ", g->id, ": node ", options.node_id,
                                                    " is not its leader; node ", id, " at ",
                                                    address, " is"));
}

void RaftHost::Impl::flush() {
  for (Group* g : dirty) {
    if (!g->queued.empty()) proposeQueued(g);
    if (!g->queued_reads.empty()) barrierQueued(g);
  }
  dirty.clear();
}

void RaftHost::Impl::proposeQueued(Group* g) {
  std::vector<Proposal> proposals = std::move(g->queued);
  std::vector<ProposeDone> dones = std::move(g->queued_done);
  g->queued.clear();
  g->queued_done.clear();
  auto failAll = [&](const absl::Status& s) {
    for (ProposeDone& d : dones) d(s);
  };
  if (raft_state(&g->raft) != RAFT_LEADER) return failAll(notLeader(g));
  Entry entry{options.node_id, std::move(proposals)};
  std::string bytes = encodeEntry(entry);
  raft_buffer buf;
  buf.len = bytes.size();
  buf.base = raft_malloc(buf.len);
  if (buf.base == nullptr) return failAll(absl::ResourceExhaustedError("raft: out of memory"));
  std::memcpy(buf.base, bytes.data(), buf.len);
  auto* p = new PendingEntry{};
  p->req.data = p;
  p->group = g;
  for (size_t i = 0; i < dones.size(); ++i) {
    p->waiters.emplace_back(entry.proposals[i].id, std::move(dones[i]));
    awaited.insert(entry.proposals[i].id);
  }
  int rv = raft_apply(&g->raft, &p->req, &buf, 1, [](RaftApply* req, int status, void*) {
    auto* pending = static_cast<PendingEntry*>(req->data);
    pending->group->host->onApplied(pending, status);
  });
  if (rv != 0) {
    raft_free(buf.base);  // raft takes the buffer only on success
    absl::Status s = rv == RAFT_NOTLEADER ? notLeader(g) : fromRaft(rv, "apply");
    for (auto& [id, done] : p->waiters) {
      awaited.erase(id);
      done(s);
    }
    delete p;
    return;
  }
  g->entries.insert(p);
  std::lock_guard lock(stats_mu);
  ++stats.entries;
  stats.proposals += p->waiters.size();
}

void RaftHost::Impl::onApplied(PendingEntry* p, int status) {
  p->group->entries.erase(p);
  for (auto& [id, done] : p->waiters) {
    awaited.erase(id);
    auto it = results.find(id);
    if (status == 0 && it != results.end()) {
      ProposalResult r = std::move(it->second);
      results.erase(it);
      done(std::move(r));
      continue;
    }
    if (it != results.end()) results.erase(it);
    if (status == 0) {
      // Applied, yet the state machine saw no proposal with this id: it skipped the entry as
      // already applied, which only a replayed log does. Never expected on the live path.
      done(absl::InternalError(
          absl::StrCat("group ", p->group->id, ": entry applied without a result")));
    } else {
      done(status == RAFT_NOTLEADER ? notLeader(p->group) : fromRaft(status, "apply"));
    }
  }
  delete p;
}

void RaftHost::Impl::barrierQueued(Group* g) {
  std::vector<BarrierDone> reads = std::move(g->queued_reads);
  g->queued_reads.clear();
  if (raft_state(&g->raft) != RAFT_LEADER) {
    absl::Status s = notLeader(g);
    for (BarrierDone& d : reads) {
      if (d) d(s);
    }
    return;
  }
  auto* b = new PendingBarrier{};
  b->req.data = b;
  b->group = g;
  b->waiters = std::move(reads);
  int rv = raft_barrier(&g->raft, &b->req, [](RaftBarrier* req, int status) {
    auto* pending = static_cast<PendingBarrier*>(req->data);
    Group* group = pending->group;
    group->barriers.erase(pending);
    absl::Status s = status == 0                ? absl::OkStatus()
                     : status == RAFT_NOTLEADER ? group->host->notLeader(group)
                                                : fromRaft(status, "read barrier");
    for (BarrierDone& d : pending->waiters) {
      if (d) d(s);
    }
    delete pending;
  });
  if (rv != 0) {
    absl::Status s = rv == RAFT_NOTLEADER ? notLeader(g) : fromRaft(rv, "read barrier");
    for (BarrierDone& d : b->waiters) {
      if (d) d(s);
    }
    delete b;
    return;
  }
  g->barriers.insert(b);
  std::lock_guard lock(stats_mu);
  ++stats.barriers;
}

void RaftHost::Impl::publish() {
  if (closing) return;
  view_stale = false;
  published_at_ms = uv_now(&loop);
  if (log) {
    RaftLogStore::Stats ls = log->stats();
    std::lock_guard lock(stats_mu);
    stats.log_appends = ls.appends;
    stats.log_syncs = ls.syncs;
  }
  if (wire) {
    RaftWire::Stats ws = wire->stats();
    std::lock_guard lock(stats_mu);
    stats.messages_sent = ws.messages_sent;
    stats.message_writes = ws.writes;
  }
  std::map<uint32_t, std::optional<Replica>> view;
  std::set<uint32_t> led;
  std::map<uint32_t, std::vector<uint64_t>> voters_now;
  for (auto& [id, g] : groups) {
    if (g->closing || !g->raft_ready) continue;
    raft_id leader = 0;
    const char* address = nullptr;
    raft_leader(&g->raft, &leader, &address);
    view[id] = leader != 0 && address != nullptr ? std::optional<Replica>(Replica{leader, address})
                                                 : std::nullopt;
    bool is_leader = raft_state(&g->raft) == RAFT_LEADER;
    if (is_leader) led.insert(id);
    if (is_leader && !g->was_leader) {
      // Entries of earlier terms commit only with one of the new term (raft §5.4.2).
      g->queued_reads.push_back(nullptr);
      barrierQueued(g.get());
      g->origins.restart(uv_now(&loop));
    }
    g->was_leader = is_leader;
    if (is_leader) reconfigure(g.get());
    std::vector<uint64_t>& v = voters_now[id];
    for (unsigned i = 0; i < g->raft.configuration.n; ++i) {
      if (g->raft.configuration.servers[i].role == RAFT_VOTER)
        v.push_back(g->raft.configuration.servers[i].id);
    }
  }
  {
    std::lock_guard lock(stats_mu);
    stats.handshakes_refused = mux->stats().refused;
  }
  balanceLeaders(view);
  std::lock_guard lock(view_mu);
  leaders = std::move(view);
  leading = std::move(led);
  voters = std::move(voters_now);
}

void RaftHost::Impl::beginClose() {
  if (closing) return;
  closing = true;
  {
    std::lock_guard lock(view_mu);
    leaders.clear();
    leading.clear();
  }
  uv_timer_stop(&watch);
  std::vector<Group*> all;
  for (auto& [id, g] : groups) all.push_back(g.get());
  for (Group* g : all) closeGroup(g);
  maybeClosed();
}

void RaftHost::Impl::maybeClosed() {
  if (!closing || closing_groups > 0 || !mux) return;
  if (transports_closing) return;
  transports_closing = true;
  if (log) log->close([] {});
  auto close_mux = [this] {
    mux->close([this] {
      uv_close(reinterpret_cast<uv_handle_t*>(&watch), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    });
  };
  if (!wire) return close_mux();
  // The wire's channels close before the mux: its pending handshakes report to the wire.
  RaftWire* w = wire.release();
  w->close([w, close_mux] {
    close_mux();
    delete w;
  });
}

void RaftHost::Impl::run(std::promise<absl::Status>& started) {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  loop_thread = std::this_thread::get_id();
  pthread_setname_np(pthread_self(), "wl-raft-loop");  // for top -H, perf and gdb
  uv_loop_init(&loop);
  uv_async_init(&loop, &wake, [](uv_async_t* a) { static_cast<Impl*>(a->data)->drain(); });
  wake.data = this;
  uv_timer_init(&loop, &watch);
  watch.data = this;
  mux = std::make_unique<RaftMux>(&loop, options.node_id, options.secret);
  absl::Status s = openLog();
  if (s.ok()) s = mux->listen(options.listen_address);
  if (s.ok()) wire = std::make_unique<RaftWire>(&loop, *mux);
  if (options.balance_leaders_after.count() > 0)
    next_transfer_ms = uv_now(&loop) + options.balance_leaders_after.count();
  if (s.ok()) {
    std::string host = options.listen_address.substr(0, options.listen_address.rfind(':'));
    bound_address = absl::StrCat(host, ":", mux->boundPort());
    const uint64_t period = std::max<uint64_t>(10, options.heartbeat_timeout.count() / 2);
    uv_timer_start(
        &watch, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->publish(); }, period, period);
  } else {
    closing = true;
    maybeClosed();
  }
  started.set_value(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  closed_groups.clear();
  mux.reset();
  log.reset();
}

RaftHost::RaftHost(RaftHostOptions options, kv::KvStore& store)
    : impl_(std::make_unique<Impl>(std::move(options), store)) {}

RaftHost::~RaftHost() { stop(); }

absl::Status RaftHost::start() {
  Impl& h = *impl_;
  std::lock_guard lifecycle(h.lifecycle_mu);
  if (h.thread.joinable()) return absl::FailedPreconditionError("raft host: already started");
  if (h.options.node_id == 0 || h.options.dir.empty() || h.options.secret.empty()) {
    return absl::InvalidArgumentError("raft host: node id, dir and secret must be set");
  }
  if (h.options.heartbeat_timeout.count() <= 0 ||
      h.options.election_timeout <= h.options.heartbeat_timeout) {
    return absl::InvalidArgumentError("raft host: need 0 < heartbeat_timeout < election_timeout");
  }
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  h.closing = false;
  h.thread = std::jthread([&h, &started] { h.run(started); });
  absl::Status s = result.get();
  if (!s.ok()) {
    h.thread.join();
    h.thread = {};
    return s;
  }
  std::lock_guard lock(h.queue_mu);
  h.live = true;
  h.stop_requested = false;
  return absl::OkStatus();
}

void RaftHost::stop() {
  Impl& h = *impl_;
  std::lock_guard lifecycle(h.lifecycle_mu);
  if (!h.thread.joinable()) return;
  {
    std::lock_guard lock(h.queue_mu);
    h.stop_requested = true;
    h.live = false;
    uv_async_send(&h.wake);
  }
  h.thread.join();
  h.thread = {};
  std::deque<Impl::Task> cancelled;
  {
    std::lock_guard lock(h.queue_mu);
    cancelled.swap(h.tasks);
  }
  for (Impl::Task& t : cancelled) t(false);
}

std::string RaftHost::address() const { return impl_->bound_address; }

absl::Status RaftHost::openGroup(uint32_t group, const std::vector<Replica>& replicas,
                                 bool bootstrap) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  bool posted = impl_->post([this, group, replicas, bootstrap, done](bool running) {
    done->set_value(running ? impl_->open(group, replicas, bootstrap)
                            : absl::UnavailableError("raft host: stopped"));
  });
  if (!posted) return absl::UnavailableError("raft host: not running");
  return result.get();
}

void RaftHost::setReplicas(uint32_t group, std::vector<Replica> replicas) {
  impl_->post([this, group, replicas = std::move(replicas)](bool running) mutable {
    if (Group* g = running ? impl_->find(group) : nullptr) g->wanted = std::move(replicas);
  });
}

void RaftHost::dropGroup(uint32_t group) {
  impl_->post([this, group](bool running) {
    if (!running) return;
    Group* g = impl_->find(group);
    if (g == nullptr) {
      // Not open (a restart after the map moved it): only its leftovers go.
      std::error_code ec;
      if (std::filesystem::exists(impl_->options.dir / absl::StrCat("g", group), ec))
        impl_->dropData(group);
      return;
    }
    if (g->closing) return;
    g->drop = true;
    impl_->closeGroup(g);
  });
}

std::vector<uint64_t> RaftHost::votersOf(uint32_t group) const {
  std::lock_guard lock(impl_->view_mu);
  auto it = impl_->voters.find(group);
  return it == impl_->voters.end() ? std::vector<uint64_t>{} : it->second;
}

std::vector<uint32_t> RaftHost::openGroups() const {
  std::lock_guard lock(impl_->view_mu);
  std::vector<uint32_t> out;
  for (const auto& [id, v] : impl_->voters) out.push_back(id);
  return out;
}

void RaftHost::propose(uint32_t group, std::vector<KvOp> ops, ProposeDone done, uint64_t origin) {
  auto shared = std::make_shared<ProposeDone>(std::move(done));
  bool posted =
      impl_->post([this, group, ops = std::move(ops), shared, origin](bool running) mutable {
        Impl& h = *impl_;
        if (!running) return (*shared)(absl::UnavailableError("raft host: stopped"));
        Group* g = h.find(group);
        if (g == nullptr) return (*shared)(h.notHosted(group));
        if (g->raft_ready && raft_state(&g->raft) == RAFT_LEADER)
          g->origins.note(origin != 0 ? origin : h.options.node_id);
        g->queued.push_back(Proposal{h.next_proposal++, std::move(ops)});
        g->queued_done.push_back(std::move(*shared));
        h.dirty.insert(g);
      });
  if (!posted) (*shared)(absl::UnavailableError("raft host: not running"));
}

void RaftHost::readBarrier(uint32_t group, BarrierDone done) {
  auto shared = std::make_shared<BarrierDone>(std::move(done));
  bool posted = impl_->post([this, group, shared](bool running) mutable {
    Impl& h = *impl_;
    if (!running) return (*shared)(absl::UnavailableError("raft host: stopped"));
    Group* g = h.find(group);
    if (g == nullptr) return (*shared)(h.notHosted(group));
    g->queued_reads.push_back(std::move(*shared));
    h.dirty.insert(g);
  });
  if (!posted) (*shared)(absl::UnavailableError("raft host: not running"));
}

std::optional<Replica> RaftHost::leaderOf(uint32_t group) const {
  std::lock_guard lock(impl_->view_mu);
  auto it = impl_->leaders.find(group);
  return it == impl_->leaders.end() ? std::nullopt : it->second;
}

bool RaftHost::leads(uint32_t group) const {
  std::lock_guard lock(impl_->view_mu);
  return impl_->leading.contains(group);
}

RaftHost::Stats RaftHost::stats() const {
  Stats s;
  {
    std::lock_guard lock(impl_->stats_mu);
    s = impl_->stats;
  }
  return s;
}

}  // namespace waverless::shard
