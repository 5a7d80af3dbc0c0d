#include "shard/shard_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

namespace waverless::shard {
namespace {

std::vector<sched::WorkerInfo> workers(int n) {
  std::vector<sched::WorkerInfo> out;
  for (int i = 1; i <= n; ++i) out.push_back({sched::NodeId{uint32_t(i)}, 1.0, true, 0});
  return out;
}

TEST(ShardMap, PlacesEachGroupOnDistinctWorkersAndSpreadsThem) {
  auto map = ShardMap::place(256, 3, workers(5));
  ASSERT_TRUE(map.ok());
  std::map<uint32_t, int> per_node;
  for (uint32_t g = 0; g < 256; ++g) {
    const auto& r = map->replicasOf(g);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(std::set<uint32_t>(r.begin(), r.end()).size(), 3u);
    for (uint32_t n : r) ++per_node[n];
  }
  // 768 replicas over 5 equal workers: about 154 each.
  for (auto [node, count] : per_node) {
    EXPECT_GT(count, 120) << node;
    EXPECT_LT(count, 190) << node;
  }
  EXPECT_EQ(map->groupsOn(1).size(), static_cast<size_t>(per_node[1]));
}

TEST(ShardMap, FewerWorkersThanReplicasMeansFewerReplicas) {
  auto map = ShardMap::place(8, 3, workers(2));
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->replicationFactor(), 2u);
  EXPECT_EQ(map->replicasOf(0).size(), 2u);
  EXPECT_FALSE(ShardMap::place(8, 3, {}).ok());
  EXPECT_FALSE(ShardMap::place(0, 3, workers(2)).ok());
}

TEST(ShardMap, KeysSpreadOverGroupsDeterministically) {
  auto map = ShardMap::place(64, 3, workers(5));
  std::set<uint32_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(map->groupOf("app", "key" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_EQ(map->groupOf("a", "k"), map->groupOf("a", "k"));
}

TEST(ShardMap, ReplacingADeadWorkerMovesOnlyItsGroups) {
  auto w = workers(5);
  auto map = ShardMap::place(128, 3, w);
  ASSERT_TRUE(map.ok());
  w[2].alive = false;  // node 3
  ShardMap next = map->without(3, w);
  EXPECT_EQ(next.version(), map->version() + 1);
  for (uint32_t g = 0; g < 128; ++g) {
    const auto& before = map->replicasOf(g);
    const auto& after = next.replicasOf(g);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(std::count(after.begin(), after.end(), 3u), 0);
    bool had = std::count(before.begin(), before.end(), 3u) > 0;
    std::set<uint32_t> b(before.begin(), before.end()), a(after.begin(), after.end());
    std::vector<uint32_t> kept;
    std::set_intersection(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(kept));
    EXPECT_EQ(kept.size(), had ? 2u : 3u) << "group " << g;
  }
}

TEST(ShardMap, EncodesAndRefusesGarbage) {
  auto map = ShardMap::place(16, 3, workers(4), 7);
  std::optional<ShardMap> back = ShardMap::decode(map->encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, *map);
  std::string bytes = map->encode();
  EXPECT_FALSE(ShardMap::decode(bytes.substr(0, bytes.size() - 1)).has_value());
  EXPECT_FALSE(ShardMap::decode("WLSM").has_value());
  EXPECT_FALSE(ShardMap::decode("").has_value());
}

}  // namespace
}  // namespace waverless::shard
