// A placement group's life on a RaftHost's loop thread: open (storage, raft, bootstrap), the
// state machine applying committed entries to the KvStore, reconfiguration toward the shard
// map's replicas, close and drop.
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "shard/group_config.h"
#include "shard/raft_host_internal.h"

namespace waverless::shard {

void RaftHost::Impl::reconfigure(Group* g) {
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

namespace {
// Follow the writer: windows of 2 s; a voter at which two thirds of at least 40 writes (20/s)
// entered is handed the group, and a leader at which half of them entered keeps it, however few
// they were: a group whose traffic ebbs stays where it will flow again rather than being moved by
// count and back. The two shares cannot both hold for two nodes, so the rules never pull both ways.
constexpr uint64_t kOriginWindowMs = 2000;
constexpr uint64_t kFollowMinWrites = 40;
constexpr uint64_t kKeepMinWrites = 1;
constexpr double kFollowShare = 2.0 / 3;
constexpr double kKeepShare = 0.5;
}  // namespace

// Why: raft keeps a leader until it fails, so every restart of a worker leaves the groups it led
// with the others, and after a few the node that stayed up leads nearly all of them: it does all
// the leader work (and takes every forwarded write) while the others idle. Each node decides
// alone from its own view; the rule (over the groups two nodes share, lead at least two more
// than the one you hand to) narrows that pair's spread, and never holds both ways at once.
// Where a group's writes come from overrides the counts (options.follow_writes): a write that
// enters at its group's leader is about half the work of one forwarded there (bench/RESULTS.md).
void RaftHost::Impl::balanceLeaders(const std::map<uint32_t, std::optional<Replica>>& view) {
  const uint64_t now = uv_now(&loop);
  if (next_transfer_ms == 0 || now < next_transfer_ms) return;
  // Per peer, over the groups both this node and the peer vote in: how many this node leads and
  // how many the peer leads. Both sides count the same groups, so the rule below can never hold
  // in both directions at once (with more workers than replicas, a node sees only its own groups).
  struct Pair {
    size_t mine = 0, theirs = 0;
  };
  std::map<uint64_t, Pair> pairs;
  for (const auto& [id, g] : groups) {
    g->origins.roll(now, kOriginWindowMs);
    auto it = view.find(id);
    if (g->closing || !g->raft_ready || it == view.end() || !it->second) continue;
    const uint64_t leader = it->second->node;
    for (unsigned i = 0; i < g->raft.configuration.n; ++i) {
      const raft_server& s = g->raft.configuration.servers[i];
      if (s.id == options.node_id || s.role != RAFT_VOTER) continue;
      Pair& p = pairs[s.id];
      p.mine += leader == options.node_id ? 1 : 0;
      p.theirs += leader == s.id ? 1 : 0;
    }
  }
  Group* best_group = nullptr;
  uint64_t best_target = 0;
  size_t best_gap = 1;  // hand over only at a gap of two or more
  bool follow = false;
  for (const auto& [id, g] : groups) {
    if (g->closing || !g->raft_ready || g->changing || g->transferring ||
        raft_state(&g->raft) != RAFT_LEADER || g->raft.transfer != nullptr ||
        g->raft.configuration_uncommitted_index != 0) {
      continue;
    }
    std::optional<uint64_t> writer;
    if (options.follow_writes) {
      // Not before one window since it came here: it may have come for its writes.
      if (!g->origins.judged()) continue;
      if (g->origins.dominant(kKeepMinWrites, kKeepShare) == options.node_id) continue;
      writer = g->origins.dominant(kFollowMinWrites, kFollowShare);
    }
    for (unsigned i = 0; i < g->raft.configuration.n; ++i) {
      const raft_server& s = g->raft.configuration.servers[i];
      if (s.id == options.node_id || s.role != RAFT_VOTER) continue;
      // Only a replica that answers and is caught up: handing leadership to one that is down
      // would stall the group's writes until the transfer times out.
      const raft_progress& p = g->raft.leader_state.progress[i];
      if (!p.recent_recv || p.match_index + 16 < raft_last_index(&g->raft)) continue;
      if (writer == s.id) {
        best_group = g.get();
        best_target = s.id;
        follow = true;
        break;
      }
      const Pair& pair = pairs[s.id];
      if (pair.mine > pair.theirs + best_gap) {
        best_group = g.get();
        best_target = s.id;
        best_gap = pair.mine - pair.theirs;
      }
    }
    if (follow) break;
  }
  if (best_group == nullptr) {
    next_transfer_ms = now + 100;  // balanced (or no one to hand to): look again soon, not always
    return;
  }
  // Following the writes moves groups faster than evening out counts: each move saves work on
  // every write of the group from then on.
  next_transfer_ms = now + (follow ? 100 : 1000);
  best_group->transfer.data = best_group;
  int rv = raft_transfer(
      &best_group->raft, &best_group->transfer, best_target,
      [](struct raft_transfer* req) { static_cast<Group*>(req->data)->transferring = false; });
  if (rv != 0) return;
  best_group->transferring = true;
  std::lock_guard lock(stats_mu);
  ++stats.leader_transfers;
  if (follow) ++stats.follow_transfers;
}

int RaftHost::Impl::fsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) noexcept {
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

int RaftHost::Impl::fsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
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

int RaftHost::Impl::fsmSnapshotFinalize(raft_fsm*, raft_buffer* bufs[], unsigned* n_bufs) noexcept {
  if (*bufs != nullptr) {
    for (unsigned i = 0; i < *n_bufs; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = nullptr;
  *n_bufs = 0;
  return 0;
}

int RaftHost::Impl::fsmRestore(raft_fsm* fsm, raft_buffer* buf) noexcept {
  auto* g = static_cast<Group*>(fsm->data);
  Impl* h = g->host;
  absl::Status s =
      h->store.shardLoad(g->id, std::string_view(static_cast<const char*>(buf->base), buf->len));
  if (!s.ok()) return s.code() == absl::StatusCode::kInvalidArgument ? RAFT_MALFORMED : RAFT_IOERR;
  absl::StatusOr<uint64_t> applied = appliedIndex(h->store, g->id);
  if (!applied.ok()) return RAFT_IOERR;
  g->applied = *applied;
  raft_free(buf->base);  // raft hands the buffer to us on success
  buf->base = nullptr;
  return 0;
}

absl::Status RaftHost::Impl::open(uint32_t id, const std::vector<Replica>& replicas,
                                  bool bootstrap) {
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
  if (absl::Status s = log->attach(&g->io, id, dir, g->transport, wire.get()); !s.ok()) {
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
  view_stale = true;
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

absl::Status RaftHost::Impl::refuseSegmentFiles(const std::filesystem::path& dir) {
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

absl::Status RaftHost::Impl::openLog() {
  absl::StatusOr<std::unique_ptr<RaftLogStore>> opened = RaftLogStore::open(&loop, options.dir);
  if (!opened.ok()) return opened.status();
  log = std::move(*opened);
  return absl::OkStatus();
}

void RaftHost::Impl::closeGroup(Group* g) {
  if (g->closing) return;
  g->closing = true;
  view_stale = true;
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

void RaftHost::Impl::dropData(uint32_t id) {
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

}  // namespace waverless::shard
