// The five placement policies. Each is stateless: everything it looks at arrives in place().
#include "sched/scheduler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace waverless::sched {
namespace {

constexpr std::array<std::pair<Policy, std::string_view>, 5> kPolicyNames = {{
    {Policy::kRandom, "random"},
    {Policy::kHash, "hash"},
    {Policy::kStraw2, "straw2"},
    {Policy::kLeastLoaded, "least-loaded"},
    {Policy::kDataAware, "data-aware"},
}};

bool eligible(const WorkerInfo& w) { return w.alive && w.weight > 0; }

const WorkerInfo* findEligible(std::span<const WorkerInfo> workers, std::optional<NodeId> id) {
  if (!id) return nullptr;
  auto it = std::find_if(workers.begin(), workers.end(),
                         [&](const WorkerInfo& w) { return w.id == *id; });
  return it != workers.end() && eligible(*it) ? &*it : nullptr;
}

// The straw2 key of a request: "app/key", or "app/function" for requests without a key.
std::string straw2Key(const PlacementRequest& req) {
  std::string key(req.app);
  key += '/';
  key += req.key.empty() ? req.function : req.key;
  return key;
}

// SplitMix64's finalizer: turns a counter or a weak seed into well-spread bits.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Checks once, for every policy, that there is something to choose from; choose() may then assume
// at least one eligible worker.
class PolicyScheduler : public Scheduler {
 public:
  absl::StatusOr<NodeId> place(const PlacementRequest& req,
                               std::span<const WorkerInfo> workers) const final {
    if (std::none_of(workers.begin(), workers.end(), eligible)) {
      return absl::UnavailableError(absl::StrCat("no alive worker to run ", std::string(req.app),
                                                 "/", std::string(req.function), " (",
                                                 workers.size(), " known, none alive)"));
    }
    return choose(req, workers);
  }

 private:
  virtual NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const = 0;
};

class RandomScheduler final : public PolicyScheduler {
  NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const override {
    // Sorted by id so the same req.random picks the same node however the caller orders workers.
    std::vector<NodeId> ids;
    for (const WorkerInfo& w : workers) {
      if (eligible(w)) ids.push_back(w.id);
    }
    std::sort(ids.begin(), ids.end());
    // Multiply-high maps 64 random bits onto [0, n) without modulo's bias toward small indices.
    const auto index =
        static_cast<size_t>((static_cast<unsigned __int128>(mix(req.random)) * ids.size()) >> 64);
    return ids[index];
  }
};

class HashScheduler final : public PolicyScheduler {
  NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const override {
    // Equal weights: the policy spreads apps evenly, whatever the nodes' capacities.
    std::vector<WorkerInfo> equal;
    for (const WorkerInfo& w : workers) {
      if (eligible(w)) equal.push_back({.id = w.id, .weight = 1.0});
    }
    return straw2Pick(req.app, equal);
  }
};

class Straw2Scheduler final : public PolicyScheduler {
  NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const override {
    return straw2Pick(straw2Key(req), workers);
  }
};

class LeastLoadedScheduler final : public PolicyScheduler {
  NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const override {
    // Loads come from other nodes' heartbeats; a NaN one counts as fully busy rather than
    // poisoning the comparisons.
    auto load = [](const WorkerInfo& w) {
      return std::isnan(w.load) ? std::numeric_limits<double>::infinity() : w.load;
    };
    double min_load = std::numeric_limits<double>::infinity();
    for (const WorkerInfo& w : workers) {
      if (eligible(w)) min_load = std::min(min_load, load(w));
    }
    std::vector<WorkerInfo> tied;
    for (const WorkerInfo& w : workers) {
      if (eligible(w) && load(w) == min_load) tied.push_back(w);
    }
    return straw2Pick(req.app, tied);
  }
};

class DataAwareScheduler final : public PolicyScheduler {
  NodeId choose(const PlacementRequest& req, std::span<const WorkerInfo> workers) const override {
    if (const WorkerInfo* data = findEligible(workers, req.data_node)) return data->id;
    const WorkerInfo* local = findEligible(workers, req.local);
    if (local == nullptr) return straw2Pick(straw2Key(req), workers);
    if (local->load < 1.0) return local->id;
    // Saturated here: only a node less loaded is worth a network hop each way.
    std::vector<WorkerInfo> lighter;
    for (const WorkerInfo& w : workers) {
      if (eligible(w) && w.load < local->load) lighter.push_back(w);
    }
    return lighter.empty() ? local->id : straw2Pick(straw2Key(req), lighter);
  }
};

}  // namespace

absl::StatusOr<Policy> parsePolicy(std::string_view name) {
  for (const auto& [policy, policy_name] : kPolicyNames) {
    if (name == policy_name) return policy;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scheduling policy \"", absl::CEscape(std::string(name)),
                   "\"; expected one of random, hash, straw2, least-loaded, data-aware"));
}

std::string_view policyName(Policy p) {
  for (const auto& [policy, policy_name] : kPolicyNames) {
    if (p == policy) return policy_name;
  }
  return "unknown";  // only reachable through a cast outside the enum's values
}

std::unique_ptr<Scheduler> makeScheduler(Policy p) {
  switch (p) {
    case Policy::kRandom:
      return std::make_unique<RandomScheduler>();
    case Policy::kHash:
      return std::make_unique<HashScheduler>();
    case Policy::kStraw2:
      return std::make_unique<Straw2Scheduler>();
    case Policy::kLeastLoaded:
      return std::make_unique<LeastLoadedScheduler>();
    case Policy::kDataAware:
      return std::make_unique<DataAwareScheduler>();
  }
  return nullptr;  // only reachable through a cast outside the enum's values
}

}  // namespace waverless::sched
