// Real RaftHosts in one process: libraft with the shared log store in temp dirs, every group's
// traffic through each host's one RaftMux port on loopback, state applied to real RocksDB stores.
// Every wait is bounded.
#include "shard/raft_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "kv/kv_store.h"

namespace waverless::shard {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr uint32_t kGroups = 4;

struct TestNode {
  std::unique_ptr<kv::KvStore> store;
  std::unique_ptr<RaftHost> host;
};

class RaftHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("raft_host_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override {
    for (auto& n : nodes_) n.host.reset();
    nodes_.clear();
    fs::remove_all(root_);
  }

  RaftHostOptions optionsFor(uint64_t id, const std::string& address,
                             const std::string& secret = "s3cret") {
    RaftHostOptions o;
    o.node_id = id;
    o.listen_address = address;
    o.dir = root_ / ("n" + std::to_string(id)) / "raft";
    o.secret = secret;
    o.election_timeout = 300ms;
    o.heartbeat_timeout = 30ms;
    o.snapshot_threshold = 64;
    o.snapshot_trailing = 16;
    // Off: most tests propose to the leader they found; the balancing test turns it on.
    o.balance_leaders_after = balance_after_;
    return o;
  }

  // Starts n hosts on free ports and opens kGroups groups replicated on all of them.
  std::chrono::milliseconds balance_after_{0};

  void startCluster(int n) {
    nodes_.resize(n);
    for (int i = 0; i < n; ++i) startNode(i, "127.0.0.1:0");
    for (int i = 0; i < n; ++i) replicas_.push_back({uint64_t(i + 1), nodes_[i].host->address()});
    for (int i = 0; i < n; ++i) openGroups(i);
  }
  void startNode(int i, const std::string& address, const std::string& secret = "s3cret") {
    TestNode& node = nodes_[i];
    if (!node.store) {
      auto s = kv::KvStore::open({.dir = root_ / ("n" + std::to_string(i + 1)) / "kv"});
      ASSERT_TRUE(s.ok()) << s.status();
      node.store = std::move(*s);
    }
    node.host = std::make_unique<RaftHost>(optionsFor(i + 1, address, secret), *node.store);
    ASSERT_TRUE(node.host->start().ok());
  }
  void openGroups(int i) {
    for (uint32_t g = 0; g < kGroups; ++g) {
      absl::Status s = nodes_[i].host->openGroup(g, replicas_);
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  // Restarts node i on its old address (so the others' configurations still reach it).
  void restart(int i) {
    nodes_[i].host.reset();
    startNode(i, replicas_[i].address);
    openGroups(i);
  }

  // The index of the node leading group g, as all live nodes agree; -1 after the deadline.
  int leaderOf(uint32_t g, std::chrono::milliseconds within = 5s) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].host && nodes_[i].host->leads(g)) return static_cast<int>(i);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  absl::StatusOr<ProposalResult> propose(int node, uint32_t g, std::vector<KvOp> ops) {
    std::promise<absl::StatusOr<ProposalResult>> p;
    auto f = p.get_future();
    nodes_[node].host->propose(
        g, std::move(ops), [&p](absl::StatusOr<ProposalResult> r) { p.set_value(std::move(r)); });
    if (f.wait_for(10s) != std::future_status::ready) return absl::DeadlineExceededError("test");
    return f.get();
  }
  // Proposes on whichever node leads g, retrying across elections.
  absl::StatusOr<ProposalResult> write(uint32_t g, std::vector<KvOp> ops) {
    absl::StatusOr<ProposalResult> r = absl::UnavailableError("no leader");
    for (int attempt = 0; attempt < 50; ++attempt) {
      int leader = leaderOf(g);
      if (leader < 0) continue;
      r = propose(leader, g, ops);
      if (r.ok() || r.status().code() != absl::StatusCode::kFailedPrecondition) return r;
      std::this_thread::sleep_for(20ms);
    }
    return r;
  }
  std::optional<std::string> storedAt(int node, uint32_t g, const std::string& key) {
    auto v = nodes_[node].store->shardGet(g, "app", key);
    return v.ok() ? *v : std::nullopt;
  }
  bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds within = 5s) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return cond();
  }

  fs::path root_;
  std::vector<TestNode> nodes_;
  std::vector<Replica> replicas_;
};

KvOp set(std::string key, std::string value) { return {OpKind::kSet, "app", key, value}; }
KvOp incr(std::string key, int64_t delta) {
  KvOp op{OpKind::kIncr, "app", key};
  op.delta = delta;
  return op;
}

TEST_F(RaftHostTest, EveryGroupElectsAndReplicatesToAllReplicas) {
  startCluster(3);
  for (uint32_t g = 0; g < kGroups; ++g) {
    ASSERT_GE(leaderOf(g), 0) << "group " << g;
    auto r = write(g, {set("k" + std::to_string(g), "v" + std::to_string(g))});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  for (int n = 0; n < 3; ++n) {
    for (uint32_t g = 0; g < kGroups; ++g) {
      EXPECT_TRUE(eventually([&] {
        return storedAt(n, g, "k" + std::to_string(g)) == "v" + std::to_string(g);
      })) << "node "
          << n + 1 << " group " << g;
      // Groups do not see each other's keys.
      EXPECT_EQ(storedAt(n, g, "k" + std::to_string((g + 1) % kGroups)), std::nullopt);
    }
  }
  EXPECT_EQ(nodes_[0].host->stats().handshakes_refused, 0u);
}

TEST_F(RaftHostTest, AFollowerRefusesProposalsAndNamesTheLeader) {
  startCluster(3);
  int leader = leaderOf(0);
  ASSERT_GE(leader, 0);
  int follower = (leader + 1) % 3;
  auto r = propose(follower, 0, {set("a", "b")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("node " + std::to_string(leader + 1)));
  auto missing = propose(leader, 99, {set("a", "b")});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RaftHostTest, ConcurrentProposalsShareEntriesAndIncrCountsExactly) {
  startCluster(3);
  int leader = leaderOf(1);
  ASSERT_GE(leader, 0);
  constexpr int kCalls = 400;
  std::atomic<int> ok{0}, done{0};
  for (int i = 0; i < kCalls; ++i) {
    nodes_[leader].host->propose(1, {incr("counter", 1)}, [&](absl::StatusOr<ProposalResult> r) {
      if (r.ok() && r->status.ok()) ok.fetch_add(1);
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(eventually([&] { return done.load() == kCalls; }, 20s));
  EXPECT_EQ(ok.load(), kCalls);
  for (int n = 0; n < 3; ++n) {
    EXPECT_TRUE(eventually([&] { return storedAt(n, 1, "counter") == std::to_string(kCalls); }))
        << "node " << n + 1 << " has " << storedAt(n, 1, "counter").value_or("nothing");
  }
  RaftHost::Stats s = nodes_[leader].host->stats();
  EXPECT_EQ(s.proposals, uint64_t{kCalls});
  EXPECT_LT(s.entries, s.proposals) << "no batching";
}

TEST_F(RaftHostTest, ReadBarrierOnTheLeaderSeesEveryCommittedWrite) {
  startCluster(3);
  ASSERT_TRUE(write(2, {set("r", "1")}).ok());
  int leader = leaderOf(2);
  std::promise<absl::Status> p;
  nodes_[leader].host->readBarrier(2, [&](absl::Status s) { p.set_value(s); });
  ASSERT_TRUE(p.get_future().get().ok());
  EXPECT_EQ(storedAt(leader, 2, "r"), "1");
  std::promise<absl::Status> q;
  nodes_[(leader + 1) % 3].host->readBarrier(2, [&](absl::Status s) { q.set_value(s); });
  EXPECT_EQ(q.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RaftHostTest, LosingALeaderElectsAnotherAndTheRestartedNodeCatchesUp) {
  startCluster(3);
  ASSERT_TRUE(write(0, {incr("n", 1)}).ok());
  int old = leaderOf(0);
  ASSERT_GE(old, 0);
  nodes_[old].host.reset();  // its RocksDB stays: like a process restart with its disk
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    auto r = write(0, {incr("n", 1)});
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
  }
  auto failover = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(failover, 10s);
  int now = leaderOf(0);
  ASSERT_GE(now, 0);
  EXPECT_NE(now, old);
  restart(old);
  // It catches up (by log or, past the snapshot threshold, by snapshot) and replays nothing twice.
  EXPECT_TRUE(eventually([&] { return storedAt(old, 0, "n") == "101"; }, 10s))
      << storedAt(old, 0, "n").value_or("nothing");
  // All three restart: the counter survives exactly.
  for (int n = 0; n < 3; ++n) restart(n);
  ASSERT_TRUE(write(0, {incr("n", 1)}).ok());
  for (int n = 0; n < 3; ++n) {
    EXPECT_TRUE(eventually([&] { return storedAt(n, 0, "n") == "102"; }, 10s))
        << "node " << n + 1 << ": " << storedAt(n, 0, "n").value_or("nothing");
  }
}

TEST_F(RaftHostTest, AGroupFolderInLibraftsSegmentFormatIsRefusedNotRebootstrapped) {
  nodes_.resize(1);
  startNode(0, "127.0.0.1:0");
  replicas_.push_back({1, nodes_[0].host->address()});
  fs::path old = root_ / "n1" / "raft" / "g2";
  fs::create_directories(old);
  { std::ofstream(old / "open-1") << "segment"; }
  absl::Status s = nodes_[0].host->openGroup(2, replicas_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("segment format"));
  EXPECT_TRUE(nodes_[0].host->openGroup(1, replicas_).ok());  // the others still open
}

TEST_F(RaftHostTest, APeerWithoutTheSecretIsRefused) {
  nodes_.resize(3);
  startNode(0, "127.0.0.1:0");
  startNode(1, "127.0.0.1:0");
  startNode(2, "127.0.0.1:0", "wrong secret");
  for (int i = 0; i < 3; ++i) replicas_.push_back({uint64_t(i + 1), nodes_[i].host->address()});
  for (int i = 0; i < 3; ++i) openGroups(i);
  // Nodes 1 and 2 form a majority; node 3 can neither vote nor receive entries.
  ASSERT_TRUE(write(0, {set("x", "1")}).ok());
  EXPECT_TRUE(eventually([&] { return nodes_[2].host->stats().handshakes_refused > 0; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(storedAt(2, 0, "x"), std::nullopt);
  EXPECT_FALSE(nodes_[2].host->leads(0));
}

}  // namespace
}  // namespace waverless::shard

namespace waverless::shard {
namespace {

// Re-replication: node 3 dies; the map puts group 0 on node 4 instead. The leader adds node 4,
// which catches up (by snapshot: more entries than the snapshot threshold were written), votes,
// and node 3 leaves the configuration. Then the group survives losing one of its first replicas.
// Node 3, back, drops its stale copy.
// Raft keeps a leader until it fails, so a node that comes back (or comes late) would lead
// nothing and the others would do all the leader work. Here node 3 opens its groups only after
// nodes 1 and 2 elected every leader between them; the leaders hand it its share.
TEST_F(RaftHostTest, ANodeThatJoinsLateIsHandedItsShareOfLeaders) {
  balance_after_ = 500ms;
  nodes_.resize(3);
  for (int i = 0; i < 3; ++i) startNode(i, "127.0.0.1:0");
  for (int i = 0; i < 3; ++i) replicas_.push_back({uint64_t(i + 1), nodes_[i].host->address()});
  openGroups(0);
  openGroups(1);
  for (uint32_t g = 0; g < kGroups; ++g) {
    int leader = leaderOf(g);
    ASSERT_GE(leader, 0) << "group " << g;
    ASSERT_NE(leader, 2);
  }
  // Node 3 is not answering for its groups yet: no leadership is handed to it.
  std::this_thread::sleep_for(1500ms);
  for (uint32_t g = 0; g < kGroups; ++g) ASSERT_FALSE(nodes_[2].host->leads(g));
  openGroups(2);
  auto spread = [&] {
    int led[3] = {};
    for (uint32_t g = 0; g < kGroups; ++g) {
      for (int i = 0; i < 3; ++i) led[i] += nodes_[i].host->leads(g) ? 1 : 0;
    }
    return *std::max_element(led, led + 3) - *std::min_element(led, led + 3);
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (spread() > 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_LE(spread(), 1);
  bool node3_leads = false;
  for (uint32_t g = 0; g < kGroups; ++g) node3_leads = node3_leads || nodes_[2].host->leads(g);
  EXPECT_TRUE(node3_leads);
  EXPECT_GE(nodes_[0].host->stats().leader_transfers + nodes_[1].host->stats().leader_transfers,
            1u);
  for (uint32_t g = 0; g < kGroups; ++g) {
    auto r = write(g, {set("after", "handover")});
    EXPECT_TRUE(r.ok()) << r.status();
  }
}

// Follow the writer: every write to the groups enters at node 3 (as if the requests that make
// them came in there), so the leaders hand it the groups, though that leaves the counts uneven;
// and it keeps them (the count rule alone would hand two thirds of them back).
TEST_F(RaftHostTest, GroupsMoveToTheNodeTheirWritesEnterAtAndStay) {
  balance_after_ = 300ms;
  startCluster(3);
  const uint64_t writer = 3;
  auto writeFrom = [&](uint32_t g, int i) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      int leader = leaderOf(g);
      if (leader < 0) continue;
      std::promise<absl::StatusOr<ProposalResult>> p;
      auto f = p.get_future();
      nodes_[leader].host->propose(
          g, {set("k" + std::to_string(i), "v")},
          [&p](absl::StatusOr<ProposalResult> r) { p.set_value(std::move(r)); }, writer);
      if (f.wait_for(10s) != std::future_status::ready) return false;
      if (f.get().ok()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  auto ledByWriter = [&] {
    size_t n = 0;
    for (uint32_t g = 0; g < kGroups; ++g) n += nodes_[2].host->leads(g) ? 1 : 0;
    return n;
  };
  // Writes keep coming (about 30 per group per second, past the 20/s floor) until every group
  // moved.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (int i = 0; ledByWriter() < kGroups && std::chrono::steady_clock::now() < deadline; ++i) {
    for (uint32_t g = 0; g < kGroups; ++g) ASSERT_TRUE(writeFrom(g, i));
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(ledByWriter(), kGroups);
  uint64_t followed = 0;
  for (int i = 0; i < 2; ++i) followed += nodes_[i].host->stats().follow_transfers;
  EXPECT_GE(followed, 1u);
  // While the writes go on, the count rule does not hand them back. (Before the first window
  // closed, it may have handed some away.)
  const uint64_t handed = nodes_[2].host->stats().leader_transfers;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       std::chrono::steady_clock::now() < until;) {
    for (uint32_t g = 0; g < kGroups; ++g) ASSERT_TRUE(writeFrom(g, 0));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(ledByWriter(), kGroups);
  EXPECT_EQ(nodes_[2].host->stats().leader_transfers, handed);
}

TEST_F(RaftHostTest, AReplacementReplicaCatchesUpAndTakesTheDeadOnesPlace) {
  startCluster(3);
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(write(0, {set("k" + std::to_string(i), "v" + std::to_string(i))}).ok());
  }
  nodes_[2].host.reset();  // node 3 is down
  nodes_.resize(4);
  startNode(3, "127.0.0.1:0");
  std::vector<Replica> wanted = {replicas_[0], replicas_[1], {4, nodes_[3].host->address()}};
  ASSERT_TRUE(nodes_[3].host->openGroup(0, wanted, /*bootstrap=*/false).ok());
  for (int i : {0, 1, 3}) nodes_[i].host->setReplicas(0, wanted);
  int leader = leaderOf(0);
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(eventually(
      [&] {
        auto v = nodes_[leader].host->votersOf(0);
        std::sort(v.begin(), v.end());
        return v == std::vector<uint64_t>{1, 2, 4};
      },
      20s))
      << "the group did not move to nodes 1, 2, 4";
  EXPECT_TRUE(eventually([&] { return storedAt(3, 0, "k149") == "v149"; }));
  for (int i = 0; i < 150; ++i) {
    EXPECT_EQ(storedAt(3, 0, "k" + std::to_string(i)), "v" + std::to_string(i));
  }
  // Node 1 or 2 goes too: with 4 voting, the group still has a majority of its three.
  nodes_[leader == 0 ? 1 : 0].host.reset();
  auto r = write(0, {set("after", "yes")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(eventually([&] { return storedAt(3, 0, "after") == "yes"; }));

  // Node 3 comes back with its old copy; the map no longer places group 0 there.
  startNode(2, replicas_[2].address);
  ASSERT_TRUE(nodes_[2].host->openGroup(0, replicas_).ok());
  EXPECT_EQ(storedAt(2, 0, "k0"), "v0");
  nodes_[2].host->dropGroup(0);
  EXPECT_TRUE(eventually([&] { return !storedAt(2, 0, "k0").has_value(); }));
  EXPECT_TRUE(eventually([&] { return nodes_[2].host->votersOf(0).empty(); }));
  EXPECT_FALSE(fs::exists(root_ / "n3" / "raft" / "g0"));
}

}  // namespace
}  // namespace waverless::shard
