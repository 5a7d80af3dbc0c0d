// Two nodes in one process, each with its own RocksDB store and gRPC server:
// a key is stored on its straw2 owner whichever node writes it.
#include "cluster/remote_kv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>

#include "cluster/peers.h"
#include "kv/kv_store.h"
#include "net/peer.h"

namespace waverless::cluster {
namespace {

namespace fs = std::filesystem;
namespace pb = net::pb;
using ::testing::HasSubstr;
using KvPairs = worker::ClusterKv::KvPairs;

// The KV part of Cluster's router.
class KvRouter : public net::PeerHandler {
 public:
  std::atomic<RemoteKv*> kv{nullptr};
  void onEnvelope(pb::Envelope req, net::Reply reply) override {
    pb::Envelope out;
    out.set_id(req.id());
    kv.load()->serve(req.kv(), *out.mutable_kv_reply());
    reply(std::move(out));
  }
  pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest&) override { return {}; }
  pb::Ack installApp(const pb::AppPackage&) override { return {}; }
  absl::StatusOr<pb::AppPackage> fetchApp(const std::string& n) override {
    return absl::NotFoundError(n);
  }
  pb::Ack removeApp(const std::string&) override { return {}; }
  pb::Ack metaPut(const pb::MetaEntry&) override { return {}; }
};

struct TestNode {
  std::unique_ptr<kv::KvStore> store;
  KvRouter router;
  std::unique_ptr<net::RpcServer> server;
  std::unique_ptr<Peers> peers;
  std::unique_ptr<RemoteKv> kv;
};

template <class T>
T await(absl::AnyInvocable<void(absl::AnyInvocable<void(T)>)> start) {
  std::promise<T> p;
  start([&p](T v) { p.set_value(std::move(v)); });
  auto f = p.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  return f.get();
}

class RemoteKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("remote_kv_test." + std::to_string(getpid()));
    fs::remove_all(dir_);
    for (int i = 0; i < 2; ++i) {
      kv::KvOptions ko;
      ko.dir = dir_ / std::to_string(i + 1);
      ko.max_value_bytes = 1024;
      auto store = kv::KvStore::open(ko);
      ASSERT_TRUE(store.ok()) << store.status();
      nodes_[i].store = std::move(*store);
      nodes_[i].server = std::make_unique<net::RpcServer>("127.0.0.1:0", nodes_[i].router);
      ASSERT_TRUE(nodes_[i].server->start().ok());
      NodeConfig n;
      n.id = i + 1;
      n.addr = n.bind = "127.0.0.1:" + std::to_string(nodes_[i].server->port());
      n.worker = true;
      config_.nodes.push_back(n);
    }
    for (uint32_t i = 0; i < 2; ++i) {
      nodes_[i].peers = std::make_unique<Peers>(config_, i + 1);
      nodes_[i].kv = std::make_unique<RemoteKv>(config_, i + 1, *nodes_[i].peers, *nodes_[i].store);
      nodes_[i].router.kv = nodes_[i].kv.get();
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n.peers) n.peers->shutdown();
      if (n.server) n.server->stop();
    }
    fs::remove_all(dir_);
  }

  // A key of app "a" that node `owner` (1 or 2) stores.
  std::string keyOwnedBy(uint32_t owner, const std::string& stem = "k") {
    for (int i = 0;; ++i) {
      std::string k = stem + std::to_string(i);
      if (nodes_[0].kv->owner("a", k) == owner) return k;
    }
  }

  absl::StatusOr<std::optional<std::string>> get(int via, const std::string& key) {
    return await<absl::StatusOr<std::optional<std::string>>>(
        [&](auto done) { nodes_[via].kv->get("a", key, std::move(done)); });
  }
  absl::Status set(int via, const std::string& key, const std::string& value) {
    return await<absl::Status>(
        [&](auto done) { nodes_[via].kv->set("a", key, value, std::move(done)); });
  }

  fs::path dir_;
  ClusterConfig config_;
  TestNode nodes_[2];
};

TEST_F(RemoteKvTest, EveryNodeAgreesOnTheOwnerAndOnlyTheOwnerStoresHere) {
  int owned[2] = {0, 0};
  for (int i = 0; i < 200; ++i) {
    std::string k = "key" + std::to_string(i);
    uint32_t o = nodes_[0].kv->owner("a", k);
    ASSERT_EQ(o, nodes_[1].kv->owner("a", k));
    ASSERT_TRUE(o == 1 || o == 2);
    EXPECT_EQ(nodes_[0].kv->storedHere("a", k), o == 1);
    EXPECT_EQ(nodes_[1].kv->storedHere("a", k), o == 2);
    EXPECT_EQ(nodes_[0].kv->dataNode("a", k), o);
    ++owned[o - 1];
  }
  // Equal weights: both nodes own a fair share.
  EXPECT_GT(owned[0], 60);
  EXPECT_GT(owned[1], 60);
}

TEST_F(RemoteKvTest, AKeyIsStoredOnItsOwnerWhoeverWritesIt) {
  std::string remote = keyOwnedBy(2);
  ASSERT_TRUE(set(0, remote, "v2").ok());
  EXPECT_EQ(*nodes_[1].store->get("a", remote), "v2");          // on the owner
  EXPECT_EQ(*nodes_[0].store->get("a", remote), std::nullopt);  // not on the writer
  EXPECT_EQ(*get(0, remote), "v2");
  EXPECT_EQ(*get(1, remote), "v2");

  std::string local = keyOwnedBy(1);
  ASSERT_TRUE(set(0, local, "v1").ok());
  EXPECT_EQ(*nodes_[0].store->get("a", local), "v1");
  EXPECT_EQ(*get(1, local), "v1");

  ASSERT_TRUE(await<absl::Status>([&](auto done) {
                nodes_[0].kv->del("a", remote, std::move(done));
              }).ok());
  EXPECT_EQ(*get(0, remote), std::nullopt);
  EXPECT_EQ(*nodes_[1].store->get("a", remote), std::nullopt);
}

TEST_F(RemoteKvTest, TheOwnersStoreErrorCrossesTheWireWithItsCode) {
  std::string big(2048, 'x');
  absl::Status st = set(0, keyOwnedBy(2), big);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;  // not Unavailable: no retry
}

TEST_F(RemoteKvTest, BatchGoesToEachOwnerAndScanMergesInKeyOrder) {
  KvPairs pairs;
  for (int i = 0; i < 20; ++i) pairs.emplace_back("p" + std::to_string(100 + i), std::to_string(i));
  ASSERT_TRUE(await<absl::Status>([&](auto done) {
                nodes_[1].kv->setBatch("a", pairs, std::move(done));
              }).ok());
  int on[2] = {0, 0};
  for (const auto& [k, v] : pairs) {
    uint32_t o = nodes_[0].kv->owner("a", k);
    EXPECT_EQ(*nodes_[o - 1].store->get("a", k), v) << k;
    EXPECT_EQ(*nodes_[2 - o].store->get("a", k), std::nullopt) << k;
    ++on[o - 1];
  }
  ASSERT_GT(on[0], 0);
  ASSERT_GT(on[1], 0);

  auto scanned = await<absl::StatusOr<KvPairs>>(
      [&](auto done) { nodes_[0].kv->scan("a", "p1", 7, std::move(done)); });
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_EQ(*scanned, KvPairs(pairs.begin(), pairs.begin() + 7));
}

TEST_F(RemoteKvTest, AnUnreachableOwnerIsUnavailableAndNamed) {
  std::string remote = keyOwnedBy(2);
  nodes_[1].server->stop();
  auto got = get(0, remote);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("node 2"));
  // A scan would miss node 2's keys: it fails rather than answer partly.
  auto scanned = await<absl::StatusOr<KvPairs>>(
      [&](auto done) { nodes_[0].kv->scan("a", "", 10, std::move(done)); });
  EXPECT_EQ(scanned.status().code(), absl::StatusCode::kUnavailable);
  // Keys on the live node are unaffected.
  EXPECT_TRUE(set(0, keyOwnedBy(1), "x").ok());
}

TEST_F(RemoteKvTest, ServeAnswersEachOpFromTheStore) {
  pb::KvRequest req;
  req.set_app("a");
  req.set_key("");  // an empty key is refused by the store
  req.set_op(pb::KvRequest::SET);
  pb::KvReply reply;
  nodes_[0].kv->serve(req, reply);
  EXPECT_EQ(reply.code(), static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(reply.message().empty());
}

}  // namespace
}  // namespace waverless::cluster
