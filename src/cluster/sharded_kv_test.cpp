// Three workers in one process, each with its own RocksDB store, raft host and
// gRPC server: replicated keys reach every replica of their group whoever
// writes them, over the real peer stream; local keys stay with their writer.
#include "cluster/sharded_kv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "cluster/peers.h"
#include "kv/kv_store.h"
#include "net/peer.h"

namespace waverless::cluster {
namespace {

namespace fs = std::filesystem;
namespace pb = net::pb;
using namespace std::chrono_literals;
using KvPairs = worker::ClusterKv::KvPairs;

constexpr int kNodes = 3;

// The KV part of Cluster's router.
class KvRouter : public net::PeerHandler {
 public:
  std::atomic<ShardedKv*> kv{nullptr};
  void onEnvelope(pb::Envelope req, net::Reply reply) override {
    kv.load()->serve(req, std::move(reply));
  }
  pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest&) override { return {}; }
  pb::Ack installApp(const pb::AppPackage&) override { return {}; }
  absl::StatusOr<pb::AppPackage> fetchApp(const std::string& n) override {
    return absl::NotFoundError(n);
  }
  pb::Ack removeApp(const std::string&, net::Removal) override { return {}; }
  pb::Ack metaPut(const pb::MetaEntry&) override { return {}; }
};

struct TestNode {
  std::unique_ptr<kv::KvStore> store;
  std::unique_ptr<shard::RaftHost> host;
  KvRouter router;
  std::unique_ptr<net::RpcServer> server;
  std::unique_ptr<Peers> peers;
  std::unique_ptr<ShardedKv> kv;
};

template <class T>
T await(absl::AnyInvocable<void(absl::AnyInvocable<void(T)>)> start) {
  std::promise<T> p;
  start([&p](T v) { p.set_value(std::move(v)); });
  auto f = p.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  return f.get();
}

// Keys starting with "tmp_" are `durability: local`.
app::KeyDurability durabilityOf(std::string_view, std::string_view key) {
  return key.starts_with("tmp_") ? app::KeyDurability::kLocal : app::KeyDurability::kReplicated;
}

class ShardedKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sharded_kv_test." + std::to_string(getpid()));
    fs::remove_all(dir_);
    std::vector<sched::WorkerInfo> workers;
    for (int i = 0; i < kNodes; ++i) {
      auto store = kv::KvStore::open({.dir = dir_ / std::to_string(i + 1)});
      ASSERT_TRUE(store.ok()) << store.status();
      nodes_[i].store = std::move(*store);
      nodes_[i].server = std::make_unique<net::RpcServer>("127.0.0.1:0", nodes_[i].router);
      ASSERT_TRUE(nodes_[i].server->start().ok());
      shard::RaftHostOptions so;
      so.node_id = i + 1;
      so.listen_address = "127.0.0.1:0";
      so.dir = dir_ / ("raft" + std::to_string(i + 1));
      so.secret = "cluster secret";
      so.election_timeout = 300ms;
      so.heartbeat_timeout = 30ms;
      nodes_[i].host = std::make_unique<shard::RaftHost>(so, *nodes_[i].store);
      ASSERT_TRUE(nodes_[i].host->start().ok());
      NodeConfig n;
      n.id = i + 1;
      n.addr = n.bind = "127.0.0.1:" + std::to_string(nodes_[i].server->port());
      n.worker = true;
      config_.nodes.push_back(n);
      workers.push_back({sched::NodeId{uint32_t(i + 1)}, 1.0, true, 0});
    }
    map_ = std::make_shared<const shard::ShardMap>(*shard::ShardMap::place(16, 3, workers));
    std::vector<shard::Replica> replicas;
    for (int i = 0; i < kNodes; ++i)
      replicas.push_back({uint64_t(i + 1), nodes_[i].host->address()});
    for (uint32_t i = 0; i < kNodes; ++i) {
      for (uint32_t g = 0; g < map_->groups(); ++g) {
        ASSERT_TRUE(nodes_[i].host->openGroup(g, replicas).ok());
      }
      nodes_[i].peers = std::make_unique<Peers>(config_, i + 1);
      nodes_[i].kv =
          std::make_unique<ShardedKv>(i + 1,
                                      ShardedKvDeps{config_, *nodes_[i].peers, *nodes_[i].store,
                                                    durabilityOf, nodes_[i].host.get()},
                                      map_);
      ASSERT_TRUE(nodes_[i].kv->start().ok());
      nodes_[i].router.kv = nodes_[i].kv.get();
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n.peers) n.peers->shutdown();
      if (n.server) n.server->stop();
      if (n.kv) n.kv->stop();
      n.host.reset();
    }
    fs::remove_all(dir_);
  }

  absl::StatusOr<std::optional<std::string>> get(int via, const std::string& key) {
    return await<absl::StatusOr<std::optional<std::string>>>(
        [&](auto done) { nodes_[via].kv->get("a", key, std::move(done)); });
  }
  absl::Status set(int via, const std::string& key, const std::string& value) {
    return await<absl::Status>(
        [&](auto done) { nodes_[via].kv->set("a", key, value, {}, std::move(done)); });
  }
  std::optional<std::string> replicaHas(int node, const std::string& key) {
    auto v = nodes_[node].store->shardGet(map_->groupOf("a", key), "a", key);
    return v.ok() ? *v : std::nullopt;
  }

  fs::path dir_;
  ClusterConfig config_;
  std::shared_ptr<const shard::ShardMap> map_;
  TestNode nodes_[kNodes];
};

TEST_F(ShardedKvTest, AReplicatedKeyReachesEveryReplicaWhoeverWritesIt) {
  for (int i = 0; i < 12; ++i) {
    std::string k = "key" + std::to_string(i);
    ASSERT_TRUE(set(i % kNodes, k, "v" + std::to_string(i)).ok()) << k;
    EXPECT_FALSE(nodes_[0].kv->storedHere("a", k));
  }
  for (int n = 0; n < kNodes; ++n) {
    for (int i = 0; i < 12; ++i) {
      std::string k = "key" + std::to_string(i);
      EXPECT_EQ(*get(n, k), "v" + std::to_string(i));
      for (int w = 0; w < 100 && replicaHas(n, k) != "v" + std::to_string(i); ++w) {
        std::this_thread::sleep_for(20ms);
      }
      EXPECT_EQ(replicaHas(n, k), "v" + std::to_string(i)) << "node " << n + 1;
    }
  }
  ASSERT_TRUE(await<absl::Status>([&](auto done) {
                nodes_[2].kv->del("a", "key0", std::move(done));
              }).ok());
  EXPECT_EQ(*get(0, "key0"), std::nullopt);
  // The data node of a replicated key is its group's leader.
  uint32_t data = nodes_[0].kv->dataNode("a", "key1");
  EXPECT_TRUE(nodes_[data - 1].host->leads(map_->groupOf("a", "key1")));
}

TEST_F(ShardedKvTest, LocalKeysStayWithTheirWriterAndScansMergeBoth) {
  EXPECT_TRUE(nodes_[1].kv->storedHere("a", "tmp_1"));
  EXPECT_EQ(nodes_[1].kv->dataNode("a", "tmp_1"), 2u);
  ASSERT_TRUE(nodes_[1].store->set("a", "tmp_1", "scratch").ok());  // the runner's own write
  KvPairs batch = {{"tmp_2", "x"}, {"s_1", "one"}, {"s_2", "two"}};
  ASSERT_TRUE(await<absl::Status>([&](auto done) {
                nodes_[1].kv->setBatch("a", batch, {}, std::move(done));
              }).ok());
  EXPECT_EQ(*nodes_[1].store->get("a", "tmp_2"), "x");
  EXPECT_EQ(*nodes_[0].store->get("a", "tmp_2"), std::nullopt);
  auto scanned = await<absl::StatusOr<KvPairs>>(
      [&](auto done) { nodes_[1].kv->scan("a", "", 10, std::move(done)); });
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_EQ(*scanned,
            (KvPairs{{"s_1", "one"}, {"s_2", "two"}, {"tmp_1", "scratch"}, {"tmp_2", "x"}}));
  // Another node sees the replicated keys, not node 2's scratch.
  auto elsewhere = await<absl::StatusOr<KvPairs>>(
      [&](auto done) { nodes_[0].kv->scan("a", "", 10, std::move(done)); });
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(*elsewhere, (KvPairs{{"s_1", "one"}, {"s_2", "two"}}));
}

TEST_F(ShardedKvTest, AMalformedPeerRequestGetsAClearAnswer) {
  pb::Envelope bad;
  bad.set_shard_request("garbage");
  auto reply = await<pb::Envelope>([&](auto done) { nodes_[0].kv->serve(bad, std::move(done)); });
  auto decoded = shard::decodeReply(reply.shard_reply());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace waverless::cluster
