#include "cluster/sharded_kv.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cluster/peers.h"
#include "kv/kv_store.h"

namespace waverless::cluster {

namespace pb = net::pb;

namespace {

// How long one KV operation may take across elections and retries: longer than a failover
// (election timeout + a few heartbeats), shorter than any function's deadline.
constexpr auto kOperationTimeout = std::chrono::seconds(5);
constexpr auto kCallTimeout = std::chrono::seconds(5);

}  // namespace

ShardedKv::ShardedKv(uint32_t self, ShardedKvDeps deps, std::shared_ptr<const shard::ShardMap> map)
    : self_(self), deps_(deps) {
  replicated_ = std::make_unique<shard::ReplicatedKv>(self, deps_.host, deps_.store, *this, timers_,
                                                      std::move(map));
}

ShardedKv::~ShardedKv() { stop(); }

absl::Status ShardedKv::start() {
  timers_.start();
  return absl::OkStatus();
}

void ShardedKv::stop() { timers_.stop(); }

shard::ReplicatedKv::Clock::time_point ShardedKv::deadline() const {
  return shard::ReplicatedKv::Clock::now() + kOperationTimeout;
}

bool ShardedKv::local(std::string_view app, std::string_view key) const {
  return deps_.durability(app, key) == app::KeyDurability::kLocal;
}

bool ShardedKv::storedHere(std::string_view app, std::string_view key) { return local(app, key); }

uint32_t ShardedKv::dataNode(std::string_view app, std::string_view key) {
  if (local(app, key)) return self_;
  std::shared_ptr<const shard::ShardMap> map = replicated_->map();
  const uint32_t group = map->groupOf(app, key);
  if (deps_.host != nullptr) {
    if (std::optional<shard::Replica> leader = deps_.host->leaderOf(group)) {
      return static_cast<uint32_t>(leader->node);
    }
  }
  // Not a replica of the group: the leader its last operation from here found.
  if (uint32_t hint = replicated_->leaderHint(group); hint != 0) return hint;
  return map->replicasOf(group).front();
}

void ShardedKv::get(std::string app, std::string key, ValueDone done) {
  replicated_->get(std::move(app), std::move(key), deadline(), std::move(done));
}

shard::TriggerRecord ShardedKv::recordOf(std::string_view app,
                                         const worker::TriggerRecord& t) const {
  return shard::TriggerRecord{t.id,  std::string(app), t.function,   t.key,
                              self_, t.request_id,     t.timeout_ms, t.depth};
}

uint32_t ShardedKv::groupOf(std::string_view app, std::string_view key) const {
  return replicated_->map()->groupOf(app, key);
}

void ShardedKv::retireTrigger(const shard::TriggerRecord& record, StatusDone done) {
  replicated_->write(record.app, {shard::triggerDoneOp(record)}, deadline(),
                     [done = std::move(done)](absl::StatusOr<shard::ProposalResult> r) mutable {
                       done(r.ok() ? r->status : r.status());
                     });
}

void ShardedKv::set(std::string app, std::string key, std::string value,
                    worker::TriggerRecords triggers, StatusDone done) {
  std::vector<shard::KvOp> ops{{shard::OpKind::kSet, "", std::move(key), std::move(value)}};
  for (const auto& t : triggers) ops.push_back(shard::triggerOp(recordOf(app, t)));
  replicated_->write(std::move(app), std::move(ops), deadline(),
                     [done = std::move(done)](absl::StatusOr<shard::ProposalResult> r) mutable {
                       done(r.ok() ? r->status : r.status());
                     });
}

void ShardedKv::del(std::string app, std::string key, StatusDone done) {
  std::vector<shard::KvOp> ops{{shard::OpKind::kDelete, "", std::move(key)}};
  replicated_->write(std::move(app), std::move(ops), deadline(),
                     [done = std::move(done)](absl::StatusOr<shard::ProposalResult> r) mutable {
                       done(r.ok() ? r->status : r.status());
                     });
}

void ShardedKv::cas(std::string app, std::string key, std::optional<std::string> expected,
                    std::string value, worker::TriggerRecords triggers,
                    absl::AnyInvocable<void(absl::StatusOr<bool>)> done) {
  shard::KvOp op{shard::OpKind::kCas, "", std::move(key), std::move(value)};
  op.expected = std::move(expected);
  std::vector<shard::KvOp> ops{std::move(op)};
  for (const auto& t : triggers) ops.push_back(shard::triggerOp(recordOf(app, t)));
  replicated_->write(std::move(app), std::move(ops), deadline(),
                     [done = std::move(done)](absl::StatusOr<shard::ProposalResult> r) mutable {
                       if (!r.ok()) return done(r.status());
                       // The state machine refuses a mismatch with FailedPrecondition.
                       if (r->status.code() == absl::StatusCode::kFailedPrecondition) {
                         return done(false);
                       }
                       if (!r->status.ok()) return done(r->status);
                       done(true);
                     });
}

void ShardedKv::incr(std::string app, std::string key, int64_t delta,
                     worker::TriggerRecords triggers,
                     absl::AnyInvocable<void(absl::StatusOr<int64_t>)> done) {
  shard::KvOp op{shard::OpKind::kIncr, "", std::move(key)};
  op.delta = delta;
  std::vector<shard::KvOp> ops{std::move(op)};
  for (const auto& t : triggers) ops.push_back(shard::triggerOp(recordOf(app, t)));
  replicated_->write(std::move(app), std::move(ops), deadline(),
                     [done = std::move(done)](absl::StatusOr<shard::ProposalResult> r) mutable {
                       if (!r.ok()) return done(r.status());
                       if (!r->status.ok()) return done(r->status);
                       int64_t sum = 0;
                       if (!r->value || !absl::SimpleAtoi(*r->value, &sum)) {
                         return done(absl::InternalError("incr: the group answered no number"));
                       }
                       done(sum);
                     });
}

void ShardedKv::setBatch(std::string app, KvPairs pairs, worker::TriggerRecords triggers,
                         StatusDone done) {
  // Local pairs first, in one atomic write here; then the replicated ones, atomic per group.
  KvPairs here, replicated;
  for (auto& p : pairs) (local(app, p.first) ? here : replicated).push_back(std::move(p));
  if (!here.empty()) {
    if (absl::Status s = deps_.store.setBatch(app, here); !s.ok()) return done(s);
  }
  if (replicated.empty()) return done(absl::OkStatus());
  std::vector<shard::TriggerRecord> records;
  records.reserve(triggers.size());
  for (const auto& t : triggers) records.push_back(recordOf(app, t));
  replicated_->setBatch(std::move(app), std::move(replicated), std::move(records), deadline(),
                        std::move(done));
}

void ShardedKv::scan(std::string app, std::string prefix, size_t limit, PairsDone done) {
  // The app's local keys on this node and its replicated keys in every group, merged.
  absl::StatusOr<KvPairs> here = deps_.store.scan(app, prefix, limit);
  if (!here.ok()) return done(here.status());
  replicated_->scan(
      std::move(app), std::move(prefix), limit, deadline(),
      [here = std::move(*here), limit, done = std::move(done)](absl::StatusOr<KvPairs> r) mutable {
        if (!r.ok()) return done(r.status());
        KvPairs all = std::move(*r);
        all.insert(all.end(), std::make_move_iterator(here.begin()),
                   std::make_move_iterator(here.end()));
        std::sort(all.begin(), all.end());
        if (all.size() > limit) all.resize(limit);
        done(std::move(all));
      });
}

void ShardedKv::call(uint32_t node, shard::ShardRequest request,
                     absl::AnyInvocable<void(shard::ShardReply)> done) {
  net::PeerClient* peer = deps_.peers.get(node);
  if (peer == nullptr) {
    shard::ShardReply r;
    r.status = absl::UnavailableError(absl::StrCat("node ", node, " is not a peer"));
    return done(std::move(r));
  }
  pb::Envelope e;
  e.set_shard_request(shard::encodeRequest(request));
  peer->call(
      std::move(e), kCallTimeout,
      [node, done = std::move(done)](absl::StatusOr<pb::Envelope> r) mutable {
        shard::ShardReply reply;
        if (!r.ok()) {
          reply.status =
              absl::UnavailableError(absl::StrCat("node ", node, ": ", r.status().message()));
          return done(std::move(reply));
        }
        std::optional<shard::ShardReply> decoded = shard::decodeReply(r->shard_reply());
        if (!decoded) {
          reply.status =
              absl::InternalError(absl::StrCat("node ", node, " sent a malformed shard reply"));
          return done(std::move(reply));
        }
        done(std::move(*decoded));
      });
}

void ShardedKv::serve(const pb::Envelope& request, net::Reply reply) {
  const uint64_t id = request.id();
  auto answer = [id, reply = std::move(reply)](const shard::ShardReply& r) mutable {
    pb::Envelope out;
    out.set_id(id);
    out.set_shard_reply(shard::encodeReply(r));
    reply(std::move(out));
  };
  std::optional<shard::ShardRequest> decoded = shard::decodeRequest(request.shard_request());
  if (!decoded) {
    shard::ShardReply r;
    r.status = absl::InvalidArgumentError("malformed shard request");
    return answer(r);
  }
  replicated_->serve(std::move(*decoded),
                     [answer = std::move(answer)](shard::ShardReply r) mutable { answer(r); });
}

}  // namespace waverless::cluster
