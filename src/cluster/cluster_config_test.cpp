#include "cluster/cluster_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace waverless::cluster {
namespace {

using ::testing::HasSubstr;

TEST(ClusterConfig, ParsesTheOriginalFormat) {
  auto c = parseClusterConfig(R"(
nodes:
  1: {addr: 127.0.0.1:2500, spec: [meta, master]}
  2: {addr: 127.0.0.1:2600, spec: [meta, worker]}
  3: {addr: 127.0.0.1:2700, spec: [meta, worker], weight: 2, bind: 0.0.0.0:2700}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->master()->id, 1u);
  EXPECT_EQ(c->scheduler, "data-aware");
  const NodeConfig* n3 = c->find(3);
  EXPECT_TRUE(n3->worker);
  EXPECT_FALSE(n3->master);
  EXPECT_EQ(n3->weight, 2);
  EXPECT_EQ(n3->httpBind(), "0.0.0.0:2701");
  EXPECT_EQ(n3->httpAddr(), "127.0.0.1:2701");
  EXPECT_EQ(c->find(2)->bind, "127.0.0.1:2600");
}

TEST(ClusterConfig, TheMasterRoleFollowsMetaNodesAndReplacementHasADelay) {
  auto c = parseClusterConfig(R"(
replace_after: 2s
nodes:
  1: {addr: 127.0.0.1:2500, spec: [meta, worker]}
  2: {addr: 127.0.0.1:2600, spec: [meta, worker]}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->master(), nullptr) << "no fixed master: the meta leader is";
  EXPECT_EQ(c->replace_after, std::chrono::milliseconds(2000));
  EXPECT_EQ(
      parseClusterConfig("replace_after: 250ms\nnodes:\n  1: {addr: a:1, spec: [master, worker]}\n")
          ->replace_after,
      std::chrono::milliseconds(250));
  EXPECT_EQ(parseClusterConfig("nodes:\n  1: {addr: a:1, spec: [master, worker]}\n")->replace_after,
            std::chrono::seconds(30));
  for (const char* bad : {"soon", "5m", "0", "-3s"}) {
    auto r = parseClusterConfig(std::string("replace_after: ") + bad +
                                "\nnodes:\n  1: {addr: a:1, spec: [master, worker]}\n");
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("replace_after")) << bad;
  }
  auto master_not_meta = parseClusterConfig(
      "nodes:\n  1: {addr: a:1, spec: [master]}\n  2: {addr: a:2, spec: [meta, worker]}\n");
  EXPECT_THAT(std::string(master_not_meta.status().message()), HasSubstr("must also be a meta"));
}

TEST(ClusterConfig, RejectsMistakesWithTheirLine) {
  auto bad_role = parseClusterConfig("nodes:\n  1: {addr: a:1, spec: [master, chef]}\n");
  EXPECT_THAT(std::string(bad_role.status().message()), HasSubstr("cluster.yaml:2"));
  EXPECT_THAT(std::string(bad_role.status().message()), HasSubstr("chef"));
  auto no_worker = parseClusterConfig("nodes:\n  1: {addr: a:1, spec: [master]}\n");
  EXPECT_THAT(std::string(no_worker.status().message()), HasSubstr("worker"));
  auto two_masters = parseClusterConfig(
      "nodes:\n  1: {addr: a:1, spec: [master, worker]}\n  2: {addr: a:2, spec: [master]}\n");
  EXPECT_THAT(std::string(two_masters.status().message()), HasSubstr("exactly one"));
  auto unknown =
      parseClusterConfig("nodes:\n  1: {addr: a:1, spec: [master, worker], colour: red}\n");
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("colour"));
  auto bad_sched =
      parseClusterConfig("scheduler: fastest\nnodes:\n  1: {addr: a:1, spec: [master, worker]}\n");
  EXPECT_THAT(std::string(bad_sched.status().message()), HasSubstr("fastest"));
  auto dup = parseClusterConfig(
      "nodes:\n  1: {addr: a:1, spec: [master, worker]}\n  2: {addr: a:1, spec: [worker]}\n");
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("used twice"));
  EXPECT_FALSE(parseClusterConfig("nodes: [").ok());
}

TEST(ClusterConfig, ShardsAndReplicas) {
  auto defaults =
      parseClusterConfig("nodes:\n  1: {addr: 10.0.0.1:2500, spec: [master, worker]}\n");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->shards, 64u);
  EXPECT_EQ(defaults->replicas, 3u);
  EXPECT_EQ(defaults->nodes[0].shardAddr(), "10.0.0.1:2503");
  auto set = parseClusterConfig(
      "shards: 256\nreplicas: 5\nnodes:\n  1: {addr: a:1, spec: [master, worker], bind: b:7}\n");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->shards, 256u);
  EXPECT_EQ(set->replicas, 5u);
  EXPECT_EQ(set->nodes[0].shardBind(), "b:10");
  auto zero = parseClusterConfig("shards: 0\nnodes:\n  1: {addr: a:1, spec: [master, worker]}\n");
  EXPECT_THAT(std::string(zero.status().message()),
              HasSubstr("cluster.yaml:1: shards: want an integer 1..4096"));
  auto text =
      parseClusterConfig("replicas: many\nnodes:\n  1: {addr: a:1, spec: [master, worker]}\n");
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("replicas"));
  auto high_port = parseClusterConfig("nodes:\n  1: {addr: a:65533, spec: [master, worker]}\n");
  EXPECT_FALSE(high_port.ok());
}

}  // namespace
}  // namespace waverless::cluster
