#include "shard/group_config.h"

#include <gtest/gtest.h>

#include "shard/raft_host.h"

namespace waverless::shard {
namespace {

using Kind = ConfigStep::Kind;

std::vector<Replica> want(std::initializer_list<uint64_t> nodes) {
  std::vector<Replica> out;
  for (uint64_t n : nodes) out.push_back({n, "127.0.0.1:" + std::to_string(9000 + n)});
  return out;
}

// Node 3 died; the map moved its copy to node 4. The leader (1) walks the group there without
// ever having fewer than three voters of the four it knows.
TEST(GroupConfig, AReplacementJoinsVotesThenTheDeadOneLeaves) {
  std::vector<ConfigMember> conf = {{1, true}, {2, true}, {3, true}};
  auto wanted = want({1, 2, 4});
  EXPECT_EQ(nextConfigStep(conf, wanted, 1), (ConfigStep{Kind::kAdd, 4, "127.0.0.1:9004"}));
  conf.push_back({4, false});
  EXPECT_EQ(nextConfigStep(conf, wanted, 1), (ConfigStep{Kind::kPromote, 4, ""}));
  conf.back().voter = true;
  EXPECT_EQ(nextConfigStep(conf, wanted, 1), (ConfigStep{Kind::kRemove, 3, ""}));
  conf.erase(conf.begin() + 2);
  EXPECT_EQ(nextConfigStep(conf, wanted, 1).kind, Kind::kNone);
}

TEST(GroupConfig, TheLeaderNeverRemovesItself) {
  std::vector<ConfigMember> conf = {{1, true}, {2, true}, {3, true}};
  EXPECT_EQ(nextConfigStep(conf, want({2, 3}), 1).kind, Kind::kNone);
  EXPECT_EQ(nextConfigStep(conf, want({1, 3}), 1), (ConfigStep{Kind::kRemove, 2, ""}));
}

TEST(GroupConfig, AMatchingConfigurationNeedsNothing) {
  std::vector<ConfigMember> conf = {{2, true}, {5, true}};
  EXPECT_EQ(nextConfigStep(conf, want({5, 2}), 2).kind, Kind::kNone);
}

}  // namespace
}  // namespace waverless::shard
