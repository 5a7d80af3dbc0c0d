#include "shard/shard_command.h"

#include <charconv>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"
#include "shard/wire.h"

namespace waverless::shard {

namespace {

constexpr uint8_t kFormat = 1;
// Internal records use the empty app name, which no app can have.
constexpr std::string_view kAppliedKey = "applied";
// Pending trigger records: kTriggerPrefix + the invocation id, under the internal app name.
constexpr std::string_view kTriggerPrefix = "trigger/";
constexpr uint8_t kTriggerFormat = 1;
// An id grows by ".<n>" per level of a trigger tree: 2 KiB holds limits.trigger_depth's default
// of 500 levels.
constexpr size_t kMaxTriggerId = 2048;

using wire::putBytes;
using wire::putU64;
using wire::Reader;

// The state a proposal sees: the store, under the writes of earlier proposals of the same entry.
class Overlay {
 public:
  Overlay(kv::KvStore& store, uint32_t group) : store_(store), group_(group) {}

  absl::StatusOr<std::optional<std::string>> get(const std::string& app, const std::string& key) {
    for (auto* layer : {&staged_, &committed_}) {
      auto it = layer->find({app, key});
      if (it != layer->end()) return it->second;
    }
    return store_.shardGet(group_, app, key);
  }
  void stage(const std::string& app, const std::string& key, std::optional<std::string> value) {
    staged_.insert_or_assign({app, key}, std::move(value));
  }
  void commitStaged() {
    for (auto& [k, v] : staged_) committed_.insert_or_assign(k, std::move(v));
    staged_.clear();
  }
  void dropStaged() { staged_.clear(); }
  absl::Status flush(uint64_t index) {
    std::vector<kv::ShardWrite> writes;
    writes.reserve(committed_.size() + 1);
    std::string applied;
    putU64(applied, index);
    writes.push_back({"", std::string(kAppliedKey), std::move(applied)});
    for (auto& [k, v] : committed_) writes.push_back({k.first, k.second, std::move(v)});
    return store_.shardWrite(group_, writes);
  }

 private:
  kv::KvStore& store_;
  uint32_t group_;
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> committed_, staged_;
};

std::optional<int64_t> parseInt(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// One operation against the overlay; a failed one stages nothing.
absl::Status applyOp(Overlay& state, const KvOp& op, std::optional<std::string>& value) {
  switch (op.kind) {
    case OpKind::kSet:
      state.stage(op.app, op.key, op.value);
      return absl::OkStatus();
    case OpKind::kDelete:
      state.stage(op.app, op.key, std::nullopt);
      return absl::OkStatus();
    case OpKind::kCas: {
      absl::StatusOr<std::optional<std::string>> now = state.get(op.app, op.key);
      if (!now.ok()) return now.status();
      if (*now != op.expected) {
        value = *now;
        return absl::FailedPreconditionError(
            absl::StrCat("cas: key \"", op.key, "\" ",
                         now->has_value() ? "holds another value" : "does not exist"));
      }
      state.stage(op.app, op.key, op.value);
      return absl::OkStatus();
    }
    case OpKind::kIncr: {
      absl::StatusOr<std::optional<std::string>> now = state.get(op.app, op.key);
      if (!now.ok()) return now.status();
      int64_t base = 0;
      if (now->has_value()) {
        std::optional<int64_t> parsed = parseInt(**now);
        if (!parsed) {
          return absl::InvalidArgumentError(
              absl::StrCat("incr: key \"", op.key, "\" does not hold a decimal integer"));
        }
        base = *parsed;
      }
      int64_t next = 0;
      if (__builtin_add_overflow(base, op.delta, &next)) {
        return absl::OutOfRangeError(absl::StrCat("incr: key \"", op.key, "\" would overflow (",
                                                  base, " + ", op.delta, ")"));
      }
      value = std::to_string(next);
      state.stage(op.app, op.key, value);
      return absl::OkStatus();
    }
    case OpKind::kTrigger: {
      // Checked here, identically on every replica: a malformed record fails its proposal (and
      // with it the set it came with) instead of lying in the group for ever.
      std::optional<TriggerRecord> record = decodeTrigger(op.value);
      if (!record || record->id.empty() || record->id.size() > kMaxTriggerId ||
          record->app != op.app || record->key != op.key) {
        return absl::InvalidArgumentError(absl::StrCat(
            "trigger record of key \"", op.key, "\" is malformed (or its invocation id is over ",
            kMaxTriggerId, " bytes: too deep a trigger tree)"));
      }
      state.stage("", std::string(kTriggerPrefix) + record->id, op.value);
      return absl::OkStatus();
    }
    case OpKind::kTriggerDone:
      // Retiring a record twice, or one never written, is harmless: a re-run may finish after
      // the first run did.
      state.stage("", std::string(kTriggerPrefix) + op.value, std::nullopt);
      return absl::OkStatus();
  }
  return absl::InternalError("unknown op");
}

}  // namespace

std::string encodeTrigger(const TriggerRecord& r) {
  std::string out(1, static_cast<char>(kTriggerFormat));
  putBytes(out, r.id);
  putBytes(out, r.app);
  putBytes(out, r.function);
  putBytes(out, r.key);
  putU64(out, r.origin);
  putBytes(out, r.request_id);
  putU64(out, r.timeout_ms);
  putU64(out, r.depth);
  return out;
}

std::optional<TriggerRecord> decodeTrigger(std::string_view bytes) {
  Reader r{bytes};
  if (r.u8() != kTriggerFormat) return std::nullopt;
  TriggerRecord t;
  t.id = r.bytes();
  t.app = r.bytes();
  t.function = r.bytes();
  t.key = r.bytes();
  t.origin = r.u64();
  t.request_id = r.bytes();
  uint64_t timeout = r.u64();
  uint64_t depth = r.u64();
  if (!r.ok || !r.in.empty() || timeout > UINT32_MAX || depth > UINT32_MAX) return std::nullopt;
  t.timeout_ms = static_cast<uint32_t>(timeout);
  t.depth = static_cast<uint32_t>(depth);
  return t;
}

KvOp triggerOp(const TriggerRecord& record) {
  return KvOp{OpKind::kTrigger, record.app, record.key, encodeTrigger(record)};
}

KvOp triggerDoneOp(const TriggerRecord& record) {
  return KvOp{OpKind::kTriggerDone, record.app, record.key, record.id};
}

absl::StatusOr<std::vector<TriggerRecord>> pendingTriggers(kv::KvStore& store, uint32_t group,
                                                           size_t limit,
                                                           std::vector<std::string>* corrupt) {
  auto pairs = store.shardScan(group, "", kTriggerPrefix, limit);
  if (!pairs.ok()) return pairs.status();
  std::vector<TriggerRecord> out;
  out.reserve(pairs->size());
  for (auto& [k, v] : *pairs) {
    std::optional<TriggerRecord> t = decodeTrigger(v);
    if (!t && corrupt != nullptr) {
      corrupt->push_back(k);
      continue;
    }
    if (!t) return absl::InternalError(absl::StrCat("group ", group, ": bad trigger record ", k));
    out.push_back(std::move(*t));
  }
  return out;
}

std::string encodeEntry(const Entry& entry) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  putU64(out, entry.proposer);
  putU64(out, entry.proposals.size());
  for (const Proposal& p : entry.proposals) {
    putU64(out, p.id);
    putU64(out, p.ops.size());
    for (const KvOp& op : p.ops) {
      out.push_back(static_cast<char>(op.kind));
      putBytes(out, op.app);
      putBytes(out, op.key);
      putBytes(out, op.value);
      out.push_back(op.expected ? 1 : 0);
      if (op.expected) putBytes(out, *op.expected);
      putU64(out, static_cast<uint64_t>(op.delta));
    }
  }
  // libraft 0.15's uv storage loses the tail of an entry whose length is not a multiple of 8
  // when it finalises a segment (found by raft_host_test's restart case): pad with zeros.
  out.append((8 - out.size() % 8) % 8, '\0');
  return out;
}

std::optional<Entry> decodeEntry(std::string_view bytes) {
  Reader r{bytes};
  if (r.u8() != kFormat) return std::nullopt;
  Entry e;
  e.proposer = r.u64();
  uint64_t n = r.u64();
  // Each proposal takes at least 16 bytes: a count beyond that is garbage, not a reason to
  // allocate.
  if (!r.ok || n > r.in.size() / 16) return std::nullopt;
  e.proposals.resize(n);
  for (Proposal& p : e.proposals) {
    p.id = r.u64();
    uint64_t ops = r.u64();
    if (!r.ok || ops > r.in.size() / 34) return std::nullopt;
    p.ops.resize(ops);
    for (KvOp& op : p.ops) {
      uint8_t kind = r.u8();
      if (kind < 1 || kind > 6) return std::nullopt;
      op.kind = static_cast<OpKind>(kind);
      op.app = r.bytes();
      op.key = r.bytes();
      op.value = r.bytes();
      if (r.u8() != 0) op.expected = r.bytes();
      op.delta = static_cast<int64_t>(r.u64());
      if (!r.ok) return std::nullopt;
    }
  }
  if (!r.ok || r.in.size() >= 8 || r.in.find_first_not_of('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return e;
}

absl::Status applyEntry(kv::KvStore& store, uint32_t group, uint64_t index, const Entry& entry,
                        std::vector<ProposalResult>& results) {
  results.clear();
  results.reserve(entry.proposals.size());
  Overlay state(store, group);
  for (const Proposal& p : entry.proposals) {
    ProposalResult result;
    for (const KvOp& op : p.ops) {
      result.status = applyOp(state, op, result.value);
      if (!result.status.ok()) break;
    }
    if (result.status.ok()) {
      state.commitStaged();
    } else {
      // A store read failing is not the proposal's fault: replicas must stop, not skip it.
      if (result.status.code() == absl::StatusCode::kUnavailable ||
          result.status.code() == absl::StatusCode::kInternal) {
        return result.status;
      }
      state.dropStaged();
    }
    results.push_back(std::move(result));
  }
  return state.flush(index);
}

absl::StatusOr<uint64_t> appliedIndex(kv::KvStore& store, uint32_t group) {
  absl::StatusOr<std::optional<std::string>> v = store.shardGet(group, "", kAppliedKey);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return 0;
  Reader r{**v};
  uint64_t index = r.u64();
  if (!r.ok) return absl::InternalError(absl::StrCat("group ", group, ": bad applied index"));
  return index;
}

}  // namespace waverless::shard
