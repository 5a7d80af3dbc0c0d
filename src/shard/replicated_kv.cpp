#include "shard/replicated_kv.h"

#include <algorithm>
#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"
#include "shard/wire.h"

namespace waverless::shard {

namespace {

using wire::putBytes;
using wire::putU64;
using wire::Reader;

constexpr auto kFirstBackoff = std::chrono::milliseconds(20);
constexpr auto kMaxBackoff = std::chrono::milliseconds(250);

void putStatus(std::string& out, const absl::Status& s) {
  putU64(out, static_cast<uint64_t>(s.code()));
  putBytes(out, std::string_view(s.message().data(), s.message().size()));
}
absl::Status readStatus(Reader& r) {
  uint64_t code = r.u64();
  std::string msg = r.bytes();
  if (code > 16) r.ok = false;
  return absl::Status(static_cast<absl::StatusCode>(code), msg);
}
void putOptional(std::string& out, const std::optional<std::string>& v) {
  out.push_back(v ? 1 : 0);
  if (v) putBytes(out, *v);
}
std::optional<std::string> readOptional(Reader& r) {
  if (r.u8() == 0) return std::nullopt;
  return r.bytes();
}

// Proposing these twice leaves what proposing them once does (a trigger record is keyed by its
// invocation id: a second copy replaces the first).
bool idempotent(const std::vector<KvOp>& ops) {
  return std::all_of(ops.begin(), ops.end(), [](const KvOp& op) {
    return op.kind == OpKind::kSet || op.kind == OpKind::kDelete || op.kind == OpKind::kTrigger ||
           op.kind == OpKind::kTriggerDone;
  });
}

// The leader a FailedPrecondition from RaftHost names ("... node N at ADDR is"), if any.
uint32_t leaderNamed(const absl::Status& s) {
  std::string_view m(s.message().data(), s.message().size());
  size_t at = m.rfind("; node ");
  if (at == std::string_view::npos) return 0;
  m.remove_prefix(at + 7);
  uint32_t id = 0;
  for (char c : m) {
    if (c < '0' || c > '9') break;
    id = id * 10 + static_cast<uint32_t>(c - '0');
  }
  return id;
}

}  // namespace

// ---- Wire format ----

std::string encodeRequest(const ShardRequest& r) {
  std::string out(1, static_cast<char>(r.kind));
  putU64(out, r.group);
  putBytes(out, r.app);
  putBytes(out, r.key);
  putU64(out, r.limit);
  putBytes(out, r.ops.empty() ? std::string() : encodeEntry(Entry{0, {Proposal{0, r.ops}}}));
  putU64(out, r.origin);
  return out;
}

std::optional<ShardRequest> decodeRequest(std::string_view bytes) {
  Reader r{bytes};
  ShardRequest q;
  uint8_t kind = r.u8();
  if (kind < 1 || kind > 3) return std::nullopt;
  q.kind = static_cast<ShardRequest::Kind>(kind);
  uint64_t group = r.u64();
  q.app = r.bytes();
  q.key = r.bytes();
  uint64_t limit = r.u64();
  std::string ops = r.bytes();
  uint64_t origin = r.u64();
  if (!r.ok || !r.in.empty() || group > UINT32_MAX || limit > UINT32_MAX || origin > UINT32_MAX)
    return std::nullopt;
  q.origin = static_cast<uint32_t>(origin);
  q.group = static_cast<uint32_t>(group);
  q.limit = static_cast<uint32_t>(limit);
  if (!ops.empty()) {
    std::optional<Entry> e = decodeEntry(ops);
    if (!e || e->proposals.size() != 1) return std::nullopt;
    q.ops = std::move(e->proposals[0].ops);
  }
  return q;
}

std::string encodeReply(const ShardReply& r) {
  std::string out;
  putStatus(out, r.status);
  putU64(out, r.leader_hint);
  putStatus(out, r.result.status);
  putOptional(out, r.result.value);
  putOptional(out, r.value);
  putU64(out, r.pairs.size());
  for (const auto& [k, v] : r.pairs) {
    putBytes(out, k);
    putBytes(out, v);
  }
  return out;
}

std::optional<ShardReply> decodeReply(std::string_view bytes) {
  Reader r{bytes};
  ShardReply p;
  p.status = readStatus(r);
  uint64_t hint = r.u64();
  p.result.status = readStatus(r);
  p.result.value = readOptional(r);
  p.value = readOptional(r);
  uint64_t n = r.u64();
  if (!r.ok || n > r.in.size() / 16 || hint > UINT32_MAX) return std::nullopt;
  p.leader_hint = static_cast<uint32_t>(hint);
  for (uint64_t i = 0; i < n && r.ok; ++i) {
    std::string k = r.bytes();
    std::string v = r.bytes();
    p.pairs.emplace_back(std::move(k), std::move(v));
  }
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return p;
}

// ---- Routing ----

struct ReplicatedKv::Call {
  ShardRequest request;
  Clock::time_point deadline;
  absl::AnyInvocable<void(ShardReply)> done;
  int attempt = 0;
  uint32_t last_target = 0;
  std::chrono::milliseconds backoff = kFirstBackoff;
  absl::Status last_error = absl::UnavailableError("no replica answered");
};

ReplicatedKv::ReplicatedKv(uint32_t self, RaftHost* host, kv::KvStore& store, ShardLink& link,
                           common::TimerQueue& timers, std::shared_ptr<const ShardMap> map)
    : self_(self), host_(host), store_(store), link_(link), timers_(timers) {
  setMap(std::move(map));
}

void ReplicatedKv::setMap(std::shared_ptr<const ShardMap> map) {
  std::lock_guard lock(mu_);
  leader_hint_.resize(map->groups(), 0);
  map_ = std::move(map);
}

std::shared_ptr<const ShardMap> ReplicatedKv::map() const {
  std::lock_guard lock(mu_);
  return map_;
}

uint32_t ReplicatedKv::leaderHint(uint32_t group) const {
  std::lock_guard lock(mu_);
  return group < leader_hint_.size() ? leader_hint_[group] : 0;
}

uint32_t ReplicatedKv::target(const Call& call) {
  std::lock_guard lock(mu_);
  const std::vector<uint32_t>& replicas = map_->replicasOf(call.request.group);
  uint32_t hint = leader_hint_[call.request.group];
  if (hint != 0 && hint != call.last_target &&
      std::find(replicas.begin(), replicas.end(), hint) != replicas.end()) {
    return hint;
  }
  // No (new) hint: try the replicas in turn, starting with straw2's first.
  return replicas[static_cast<size_t>(call.attempt) % replicas.size()];
}

void ReplicatedKv::route(std::shared_ptr<Call> call) {
  if (Clock::now() >= call->deadline) {
    ShardReply timeout;
    // Unavailable, not DeadlineExceeded: the caller's own deadline has not passed; the group had
    // no reachable leader for that long, which a later retry may find (HTTP 503).
    timeout.status = absl::UnavailableError(
        absl::StrCat("group ", call->request.group,
                     ": no leader answered in time (last: ", call->last_error.message(), ")"));
    return call->done(std::move(timeout));
  }
  uint32_t node = target(*call);
  call->last_target = node;
  ++call->attempt;
  auto onReply = [this, call](ShardReply reply) mutable {
    const absl::StatusCode code = reply.status.code();
    if (reply.status.ok()) {
      std::lock_guard lock(mu_);
      leader_hint_[call->request.group] = call->last_target;
    } else if (code == absl::StatusCode::kFailedPrecondition) {
      std::lock_guard lock(mu_);
      leader_hint_[call->request.group] = reply.leader_hint;
    }
    const bool retry =
        code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kNotFound ||
        (code == absl::StatusCode::kUnavailable &&
         (call->request.kind != ShardRequest::Kind::kWrite || idempotent(call->request.ops)));
    if (!retry) return call->done(std::move(reply));
    call->last_error = reply.status;
    // A fresh leader hint is worth trying at once; anything else waits for an election.
    if (code == absl::StatusCode::kFailedPrecondition && reply.leader_hint != 0 &&
        reply.leader_hint != call->last_target) {
      return route(std::move(call));
    }
    retryLater(std::move(call));
  };
  if (node == self_ && host_ != nullptr) {
    serve(call->request, std::move(onReply));
  } else {
    link_.call(node, call->request, std::move(onReply));
  }
}

void ReplicatedKv::retryLater(std::shared_ptr<Call> call) {
  auto at = std::min(Clock::now() + call->backoff, call->deadline);
  call->backoff = std::min(call->backoff * 2,
                           std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  timers_.schedule(at, [this, call]() mutable { route(std::move(call)); });
}

void ReplicatedKv::serve(ShardRequest request, absl::AnyInvocable<void(ShardReply)> done) {
  if (host_ == nullptr) {
    ShardReply r;
    r.status = absl::NotFoundError(absl::StrCat("node ", self_, " hosts no groups"));
    return done(std::move(r));
  }
  const uint32_t group = request.group;
  auto refuse = [this, group](absl::Status s) {
    ShardReply r;
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      std::optional<Replica> leader = host_->leaderOf(group);
      r.leader_hint = leader ? static_cast<uint32_t>(leader->node) : leaderNamed(s);
    }
    r.status = std::move(s);
    return r;
  };
  switch (request.kind) {
    case ShardRequest::Kind::kWrite:
      host_->propose(
          group, std::move(request.ops),
          [done = std::move(done), refuse](absl::StatusOr<ProposalResult> r) mutable {
            if (!r.ok()) return done(refuse(r.status()));
            ShardReply reply;
            reply.result = std::move(*r);
            done(std::move(reply));
          },
          request.origin);
      return;
    case ShardRequest::Kind::kRead:
    case ShardRequest::Kind::kScan:
      host_->readBarrier(group, [this, request = std::move(request), done = std::move(done),
                                 refuse](absl::Status s) mutable {
        if (!s.ok()) return done(refuse(std::move(s)));
        ShardReply reply;
        if (request.kind == ShardRequest::Kind::kRead) {
          absl::StatusOr<std::optional<std::string>> v =
              store_.shardGet(request.group, request.app, request.key);
          if (v.ok()) {
            reply.value = std::move(*v);
          } else {
            reply.status = v.status();
          }
        } else {
          absl::StatusOr<KvPairs> pairs =
              store_.shardScan(request.group, request.app, request.key, request.limit);
          if (pairs.ok()) {
            reply.pairs = std::move(*pairs);
          } else {
            reply.status = pairs.status();
          }
        }
        done(std::move(reply));
      });
      return;
  }
}

// ---- Operations ----

void ReplicatedKv::get(std::string app, std::string key, Clock::time_point deadline,
                       absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)> done) {
  auto call = std::make_shared<Call>();
  call->request.kind = ShardRequest::Kind::kRead;
  call->request.origin = self_;
  call->request.group = map()->groupOf(app, key);
  call->request.app = std::move(app);
  call->request.key = std::move(key);
  call->deadline = deadline;
  call->done = [done = std::move(done)](ShardReply r) mutable {
    if (!r.status.ok()) return done(std::move(r.status));
    done(std::move(r.value));
  };
  route(std::move(call));
}

void ReplicatedKv::write(std::string app, std::vector<KvOp> ops, Clock::time_point deadline,
                         absl::AnyInvocable<void(absl::StatusOr<ProposalResult>)> done) {
  if (ops.empty()) return done(ProposalResult{});
  std::shared_ptr<const ShardMap> m = map();
  const uint32_t group = m->groupOf(app, ops[0].key);
  for (KvOp& op : ops) {
    if (m->groupOf(app, op.key) != group) {
      return done(absl::InvalidArgumentError(absl::StrCat(
          "keys \"", ops[0].key, "\" and \"", op.key, "\" are in different placement groups")));
    }
    op.app = app;
  }
  auto call = std::make_shared<Call>();
  call->request.kind = ShardRequest::Kind::kWrite;
  call->request.origin = self_;
  call->request.group = group;
  call->request.app = std::move(app);
  call->request.ops = std::move(ops);
  call->deadline = deadline;
  call->done = [done = std::move(done)](ShardReply r) mutable {
    if (!r.status.ok()) return done(std::move(r.status));
    done(std::move(r.result));
  };
  route(std::move(call));
}

void ReplicatedKv::setBatch(std::string app, KvPairs pairs, std::vector<TriggerRecord> triggers,
                            Clock::time_point deadline,
                            absl::AnyInvocable<void(absl::Status)> done) {
  std::shared_ptr<const ShardMap> m = map();
  std::map<uint32_t, std::vector<KvOp>> by_group;
  for (auto& [k, v] : pairs) {
    uint32_t g = m->groupOf(app, k);
    by_group[g].push_back(KvOp{OpKind::kSet, app, std::move(k), std::move(v)});
  }
  for (const TriggerRecord& t : triggers) {
    by_group[m->groupOf(app, t.key)].push_back(triggerOp(t));
  }
  if (by_group.empty()) return done(absl::OkStatus());
  struct State {
    std::mutex mu;
    size_t pending;
    absl::Status first_error;
    absl::AnyInvocable<void(absl::Status)> done;
  };
  auto state = std::make_shared<State>();
  state->pending = by_group.size();
  state->done = std::move(done);
  for (auto& [g, ops] : by_group) {
    write(app, std::move(ops), deadline, [state](absl::StatusOr<ProposalResult> r) {
      absl::Status s = r.ok() ? r->status : r.status();
      std::unique_lock lock(state->mu);
      if (!s.ok() && state->first_error.ok()) state->first_error = s;
      if (--state->pending > 0) return;
      lock.unlock();
      state->done(state->first_error);
    });
  }
}

void ReplicatedKv::scan(std::string app, std::string prefix, size_t limit,
                        Clock::time_point deadline,
                        absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done) {
  const uint32_t groups = map()->groups();
  struct State {
    std::mutex mu;
    size_t pending;
    absl::Status first_error;
    KvPairs all;
    size_t limit;
    absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done;
  };
  auto state = std::make_shared<State>();
  state->pending = groups;
  state->limit = limit;
  state->done = std::move(done);
  for (uint32_t g = 0; g < groups; ++g) {
    auto call = std::make_shared<Call>();
    call->request.kind = ShardRequest::Kind::kScan;
    call->request.origin = self_;
    call->request.group = g;
    call->request.app = app;
    call->request.key = prefix;
    call->request.limit = static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX));
    call->deadline = deadline;
    call->done = [state](ShardReply r) {
      std::unique_lock lock(state->mu);
      if (!r.status.ok() && state->first_error.ok()) {
        state->first_error = absl::UnavailableError(
            absl::StrCat("scan: a placement group could not answer: ", r.status.message()));
      }
      for (auto& p : r.pairs) state->all.push_back(std::move(p));
      if (--state->pending > 0) return;
      lock.unlock();
      if (!state->first_error.ok()) return state->done(state->first_error);
      std::sort(state->all.begin(), state->all.end());
      if (state->all.size() > state->limit) state->all.resize(state->limit);
      state->done(std::move(state->all));
    };
    route(std::move(call));
  }
}

}  // namespace waverless::shard
