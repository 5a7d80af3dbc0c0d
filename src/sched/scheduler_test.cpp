#include "sched/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace waverless::sched {
namespace {

using ::testing::HasSubstr;

constexpr Policy kAllPolicies[] = {Policy::kRandom, Policy::kHash, Policy::kStraw2,
                                   Policy::kLeastLoaded, Policy::kDataAware};

// Workers with ids 1..n and the given weights.
std::vector<WorkerInfo> cluster(std::vector<double> weights) {
  std::vector<WorkerInfo> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back({.id = {static_cast<uint32_t>(i + 1)}, .weight = weights[i]});
  }
  return out;
}

std::string keyName(int i) { return "key-" + std::to_string(i); }

// Owner of each of the first n keys.
std::vector<NodeId> owners(const std::vector<WorkerInfo>& workers, int n) {
  std::vector<NodeId> out;
  for (int i = 0; i < n; ++i) out.push_back(straw2Pick(keyName(i), workers));
  return out;
}

NodeId mustPlace(Policy p, const PlacementRequest& req, const std::vector<WorkerInfo>& workers) {
  absl::StatusOr<NodeId> id = makeScheduler(p)->place(req, workers);
  EXPECT_TRUE(id.ok()) << policyName(p) << ": " << id.status();
  return id.ok() ? *id : NodeId{};
}

// Reference values from xxHash's own `xxhsum -H64` / XXH64(): a change here moves every key.
TEST(Hash64Test, MatchesReferenceXxh64) {
  EXPECT_EQ(hash64("", 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(hash64("The quick brown fox jumps over the lazy dog", 0), 0x0B242D361FDA71BCULL);
  EXPECT_EQ(hash64("wordcount/slice_7", 42), 0x6FC7859869CA36ABULL);
  // 63 bytes: one 32-byte stripe, then the 8-, 4- and 1-byte tails.
  EXPECT_EQ(hash64("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ!", 0xFFFFFFFF),
            0xE4864810818CC821ULL);
}

TEST(Straw2Test, SharesFollowWeights) {
  const std::vector<WorkerInfo> workers = cluster({1, 2, 3, 4});
  constexpr int kKeys = 100'000;
  std::map<NodeId, int> count;
  for (NodeId id : owners(workers, kKeys)) ++count[id];
  for (const WorkerInfo& w : workers) {
    const double share = static_cast<double>(count[w.id]) / kKeys;
    EXPECT_NEAR(share, w.weight / 10.0, 0.02) << "node " << w.id.value;
  }
}

TEST(Straw2Test, AddingNodeMovesOnlyItsShareToIt) {
  constexpr int kKeys = 100'000;
  const std::vector<NodeId> before = owners(cluster({1, 1, 1}), kKeys);
  const std::vector<NodeId> after = owners(cluster({1, 1, 1, 1}), kKeys);
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] == after[i]) continue;
    ++moved;
    EXPECT_EQ(after[i], NodeId{4}) << keyName(i);
  }
  const double ideal = kKeys / 4.0;
  EXPECT_LE(moved, 1.1 * ideal);
  EXPECT_GE(moved, 0.9 * ideal);  // and the new node does get its share
}

TEST(Straw2Test, RemovingNodeMovesOnlyItsKeys) {
  constexpr int kKeys = 20'000;
  std::vector<WorkerInfo> workers = cluster({1, 2, 3, 4});
  const std::vector<NodeId> before = owners(workers, kKeys);
  // A dead node and a node gone from the list are the same to straw2.
  std::vector<WorkerInfo> removed = workers;
  removed.erase(removed.begin() + 2);
  workers[2].alive = false;
  const std::vector<NodeId> after_removed = owners(removed, kKeys);
  EXPECT_EQ(owners(workers, kKeys), after_removed);
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] != NodeId{3}) {
      EXPECT_EQ(after_removed[i], before[i]) << keyName(i);
    }
    EXPECT_NE(after_removed[i], NodeId{3});
  }
}

TEST(Straw2Test, RaisingWeightMovesKeysOnlyOntoThatNode) {
  constexpr int kKeys = 100'000;
  std::vector<WorkerInfo> workers = cluster({1, 1, 1, 1});
  const std::vector<NodeId> before = owners(workers, kKeys);
  workers[1].weight = 2;
  const std::vector<NodeId> after = owners(workers, kKeys);
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] == after[i]) continue;
    ++moved;
    EXPECT_EQ(after[i], NodeId{2}) << keyName(i);
  }
  const double ideal = kKeys * (2.0 / 5 - 1.0 / 4);  // node 2's share grows from 1/4 to 2/5
  EXPECT_LE(moved, 1.1 * ideal);
  EXPECT_GE(moved, 0.9 * ideal);
}

TEST(Straw2Test, IgnoresOrderDeadAndWeightlessWorkers) {
  std::vector<WorkerInfo> workers = cluster({1, 2, 3, 4});
  workers[0].alive = false;
  workers[3].weight = 0;
  std::vector<WorkerInfo> reversed(workers.rbegin(), workers.rend());
  for (int i = 0; i < 1000; ++i) {
    const NodeId id = straw2Pick(keyName(i), workers);
    EXPECT_EQ(straw2Pick(keyName(i), reversed), id);
    EXPECT_TRUE(id == NodeId{2} || id == NodeId{3}) << id.value;
  }
}

TEST(Straw2PolicyTest, KeysByAppAndKeyElseFunction) {
  const std::vector<WorkerInfo> workers = cluster({1, 1, 1, 1});
  std::map<NodeId, int> count;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = keyName(i);
    const NodeId id =
        mustPlace(Policy::kStraw2, {.app = "wc", .function = "map", .key = key}, workers);
    EXPECT_EQ(id, straw2Pick("wc/" + key, workers));
    ++count[id];
  }
  EXPECT_EQ(count.size(), 4u);  // keys of one app spread over the cluster
  EXPECT_EQ(mustPlace(Policy::kStraw2, {.app = "wc", .function = "map"}, workers),
            straw2Pick("wc/map", workers));
}

TEST(HashPolicyTest, SameAppSameNode) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1});
  const NodeId id = mustPlace(Policy::kHash, {.app = "wc", .function = "map", .key = "a"}, workers);
  // Only the app name counts: not the function, key or entropy, nor the order of workers.
  EXPECT_EQ(mustPlace(Policy::kHash, {.app = "wc", .function = "reduce", .random = 7}, workers),
            id);
  std::reverse(workers.begin(), workers.end());
  EXPECT_EQ(mustPlace(Policy::kHash, {.app = "wc", .key = "b"}, workers), id);
}

TEST(HashPolicyTest, AppsSpreadEvenlyWhateverTheWeights) {
  const std::vector<WorkerInfo> equal = cluster({1, 1, 1});
  const std::vector<WorkerInfo> unequal = cluster({1, 5, 20});
  std::map<NodeId, int> count;
  for (int i = 0; i < 1000; ++i) {
    const std::string app = "app-" + std::to_string(i);
    const NodeId id = mustPlace(Policy::kHash, {.app = app}, equal);
    EXPECT_EQ(mustPlace(Policy::kHash, {.app = app}, unequal), id);
    ++count[id];
  }
  for (const auto& [id, n] : count) {
    EXPECT_GE(n, 150) << "node " << id.value;
    EXPECT_LE(n, 400) << "node " << id.value;
  }
}

TEST(HashPolicyTest, RemovingNodeMovesOnlyItsApps) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1});
  std::vector<NodeId> before;
  for (int i = 0; i < 1000; ++i) {
    before.push_back(mustPlace(Policy::kHash, {.app = "app-" + std::to_string(i)}, workers));
  }
  workers[0].alive = false;
  for (int i = 0; i < 1000; ++i) {
    const NodeId after = mustPlace(Policy::kHash, {.app = "app-" + std::to_string(i)}, workers);
    if (before[i] != NodeId{1}) {
      EXPECT_EQ(after, before[i]) << i;
    }
    EXPECT_NE(after, NodeId{1});
  }
}

TEST(RandomPolicyTest, UniformOverAliveWorkers) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1, 1});
  workers[2].alive = false;
  constexpr int kDraws = 30'000;
  std::map<NodeId, int> count;
  // A plain counter as entropy: the policy must spread it by itself.
  for (uint64_t r = 0; r < kDraws; ++r) ++count[mustPlace(Policy::kRandom, {.random = r}, workers)];
  EXPECT_EQ(count.count(NodeId{3}), 0u);
  EXPECT_EQ(count.size(), 3u);
  for (const auto& [id, n] : count) {
    EXPECT_NEAR(static_cast<double>(n) / kDraws, 1.0 / 3, 0.02) << "node " << id.value;
  }
}

TEST(LeastLoadedTest, PicksMinimumAlive) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1, 1});
  workers[0].load = 0.9;
  workers[1].load = 0.3;
  workers[2].load = 0.1;
  workers[2].alive = false;  // the least loaded, but dead
  workers[3].load = 0.5;
  EXPECT_EQ(mustPlace(Policy::kLeastLoaded, {.app = "wc"}, workers), NodeId{2});
}

TEST(LeastLoadedTest, TiesBrokenByStraw2OnApp) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1, 1});
  workers[0].load = 0.5;  // not tied: never chosen
  std::vector<WorkerInfo> tied(workers.begin() + 1, workers.end());
  std::vector<WorkerInfo> reversed(workers.rbegin(), workers.rend());
  std::map<NodeId, int> count;
  for (int i = 0; i < 300; ++i) {
    const std::string app = "app-" + std::to_string(i);
    const NodeId id = mustPlace(Policy::kLeastLoaded, {.app = app}, workers);
    EXPECT_EQ(id, straw2Pick(app, tied));
    EXPECT_EQ(mustPlace(Policy::kLeastLoaded, {.app = app}, reversed), id);
    ++count[id];
  }
  EXPECT_EQ(count.count(NodeId{1}), 0u);
  EXPECT_EQ(count.size(), 3u);  // an idle cluster still spreads apps
}

TEST(DataAwareTest, DataNodeWinsWhenAlive) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1});
  workers[2].load = 5;  // even when busy: moving the data would cost more
  EXPECT_EQ(
      mustPlace(Policy::kDataAware,
                {.app = "wc", .key = "k", .data_node = NodeId{3}, .local = NodeId{1}}, workers),
      NodeId{3});
}

TEST(DataAwareTest, FallsBackToLocalWhenDataNodeDeadOrUnknown) {
  std::vector<WorkerInfo> workers = cluster({1, 1, 1});
  workers[2].alive = false;
  workers[0].load = 0.99;
  EXPECT_EQ(
      mustPlace(Policy::kDataAware,
                {.app = "wc", .key = "k", .data_node = NodeId{3}, .local = NodeId{1}}, workers),
      NodeId{1});
  EXPECT_EQ(
      mustPlace(Policy::kDataAware,
                {.app = "wc", .key = "k", .data_node = NodeId{9}, .local = NodeId{1}}, workers),
      NodeId{1});
}

TEST(DataAwareTest, FallsBackToStraw2OverLighterNodesWhenLocalSaturated) {
  std::vector<WorkerInfo> workers = cluster({1, 2, 3, 4});
  workers[0].load = 1.0;
  workers[2].load = 1.5;  // busier than the local node: never a target
  const std::vector<WorkerInfo> lighter = {workers[1], workers[3]};
  for (int i = 0; i < 100; ++i) {
    const std::string key = keyName(i);
    const PlacementRequest req = {.app = "wc", .key = key, .local = NodeId{1}};
    EXPECT_EQ(mustPlace(Policy::kDataAware, req, workers), straw2Pick("wc/" + key, lighter));
  }
  // Every other node as busy or busier: the work stays.
  for (WorkerInfo& w : workers) w.load = std::max(w.load, 1.0);
  EXPECT_EQ(mustPlace(Policy::kDataAware, {.app = "wc", .key = "k", .local = NodeId{1}}, workers),
            NodeId{1});
  // No data node and no local node: straw2 as well.
  EXPECT_EQ(mustPlace(Policy::kDataAware, {.app = "wc", .function = "map"}, workers),
            straw2Pick("wc/map", workers));
}

TEST(SchedulerTest, NoEligibleWorkerIsUnavailable) {
  std::vector<WorkerInfo> dead = cluster({1, 1});
  for (WorkerInfo& w : dead) w.alive = false;
  const std::vector<WorkerInfo> weightless = cluster({0, 0});
  const PlacementRequest req = {
      .app = "wc", .function = "map", .key = "k", .data_node = NodeId{1}, .local = NodeId{2}};
  for (Policy p : kAllPolicies) {
    for (const std::vector<WorkerInfo>& workers : {std::vector<WorkerInfo>{}, dead, weightless}) {
      absl::StatusOr<NodeId> id = makeScheduler(p)->place(req, workers);
      EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable) << policyName(p);
      EXPECT_THAT(std::string(id.status().message()), HasSubstr("wc/map")) << policyName(p);
    }
  }
}

TEST(PolicyTest, NamesRoundTrip) {
  for (Policy p : kAllPolicies) {
    absl::StatusOr<Policy> parsed = parsePolicy(policyName(p));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(policyName(Policy::kLeastLoaded), "least-loaded");
}

TEST(PolicyTest, ParseErrorNamesBadValue) {
  for (std::string_view bad : {"least_loaded", "", "Random"}) {
    absl::StatusOr<Policy> p = parsePolicy(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("\"" + std::string(bad) + "\""));
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("least-loaded"));
  }
}

}  // namespace
}  // namespace waverless::sched
