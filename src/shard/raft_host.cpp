#include "shard/raft_host.h"

// libraft 0.15's headers have no extern "C" guards of their own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <pthread.h>
#include <uv.h>

#include <cassert>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"
#include "shard/group_config.h"
#include "shard/raft_log_store.h"
#include "shard/raft_mux.h"

namespace waverless::shard {

namespace {

using RaftApply = struct raft_apply;
using RaftBarrier = struct raft_barrier;

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

}  // namespace

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
  bool drop = false;  // closing because the map moved the group away: delete its data
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

  bool post(Task task) {
    std::lock_guard lock(queue_mu);
    if (!live) return false;
    tasks.push_back(std::move(task));
    uv_async_send(&wake);
    return true;
  }

  // ---- Loop thread ----

  void drain() {
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
    publish();
  }

  Group* find(uint32_t id) {
    auto it = groups.find(id);
    return it == groups.end() || it->second->closing ? nullptr : it->second.get();
  }

  absl::Status notLeader(Group* g) {
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

  void flush() {
    for (Group* g : dirty) {
      if (!g->queued.empty()) proposeQueued(g);
      if (!g->queued_reads.empty()) barrierQueued(g);
    }
    dirty.clear();
  }

  void proposeQueued(Group* g) {
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

  void onApplied(PendingEntry* p, int status) {
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

  void barrierQueued(Group* g) {
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

  void publish() {
    if (closing) return;
    if (log) {
      RaftLogStore::Stats ls = log->stats();
      std::lock_guard lock(stats_mu);
      stats.log_appends = ls.appends;
      stats.log_syncs = ls.syncs;
    }
    std::map<uint32_t, std::optional<Replica>> view;
    std::set<uint32_t> led;
    std::map<uint32_t, std::vector<uint64_t>> voters_now;
    for (auto& [id, g] : groups) {
      if (g->closing || !g->raft_ready) continue;
      raft_id leader = 0;
      const char* address = nullptr;
      raft_leader(&g->raft, &leader, &address);
      view[id] = leader != 0 && address != nullptr
                     ? std::optional<Replica>(Replica{leader, address})
                     : std::nullopt;
      bool is_leader = raft_state(&g->raft) == RAFT_LEADER;
      if (is_leader) led.insert(id);
      if (is_leader && !g->was_leader) {
        // Entries of earlier terms commit only with one of the new term (raft §5.4.2).
        g->queued_reads.push_back(nullptr);
        barrierQueued(g.get());
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
    std::lock_guard lock(view_mu);
    leaders = std::move(view);
    leading = std::move(led);
    voters = std::move(voters_now);
  }

  // One step toward the wanted replicas (group_config.h), on the leader, one change at a time.
  void reconfigure(Group* g) {
    if (g->changing || g->wanted.empty() || g->raft.configuration_uncommitted_index != 0) return;
    std::vector<ConfigMember> current;
    for (unsigned i = 0; i < g->raft.configuration.n; ++i) {
      const raft_server& s = g->raft.configuration.servers[i];
      current.push_back({s.id, s.role == RAFT_VOTER});
    }
    ConfigStep step = nextConfigStep(current, g->wanted, options.node_id);
    if (step.kind == ConfigStep::Kind::kNone) return;
    g->change.data = g;
    auto done = [](struct raft_change* req, int status) {
      auto* group = static_cast<Group*>(req->data);
      group->changing = false;
      if (status != 0) {
        fprintf(stderr, "level=warn node=%llu group=%u msg=\"configuration change failed: %s\"\n",
                static_cast<unsigned long long>(group->host->options.node_id), group->id,
                raft_strerror(status));
      }
    };
    int rv = 0;
    const char* what = "";
    switch (step.kind) {
      case ConfigStep::Kind::kAdd:
        what = "add";
        rv = raft_add(&g->raft, &g->change, step.node, step.address.c_str(), done);
        break;
      case ConfigStep::Kind::kPromote:
        what = "promote";  // libraft catches the node up before it votes
        rv = raft_assign(&g->raft, &g->change, step.node, RAFT_VOTER, done);
        break;
      case ConfigStep::Kind::kRemove:
        what = "remove";
        rv = raft_remove(&g->raft, &g->change, step.node, done);
        break;
      case ConfigStep::Kind::kNone:
        return;
    }
    if (rv == 0) g->changing = true;
    fprintf(stderr, "level=info node=%llu group=%u msg=\"re-replication: %s node %llu%s%s\"\n",
            static_cast<unsigned long long>(options.node_id), g->id, what,
            static_cast<unsigned long long>(step.node), rv == 0 ? "" : ": ",
            rv == 0 ? "" : raft_strerror(rv));
  }

  // ---- State machine (loop thread) ----

  static int fsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) noexcept {
    *result = nullptr;
    auto* g = static_cast<Group*>(fsm->data);
    Impl* h = g->host;
    // raft advances last_applied after this returns: the entry being applied is the next one.
    const uint64_t index = raft_last_applied(&g->raft) + 1;
    if (index <= g->applied) return 0;  // applied before a restart; the store has it
    std::optional<Entry> entry =
        decodeEntry(std::string_view(static_cast<const char*>(buf->base), buf->len));
    if (!entry) {
      // Only our encoder writes entries and raft checksums them; every replica skips alike.
      fprintf(stderr, "level=error node=%llu group=%u msg=\"skipped a malformed entry at %llu\"\n",
              static_cast<unsigned long long>(h->options.node_id), g->id,
              static_cast<unsigned long long>(index));
      return 0;
    }
    std::vector<ProposalResult> results;
    absl::Status s = applyEntry(h->store, g->id, index, *entry, results);
    if (!s.ok()) {
      // The replica cannot follow the log any more; raft stops applying on an error.
      fprintf(stderr, "level=error node=%llu group=%u msg=\"apply at %llu failed: %s\"\n",
              static_cast<unsigned long long>(h->options.node_id), g->id,
              static_cast<unsigned long long>(index), std::string(s.message()).c_str());
      return RAFT_IOERR;
    }
    g->applied = index;
    if (entry->proposer == h->options.node_id) {
      for (size_t i = 0; i < entry->proposals.size(); ++i) {
        uint64_t id = entry->proposals[i].id;
        if (h->awaited.contains(id)) h->results[id] = std::move(results[i]);
      }
    }
    return 0;
  }

  static int fsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
    auto* g = static_cast<Group*>(fsm->data);
    absl::StatusOr<std::string> dump = g->host->store.shardDump(g->id);
    if (!dump.ok()) return RAFT_IOERR;
    auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    if (out == nullptr) return RAFT_NOMEM;
    out->len = dump->size();
    out->base = raft_malloc(out->len == 0 ? 1 : out->len);
    if (out->base == nullptr) {
      raft_free(out);
      return RAFT_NOMEM;
    }
    std::memcpy(out->base, dump->data(), dump->size());
    *bufs = out;
    *n_bufs = 1;
    return 0;
  }

  static int fsmSnapshotFinalize(raft_fsm*, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
    if (*bufs != nullptr) {
      for (unsigned i = 0; i < *n_bufs; ++i) raft_free((*bufs)[i].base);
      raft_free(*bufs);
    }
    *bufs = nullptr;
    *n_bufs = 0;
    return 0;
  }

  static int fsmRestore(raft_fsm* fsm, raft_buffer* buf) noexcept {
    auto* g = static_cast<Group*>(fsm->data);
    Impl* h = g->host;
    absl::Status s =
        h->store.shardLoad(g->id, std::string_view(static_cast<const char*>(buf->base), buf->len));
    if (!s.ok())
      return s.code() == absl::StatusCode::kInvalidArgument ? RAFT_MALFORMED : RAFT_IOERR;
    absl::StatusOr<uint64_t> applied = appliedIndex(h->store, g->id);
    if (!applied.ok()) return RAFT_IOERR;
    g->applied = *applied;
    raft_free(buf->base);  // raft hands the buffer to us on success
    buf->base = nullptr;
    return 0;
  }

  // ---- Groups ----

  absl::Status open(uint32_t id, const std::vector<Replica>& replicas, bool bootstrap) {
    if (closing) return absl::UnavailableError("raft host: stopping");
    if (auto it = groups.find(id); it != groups.end()) {
      if (!it->second->closing) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat("group ", id, " is closing; open it again later"));
    }
    bool self = false;
    for (const Replica& r : replicas) self |= r.node == options.node_id;
    if (!self) {
      return absl::InvalidArgumentError(
          absl::StrCat("group ", id, ": replicas do not include node ", options.node_id));
    }
    std::filesystem::path dir = options.dir / absl::StrCat("g", id);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return absl::UnavailableError(
          absl::StrCat("group ", id, ": create ", dir.string(), ": ", ec.message()));
    if (absl::Status old = refuseSegmentFiles(dir); !old.ok()) return old;
    absl::StatusOr<uint64_t> applied = appliedIndex(store, id);
    if (!applied.ok()) return applied.status();

    auto g = std::make_unique<Group>();
    g->host = this;
    g->id = id;
    g->applied = *applied;
    g->transport = mux->transportFor(id);
    if (absl::Status s = log->attach(&g->io, id, dir, g->transport); !s.ok()) {
      mux->release(id);
      return s;
    }
    g->fsm.version = 2;
    g->fsm.data = g.get();
    g->fsm.apply = &Impl::fsmApply;
    g->fsm.snapshot = &Impl::fsmSnapshot;
    g->fsm.restore = &Impl::fsmRestore;
    g->fsm.snapshot_finalize = &Impl::fsmSnapshotFinalize;
    if (int rv = raft_init(&g->raft, &g->io, &g->fsm, options.node_id, bound_address.c_str());
        rv != 0) {
      absl::Status s = fromRaft(rv, absl::StrCat("group ", id, " init"));
      log->release(&g->io);
      // The raft_uv I/O does not close the transport when it never started.
      mux->release(id);
      return s;
    }
    g->raft_ready = true;
    g->raft.data = g.get();
    raft_set_election_timeout(&g->raft, static_cast<unsigned>(options.election_timeout.count()));
    raft_set_heartbeat_timeout(&g->raft, static_cast<unsigned>(options.heartbeat_timeout.count()));
    raft_set_snapshot_threshold(&g->raft, options.snapshot_threshold);
    raft_set_snapshot_trailing(&g->raft, options.snapshot_trailing);
    raft_set_pre_vote(&g->raft, true);

    raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (const Replica& r : replicas) {
      if (rv == 0) rv = raft_configuration_add(&conf, r.node, r.address.c_str(), RAFT_VOTER);
    }
    // A replica the map added later joins empty: the leader adds it and sends what it lacks.
    if (rv == 0 && bootstrap) rv = raft_bootstrap(&g->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
      absl::Status s = fromRaft(rv, absl::StrCat("group ", id, " bootstrap"));
      closeGroup(g.get());
      groups[id] = std::move(g);
      return s;
    }
    if (rv = raft_start(&g->raft); rv != 0) {
      absl::Status s =
          fromRaft(rv, absl::StrCat("group ", id, " start (", raft_errmsg(&g->raft), ")"));
      closeGroup(g.get());
      groups[id] = std::move(g);
      return s;
    }
    groups[id] = std::move(g);
    return absl::OkStatus();
  }

  // Before the shared log, each group's folder held libraft's segment files. A node started on
  // such a folder would bootstrap an empty log beside them and forget what it had acknowledged.
  static absl::Status refuseSegmentFiles(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = f.path().filename().string();
      if (name.rfind("open-", 0) == 0 || name.rfind("snapshot-", 0) == 0 ||
          (name.size() == 33 && name[16] == '-')) {
        return absl::FailedPreconditionError(absl::StrCat(
            "raft data in ", dir.string(), " is in libraft's segment format (", name,
            "), which this version no longer reads: its logs live in one store under the "
            "raft folder's log/. Move the node's data folder aside and let re-replication "
            "copy its groups back"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status openLog() {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> opened = RaftLogStore::open(&loop, options.dir);
    if (!opened.ok()) return opened.status();
    log = std::move(*opened);
    return absl::OkStatus();
  }

  void closeGroup(Group* g) {
    if (g->closing) return;
    g->closing = true;
    ++closing_groups;
    raft_close(&g->raft, [](struct raft* r) {
      auto* group = static_cast<Group*>(r->data);
      Impl* h = group->host;
      h->log->release(&group->io);
      h->mux->release(group->id);
      // raft has failed every pending apply and barrier by now. libuv may still hold requests
      // of the closed I/O (segment finalisation runs on its thread pool), so the memory is freed
      // only after the loop has run dry.
      auto it = h->groups.find(group->id);
      if (group->drop) h->dropData(group->id);
      h->closed_groups.push_back(std::move(it->second));
      h->groups.erase(it);
      --h->closing_groups;
      h->maybeClosed();
    });
  }

  // The group's copy here is no longer wanted: its raft folder and its range of the store go.
  // Closed first, so this node no longer votes in it: as safe as this node being down.
  void dropData(uint32_t id) {
    std::error_code ec;
    std::filesystem::remove_all(options.dir / absl::StrCat("g", id), ec);
    absl::Status st = log->drop(id);
    if (absl::Status kv = store.shardDrop(id); st.ok()) st = kv;
    if (ec || !st.ok()) {
      fprintf(stderr, "level=warn node=%llu group=%u msg=\"dropping the moved group: %s %s\"\n",
              static_cast<unsigned long long>(options.node_id), id, ec.message().c_str(),
              std::string(st.message()).c_str());
    }
  }

  void beginClose() {
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

  void maybeClosed() {
    if (!closing || closing_groups > 0 || !mux) return;
    if (log) log->close([] {});
    mux->close([this] {
      uv_close(reinterpret_cast<uv_handle_t*>(&watch), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    });
  }

  void run(std::promise<absl::Status>& started) {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    loop_thread = std::this_thread::get_id();
    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, [](uv_async_t* a) { static_cast<Impl*>(a->data)->drain(); });
    wake.data = this;
    uv_timer_init(&loop, &watch);
    watch.data = this;
    mux = std::make_unique<RaftMux>(&loop, options.node_id, options.secret);
    absl::Status s = openLog();
    if (s.ok()) s = mux->listen(options.listen_address);
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
};

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

void RaftHost::propose(uint32_t group, std::vector<KvOp> ops, ProposeDone done) {
  auto shared = std::make_shared<ProposeDone>(std::move(done));
  bool posted = impl_->post([this, group, ops = std::move(ops), shared](bool running) mutable {
    Impl& h = *impl_;
    if (!running) return (*shared)(absl::UnavailableError("raft host: stopped"));
    Group* g = h.find(group);
    if (g == nullptr) {
      return (*shared)(absl::NotFoundError(
          absl::StrCat("group ", group, " is not hosted on node ", h.options.node_id)));
    }
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
    if (g == nullptr) {
      return (*shared)(absl::NotFoundError(
          absl::StrCat("group ", group, " is not hosted on node ", h.options.node_id)));
    }
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
