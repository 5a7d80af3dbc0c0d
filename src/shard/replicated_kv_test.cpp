// ReplicatedKv over real RaftHosts and RocksDB stores. Nodes reach each other through a link that
// calls the other node's serve() in-process (the cluster's gRPC stream is tested with the cluster);
// a node marked down is unreachable, as a dead process would be.
#include "shard/replicated_kv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "kv/kv_store.h"

namespace waverless::shard {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint32_t kGroups = 8;

class InProcessLink : public ShardLink {
 public:
  void call(uint32_t node, ShardRequest request,
            absl::AnyInvocable<void(ShardReply)> done) override {
    ReplicatedKv* target = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!down_.contains(node) && nodes_.contains(node)) target = nodes_[node];
    }
    if (target == nullptr) {
      ShardReply r;
      r.status = absl::UnavailableError("node " + std::to_string(node) + " unreachable");
      return done(std::move(r));
    }
    // Through the wire format, as the peer stream carries it.
    std::optional<ShardRequest> decoded = decodeRequest(encodeRequest(request));
    ASSERT_TRUE(decoded.has_value());
    target->serve(std::move(*decoded), [done = std::move(done)](ShardReply r) mutable {
      std::optional<ShardReply> back = decodeReply(encodeReply(r));
      done(std::move(*back));
    });
  }
  void add(uint32_t node, ReplicatedKv* kv) {
    std::lock_guard lock(mu_);
    nodes_[node] = kv;
  }
  void setDown(uint32_t node, bool down) {
    std::lock_guard lock(mu_);
    if (down) {
      down_.insert(node);
    } else {
      down_.erase(node);
    }
  }

 private:
  std::mutex mu_;
  std::map<uint32_t, ReplicatedKv*> nodes_;
  std::set<uint32_t> down_;
};

struct TestNode {
  std::unique_ptr<kv::KvStore> store;
  std::unique_ptr<RaftHost> host;
  std::unique_ptr<ReplicatedKv> kv;
};

class ReplicatedKvTest : public ::testing::Test {
 protected:
  // Nodes 1-3 replicate every group; node 4 replicates none and only asks.
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("replicated_kv_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    timers_.start();
    std::vector<sched::WorkerInfo> workers;
    for (uint32_t i = 1; i <= 3; ++i) workers.push_back({sched::NodeId{i}, 1.0, true, 0});
    map_ = std::make_shared<const ShardMap>(*ShardMap::place(kGroups, 3, workers));
    nodes_.resize(4);
    std::vector<Replica> replicas;
    for (uint32_t i = 0; i < 4; ++i) {
      auto s = kv::KvStore::open({.dir = root_ / ("n" + std::to_string(i + 1))});
      ASSERT_TRUE(s.ok());
      nodes_[i].store = std::move(*s);
      if (i < 3) {
        RaftHostOptions o;
        o.node_id = i + 1;
        o.listen_address = "127.0.0.1:0";
        o.dir = root_ / ("raft" + std::to_string(i + 1));
        o.secret = "secret";
        o.election_timeout = 300ms;
        o.heartbeat_timeout = 30ms;
        nodes_[i].host = std::make_unique<RaftHost>(o, *nodes_[i].store);
        ASSERT_TRUE(nodes_[i].host->start().ok());
        replicas.push_back({i + 1, nodes_[i].host->address()});
      }
    }
    for (uint32_t i = 0; i < 3; ++i) {
      for (uint32_t g = 0; g < kGroups; ++g)
        ASSERT_TRUE(nodes_[i].host->openGroup(g, replicas).ok());
    }
    for (uint32_t i = 0; i < 4; ++i) {
      nodes_[i].kv = std::make_unique<ReplicatedKv>(i + 1, nodes_[i].host.get(), *nodes_[i].store,
                                                    link_, timers_, map_);
      link_.add(i + 1, nodes_[i].kv.get());
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) n.host.reset();
    timers_.stop();
    nodes_.clear();
    fs::remove_all(root_);
  }

  static ReplicatedKv::Clock::time_point in(std::chrono::milliseconds d) {
    return ReplicatedKv::Clock::now() + d;
  }
  absl::StatusOr<std::optional<std::string>> get(int node, const std::string& key) {
    std::promise<absl::StatusOr<std::optional<std::string>>> p;
    nodes_[node].kv->get("app", key, in(5s), [&](auto r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  absl::StatusOr<ProposalResult> write(int node, std::vector<KvOp> ops,
                                       std::chrono::milliseconds within = 5s) {
    std::promise<absl::StatusOr<ProposalResult>> p;
    nodes_[node].kv->write("app", std::move(ops), in(within),
                           [&](auto r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  fs::path root_;
  common::TimerQueue timers_;
  InProcessLink link_;
  std::shared_ptr<const ShardMap> map_;
  std::vector<TestNode> nodes_;
};

KvOp set(std::string key, std::string value) { return {OpKind::kSet, "", key, value}; }

TEST(ShardWire, RequestsAndRepliesRoundTripAndGarbageIsRefused) {
  ShardRequest q{
      ShardRequest::Kind::kWrite, 3, "app", "", 0, {KvOp{OpKind::kSet, "app", "k", "v"}}, 7};
  EXPECT_EQ(decodeRequest(encodeRequest(q)), q);
  EXPECT_EQ(decodeRequest(encodeRequest(q))->origin, 7u);
  ShardReply r;
  r.status = absl::FailedPreconditionError("not leader");
  r.leader_hint = 2;
  r.pairs = {{"a", "1"}};
  std::optional<ShardReply> back = decodeReply(encodeReply(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->status, r.status);
  EXPECT_EQ(back->leader_hint, 2u);
  EXPECT_EQ(back->pairs, r.pairs);
  EXPECT_FALSE(decodeRequest("").has_value());
  EXPECT_FALSE(decodeRequest(encodeRequest(q) + "x").has_value());
  EXPECT_FALSE(decodeReply(encodeReply(r).substr(1)).has_value());
}

TEST_F(ReplicatedKvTest, AnyNodeWritesAndEveryNodeReadsTheLatestValue) {
  for (int i = 0; i < 20; ++i) {
    auto w = write(i % 4, {set("k" + std::to_string(i), "v" + std::to_string(i))});
    ASSERT_TRUE(w.ok()) << w.status();
  }
  for (int n = 0; n < 4; ++n) {
    for (int i = 0; i < 20; ++i) {
      auto v = get(n, "k" + std::to_string(i));
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(*v, "v" + std::to_string(i));
    }
    auto missing = get(n, "nope");
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(*missing, std::nullopt);
  }
}

TEST_F(ReplicatedKvTest, CasAndIncrThroughAnyNode) {
  KvOp create{OpKind::kCas, "", "reg", "1"};  // expected: absent
  ASSERT_TRUE(write(3, {create})->status.ok());
  auto again = write(1, {create});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(again->value, "1");
  KvOp bump{OpKind::kIncr, "", "n"};
  bump.delta = 3;
  EXPECT_EQ(write(0, {bump})->value, "3");
  EXPECT_EQ(write(3, {bump})->value, "6");
}

TEST_F(ReplicatedKvTest, BatchesSplitByGroupAndScansMergeEveryGroup) {
  KvPairs pairs;
  for (int i = 0; i < 50; ++i)
    pairs.emplace_back("s/" + std::to_string(100 + i), std::to_string(i));
  std::promise<absl::Status> p;
  nodes_[3].kv->setBatch("app", pairs, {}, in(5s), [&](absl::Status s) { p.set_value(s); });
  ASSERT_TRUE(p.get_future().get().ok());
  std::promise<absl::StatusOr<KvPairs>> q;
  nodes_[0].kv->scan("app", "s/", 10, in(5s), [&](auto r) { q.set_value(std::move(r)); });
  absl::StatusOr<KvPairs> scanned = q.get_future().get();
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  ASSERT_EQ(scanned->size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*scanned)[i].first, "s/" + std::to_string(100 + i));
  // Keys of two groups in one atomic write are refused, not half-applied.
  std::string a = "x0", b;
  for (int i = 1; b.empty(); ++i) {
    std::string k = "x" + std::to_string(i);
    if (map_->groupOf("app", k) != map_->groupOf("app", a)) b = k;
  }
  EXPECT_EQ(write(0, {set(a, "1"), set(b, "2")}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReplicatedKvTest, WritesGoOnAfterALeaderDiesAndFailWhenNoMajorityIsLeft) {
  const uint32_t g = map_->groupOf("app", "hot");
  int leader = -1;
  for (int i = 0; i < 200 && leader < 0; ++i) {
    for (int n = 0; n < 3; ++n) {
      if (nodes_[n].host->leads(g)) leader = n;
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(write(3, {set("hot", "before")}).ok());
  link_.setDown(leader + 1, true);
  nodes_[leader].host.reset();
  auto t0 = std::chrono::steady_clock::now();
  auto w = write(3, {set("hot", "after")});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  int other = (leader + 1) % 3;
  EXPECT_EQ(*get(other, "hot"), "after");
  // With a second replica gone there is no majority: the call ends by its deadline, clearly.
  link_.setDown(other + 1, true);
  nodes_[other].host.reset();
  t0 = std::chrono::steady_clock::now();
  auto lost = write(3, {set("hot", "never")}, 1s);
  EXPECT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
}

}  // namespace
}  // namespace waverless::shard
