#include "shard/shard_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "shard/wire.h"

namespace waverless::shard {

namespace {

// Keys hash with their app, so two apps' equal keys spread independently.
constexpr uint64_t kGroupSeed = 0x5eed5a4d;

std::string groupKey(uint32_t group) { return absl::StrCat("group/", group); }

// The group's best-drawing eligible worker not in `taken`, if any.
std::optional<uint32_t> nextReplica(uint32_t group, std::span<const sched::WorkerInfo> workers,
                                    const std::vector<uint32_t>& taken) {
  std::vector<sched::WorkerInfo> eligible;
  for (const sched::WorkerInfo& w : workers) {
    if (w.alive && std::find(taken.begin(), taken.end(), w.id.value) == taken.end()) {
      eligible.push_back(w);
    }
  }
  if (eligible.empty()) return std::nullopt;
  return sched::straw2Pick(groupKey(group), eligible).value;
}

bool getU64(std::string_view& in, uint64_t& v) {
  wire::Reader r{in};
  v = r.u64();
  in = r.in;
  return r.ok;
}

using wire::putU64;

}  // namespace

absl::StatusOr<ShardMap> ShardMap::place(uint32_t groups, uint32_t replicas,
                                         std::span<const sched::WorkerInfo> workers,
                                         uint64_t version) {
  if (groups == 0 || replicas == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shards: need at least one group and one replica (have ", groups, " and ", replicas, ")"));
  }
  size_t live = std::count_if(workers.begin(), workers.end(),
                              [](const sched::WorkerInfo& w) { return w.alive; });
  if (live == 0) return absl::InvalidArgumentError("shards: no worker to place groups on");
  ShardMap map;
  map.factor_ = static_cast<uint32_t>(std::min<size_t>(replicas, live));
  map.version_ = version;
  map.replicas_.resize(groups);
  for (uint32_t g = 0; g < groups; ++g) {
    while (map.replicas_[g].size() < map.factor_) {
      map.replicas_[g].push_back(*nextReplica(g, workers, map.replicas_[g]));
    }
  }
  return map;
}

uint32_t ShardMap::groupOf(std::string_view app, std::string_view key) const {
  std::string k;
  k.reserve(app.size() + 1 + key.size());
  k.append(app).push_back('/');
  k.append(key);
  return static_cast<uint32_t>(sched::hash64(k, kGroupSeed) % replicas_.size());
}

std::vector<uint32_t> ShardMap::groupsOn(uint32_t node) const {
  std::vector<uint32_t> out;
  for (uint32_t g = 0; g < replicas_.size(); ++g) {
    const auto& r = replicas_[g];
    if (std::find(r.begin(), r.end(), node) != r.end()) out.push_back(g);
  }
  return out;
}

ShardMap ShardMap::without(uint32_t dead, std::span<const sched::WorkerInfo> workers) const {
  ShardMap next = *this;
  next.version_ = version_ + 1;
  for (uint32_t g = 0; g < next.replicas_.size(); ++g) {
    std::vector<uint32_t>& r = next.replicas_[g];
    auto it = std::find(r.begin(), r.end(), dead);
    if (it == r.end()) continue;
    std::vector<uint32_t> taken = r;  // the dead one stays excluded
    r.erase(it);
    std::vector<sched::WorkerInfo> others;
    for (const sched::WorkerInfo& w : workers) {
      if (w.id.value != dead) others.push_back(w);
    }
    if (std::optional<uint32_t> n = nextReplica(g, others, taken)) r.push_back(*n);
  }
  return next;
}

std::string ShardMap::encode() const {
  std::string out = "WLSM";
  putU64(out, version_);
  putU64(out, factor_);
  putU64(out, replicas_.size());
  for (const auto& r : replicas_) {
    putU64(out, r.size());
    for (uint32_t n : r) putU64(out, n);
  }
  return out;
}

std::optional<ShardMap> ShardMap::decode(std::string_view in) {
  if (in.substr(0, 4) != "WLSM") return std::nullopt;
  in.remove_prefix(4);
  ShardMap map;
  uint64_t factor = 0, groups = 0;
  if (!getU64(in, map.version_) || !getU64(in, factor) || !getU64(in, groups)) return std::nullopt;
  if (groups == 0 || groups > in.size() / 8 || factor > 64) return std::nullopt;
  map.factor_ = static_cast<uint32_t>(factor);
  map.replicas_.resize(groups);
  for (auto& r : map.replicas_) {
    uint64_t n = 0;
    if (!getU64(in, n) || n > 64) return std::nullopt;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t node = 0;
      if (!getU64(in, node) || node > UINT32_MAX) return std::nullopt;
      r.push_back(static_cast<uint32_t>(node));
    }
  }
  if (!in.empty()) return std::nullopt;
  return map;
}

}  // namespace waverless::shard
