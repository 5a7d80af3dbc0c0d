// Re-replication with real node processes: a worker down longer than `replace_after` has its
// copies moved to the live workers (a new shard map version in the meta raft group, raft
// configuration changes in each group it held), so that a second worker's death afterwards still
// leaves every key readable and writable. Without the move, about half of the groups would lose
// their majority. Also: the returning worker drops the copies it no longer holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "app_fixtures.h"
#include "dev_node.h"
#include "process_cluster.h"

namespace waverless::testing {
namespace {

using Clock = std::chrono::steady_clock;

double metric(NodeProcess& n, const std::string& name) {
  std::string body = n.call("GET", "/metrics", "", std::chrono::seconds(5)).body;
  auto at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atof(body.c_str() + at + name.size() + 2);
}

bool waitUntil(const std::function<bool()>& cond, std::chrono::seconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

TEST(Rereplication, ADeadWorkersCopiesMoveAndASecondDeathLosesNothing) {
  fs::path root = tempDir("rereplication");
  fs::path apps = root / "apps";
  copyApp(fs::path(WL_SOURCE_DIR) / "tests/apps/testkit",
          fs::path(WL_BUILD_DIR) / "tests/apps/testkit/app.wasm", apps / "testkit");
  auto nodes = makeProcessCluster(
      root, "shards: 16\nreplace_after: 2s\n",
      {"[meta, master]", "[meta, worker]", "[meta, worker]", "[worker]", "[worker]"}, apps);
  for (int i : {1, 2, 3, 4}) ASSERT_TRUE(nodes[i]->start());
  ASSERT_TRUE(nodes[0]->start()) << "see " << (root / "node1.log");
  for (int w : {1, 2, 3, 4}) {
    ASSERT_TRUE(waitUntil([&] { return nodes[w]->call("GET", "/api/apps/testkit").status == 200; },
                          std::chrono::seconds(30)))
        << "node " << w + 1 << " did not get testkit";
  }
  constexpr int kKeys = 60;
  for (int i = 0; i < kKeys; ++i) {
    auto r =
        nodes[0]->call("POST", "/testkit/put", "k" + std::to_string(i) + "=v" + std::to_string(i));
    ASSERT_EQ(r.body, "ok") << r.body;
  }
  EXPECT_EQ(metric(*nodes[1], "wl_shard_map_version"), 1);

  // Node 5 dies. After replace_after (2 s) plus detection, the master moves its groups.
  auto killed = Clock::now();
  nodes[4]->kill(SIGKILL);
  ASSERT_TRUE(waitUntil(
      [&] {
        for (int w : {1, 2, 3}) {
          if (metric(*nodes[w], "wl_shard_map_version") < 2) return false;
        }
        return true;
      },
      std::chrono::seconds(30)))
      << "no new shard map";
  // Every group's leader has moved its raft configuration to the map.
  ASSERT_TRUE(waitUntil(
      [&] {
        for (int w : {1, 2, 3}) {
          if (metric(*nodes[w], "wl_shard_groups_off_map") != 0) return false;
        }
        return true;
      },
      std::chrono::seconds(60)))
      << "groups did not reach the map's replicas";
  printf("node 5 down: copies moved and caught up %lld ms after the kill (replace_after 2 s)\n",
         static_cast<long long>(
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count()));
  EXPECT_EQ(metric(*nodes[3], "wl_shard_groups_hosted"), 16) << "node 4 holds every group now";

  // A second worker dies: every group still has two of its three voters.
  nodes[3]->kill(SIGKILL);
  for (int i = 0; i < kKeys; ++i) {
    http::ClientResponse r;
    for (int t = 0; t < 50; ++t) {
      r = nodes[0]->call("POST", "/testkit/get", "k" + std::to_string(i), std::chrono::seconds(10));
      if (r.status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(r.body, "v" + std::to_string(i)) << "key k" << i << " status " << r.status;
  }
  auto w = nodes[0]->call("POST", "/testkit/put", "after=yes", std::chrono::seconds(10));
  EXPECT_EQ(w.body, "ok");

  // Node 5 comes back: the map no longer places anything on it, so it drops its old copies.
  ASSERT_TRUE(nodes[4]->start());
  EXPECT_TRUE(waitUntil([&] { return metric(*nodes[4], "wl_shard_map_version") >= 2; },
                        std::chrono::seconds(10)));
  EXPECT_TRUE(waitUntil([&] { return metric(*nodes[4], "wl_shard_groups_hosted") == 0; },
                        std::chrono::seconds(10)));
  nodes.clear();
  fs::remove_all(root);
}

}  // namespace
}  // namespace waverless::testing
