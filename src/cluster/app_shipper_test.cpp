// AppShipper on three in-process nodes: real gRPC on loopback, real RocksDB, real app registries
// (one wasm engine for the three). Each node's view of who holds the master role is the test's to
// set, so a node can be made to forward to a master that has meanwhile lost the role, as happens
// when the meta raft group elects another leader while a worker's view still names the old one.
// The cluster has no meta nodes: nothing is recorded in raft, pushes and removals carry it all.
#include "cluster/app_shipper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "cluster/peers.h"
#include "cluster/test_support.h"
#include "common/status_map.h"
#include "kv/kv_store.h"
#include "meta/app_registry.h"
#include "net/peer.h"
#include "wasm/engine.h"

namespace waverless::cluster {
namespace {

namespace fs = std::filesystem;
namespace pb = net::pb;

constexpr int kNodes = 3;
constexpr char kApp[] = "register";

struct ShipperNode;

// What Cluster's router does with the app-shipping calls; also counts what it refused as a
// deposed master, and runs the test's hook then (the sender's view catching up).
class Router : public testing::PeerHandlerBase {
 public:
  std::atomic<ShipperNode*> node{nullptr};
  std::atomic<int> refused{0};
  std::function<void()> on_refused;

  pb::Ack installApp(const pb::AppPackage& package) override;
  absl::StatusOr<pb::AppPackage> fetchApp(const std::string& name) override;
  pb::Ack removeApp(const std::string& name, net::Removal scope) override;

 private:
  pb::Ack counted(pb::Ack ack) {
    if (common::fromWire(ack.code(), ack.message()).code() ==
        absl::StatusCode::kFailedPrecondition) {
      refused++;
      if (on_refused) on_refused();
    }
    return ack;
  }
};

struct ShipperNode {
  std::unique_ptr<kv::KvStore> store;
  std::unique_ptr<meta::AppRegistry> registry;
  Router router;
  std::unique_ptr<net::RpcServer> server;
  std::unique_ptr<Peers> peers;
  std::atomic<uint32_t> master{1};  // this node's view of the master role
  std::unique_ptr<AppShipper> shipper;
};

pb::Ack Router::installApp(const pb::AppPackage& p) {
  return counted(node.load()->shipper->installApp(p));
}
absl::StatusOr<pb::AppPackage> Router::fetchApp(const std::string& name) {
  return node.load()->shipper->fetchApp(name);
}
pb::Ack Router::removeApp(const std::string& name, net::Removal scope) {
  return counted(node.load()->shipper->removeApp(name, scope));
}

class AppShipperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = testing::startEngine().release(); }
  static void TearDownTestSuite() { delete engine_; }

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("app_shipper_test." + std::to_string(getpid()));
    fs::remove_all(dir_);
    testing::copyRegisterApp(dir_ / "src");
    for (int i = 0; i < kNodes; ++i) {
      ShipperNode& n = nodes_[i];
      auto store = kv::KvStore::open({.dir = dir_ / ("kv" + std::to_string(i + 1))});
      ASSERT_TRUE(store.ok()) << store.status();
      n.store = std::move(*store);
      n.registry = std::make_unique<meta::AppRegistry>(dir_ / ("apps" + std::to_string(i + 1)),
                                                       *engine_, *n.store);
      n.server = std::make_unique<net::RpcServer>("127.0.0.1:0", n.router);
      ASSERT_TRUE(n.server->start().ok());
      NodeConfig c;
      c.id = i + 1;
      c.addr = c.bind = "127.0.0.1:" + std::to_string(n.server->port());
      c.worker = true;
      config_.nodes.push_back(c);
    }
    for (int i = 0; i < kNodes; ++i) {
      ShipperNode& n = nodes_[i];
      n.peers = std::make_unique<Peers>(config_, i + 1);
      fs::create_directories(dir_ / ("scratch" + std::to_string(i + 1)));
      n.shipper = std::make_unique<AppShipper>(
          i + 1, AppShipperDeps{.config = config_,
                                .peers = *n.peers,
                                .registry = *n.registry,
                                .raft = nullptr,
                                .scratch_dir = dir_ / ("scratch" + std::to_string(i + 1)),
                                .cache_dir = WL_TEST_CACHE,
                                .master = [&n] { return std::optional<uint32_t>(n.master.load()); },
                                .alive = [](uint32_t) { return true; }});
      ASSERT_TRUE(n.shipper->start().ok());
      n.router.node = &n;
    }
  }

  void TearDown() override {
    for (auto& n : nodes_) {
      if (n.peers) n.peers->shutdown();
      if (n.server) n.server->stop();
      if (n.shipper) n.shipper->stop();
    }
    fs::remove_all(dir_);
  }

  // Node 1 held the master role and lost it to node 3; node 2's view still names node 1 until
  // node 1 has refused it once.
  void deposeNode1() {
    nodes_[0].master = 3;
    nodes_[2].master = 3;
    nodes_[1].master = 1;
    nodes_[0].router.on_refused = [this] { nodes_[1].master = 3; };
  }
  bool hasApp(int i) { return nodes_[i].registry->find(kApp) != nullptr; }

  static wasm::Engine* engine_;
  fs::path dir_;
  ClusterConfig config_;
  ShipperNode nodes_[kNodes];
};

wasm::Engine* AppShipperTest::engine_ = nullptr;

TEST_F(AppShipperTest, DeployForwardedToADeposedMasterIsRefusedAndRetriedAtTheCurrentOne) {
  deposeNode1();
  auto app = nodes_[1].shipper->deploy(kApp, dir_ / "src");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(nodes_[0].router.refused, 1) << "node 1 refused the deploy it no longer masters";
  for (int i = 0; i < kNodes; ++i) EXPECT_TRUE(hasApp(i)) << "node " << i + 1;
}

TEST_F(AppShipperTest, RemovalForwardedToADeposedMasterIsRefusedAndRetriedAtTheCurrentOne) {
  for (auto& n : nodes_) n.master = 3;
  ASSERT_TRUE(nodes_[2].shipper->deploy(kApp, dir_ / "src").ok());
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(hasApp(i)) << "node " << i + 1;

  deposeNode1();
  absl::Status st = nodes_[1].shipper->remove(kApp);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(nodes_[0].router.refused, 1) << "node 1 refused the removal it no longer masters";
  // Removed by the current master everywhere, not by the deposed one on its own copy only.
  for (int i = 0; i < kNodes; ++i) EXPECT_FALSE(hasApp(i)) << "node " << i + 1;
}

TEST_F(AppShipperTest, TheMastersRemovalOfACopyIsAppliedByANodeThatIsNotMaster) {
  for (auto& n : nodes_) n.master = 3;
  ASSERT_TRUE(nodes_[2].shipper->deploy(kApp, dir_ / "src").ok());
  pb::Ack ack = nodes_[0].shipper->removeApp(kApp, net::Removal::kHere);
  EXPECT_EQ(ack.code(), 0) << ack.message();
  EXPECT_FALSE(hasApp(0));
  EXPECT_TRUE(hasApp(1));
  EXPECT_TRUE(hasApp(2));
  // And a removal for the cluster asked of it directly is refused, naming the master.
  pb::Ack refused = nodes_[1].shipper->removeApp(kApp, net::Removal::kCluster);
  EXPECT_EQ(common::fromWire(refused.code(), refused.message()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("the master is 3"), std::string::npos) << refused.message();
  EXPECT_TRUE(hasApp(1));
}

}  // namespace
}  // namespace waverless::cluster
