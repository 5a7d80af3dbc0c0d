// Three real RaftLog nodes in one process: libraft with its libuv storage in temp dirs and its
// TCP transport on loopback ports. Every wait is bounded.
#include "meta/raft_log.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

namespace waverless::meta {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr int kNodes = 3;

bool portFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// Consecutive free ports below the ephemeral range, so no outgoing connection can take them.
int pickBasePort() {
  std::mt19937 rng(
      static_cast<unsigned>(getpid()) ^
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 200; ++attempt) {
    int base = dist(rng);
    bool all = true;
    for (int i = 0; i < kNodes && all; ++i) all = portFree(base + i);
    if (all) return base;
  }
  return -1;
}

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// What one node's onApply callback has seen, replayed into a map.
struct AppliedView {
  std::mutex mu;
  std::map<std::string, std::string> map;
  size_t events = 0;
};

class RaftLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/raft_log_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    int base = pickBasePort();
    ASSERT_GT(base, 0) << "no free loopback ports";
    for (int i = 0; i < kNodes; ++i) {
      peers_.push_back({static_cast<uint64_t>(i + 1), "127.0.0.1:" + std::to_string(base + i)});
      views_.push_back(std::make_unique<AppliedView>());
    }
    nodes_.resize(kNodes);
  }

  void TearDown() override {
    nodes_.clear();  // stops them
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  RaftLogOptions options(int i) const {
    RaftLogOptions o;
    o.id = peers_[i].id;
    o.address = peers_[i].address;
    o.peers = peers_;
    o.dir = root_ / ("node" + std::to_string(o.id));
    // Short enough for a quick suite, long enough for a slow shared machine.
    o.election_timeout = 600ms;
    o.heartbeat_timeout = 60ms;
    o.install_snapshot_timeout = 1500ms;
    o.snapshot_threshold = threshold_;
    o.snapshot_trailing = trailing_;
    return o;
  }

  // A fresh RaftLog on node i's dir and port, with onApply recording into views_[i].
  void create(int i) {
    nodes_[i] = std::make_unique<RaftLog>(options(i));
    AppliedView* view = views_[i].get();
    nodes_[i]->onApply([view](const std::string& k, const std::optional<std::string>& v) {
      std::lock_guard lock(view->mu);
      ++view->events;
      if (v) {
        view->map[k] = *v;
      } else {
        view->map.erase(k);
      }
    });
  }

  void startAll() {
    for (int i = 0; i < kNodes; ++i) {
      create(i);
      ASSERT_TRUE(nodes_[i]->start().ok()) << "node " << i;
    }
  }

  bool running(int i) const { return nodes_[i] != nullptr && !stopped_.contains(i); }

  // Index of the single leader once exactly one running node leads and every running node
  // names it; -1 on timeout.
  int waitForLeader(std::chrono::milliseconds timeout = 10s) {
    int found = -1;
    waitFor(
        [&] {
          found = -1;
          for (int i = 0; i < kNodes; ++i) {
            if (!running(i) || !nodes_[i]->isLeader()) continue;
            if (found != -1) return false;
            found = i;
          }
          if (found == -1) return false;
          for (int i = 0; i < kNodes; ++i) {
            if (!running(i)) continue;
            auto l = nodes_[i]->leader();
            if (!l || *l != peers_[found]) return false;
          }
          return true;
        },
        timeout);
    if (found == -1 || !nodes_[found]->isLeader()) return -1;
    return found;
  }

  // Puts through whichever node leads, retrying across elections (a retried put or erase is
  // harmless: nothing else writes the key in between).
  absl::Status write(const std::string& key, const std::optional<std::string>& value) {
    absl::Status last = absl::DeadlineExceededError("no leader");
    auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
      int l = waitForLeader(5s);
      if (l >= 0) {
        last = value ? nodes_[l]->put(key, *value, 3s) : nodes_[l]->erase(key, 3s);
        if (last.ok()) return last;
      }
      std::this_thread::sleep_for(50ms);
    }
    return last;
  }

  bool converged(const std::map<std::string, std::string>& want,
                 std::chrono::milliseconds timeout = 15s) {
    return waitFor(
        [&] {
          for (int i = 0; i < kNodes; ++i) {
            if (running(i) && nodes_[i]->snapshot() != want) return false;
          }
          return true;
        },
        timeout);
  }

  std::map<std::string, std::string> applied(int i) {
    std::lock_guard lock(views_[i]->mu);
    return views_[i]->map;
  }

  bool hasSnapshotFile(int i) const {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(options(i).dir, ec)) {
      if (e.path().filename().string().starts_with("snapshot-")) return true;
    }
    return false;
  }

  std::filesystem::path root_;
  std::vector<RaftPeer> peers_;
  std::vector<std::unique_ptr<RaftLog>> nodes_;
  std::vector<std::unique_ptr<AppliedView>> views_;
  std::set<int> stopped_;
  uint32_t threshold_ = 1024, trailing_ = 128;
};

TEST_F(RaftLogTest, RejectsBadOptionsAndWorkBeforeStart) {
  RaftLogOptions o = options(0);
  o.peers = {peers_[1], peers_[2]};
  RaftLog missing_self(o);
  absl::Status s = missing_self.start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("must include this node"));

  RaftLog idle(options(0));
  EXPECT_EQ(idle.put("k", "v", 1s).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(idle.isLeader());
  EXPECT_EQ(idle.leader(), std::nullopt);
  idle.stop();  // never started: a no-op
}

TEST_F(RaftLogTest, StartFailsCleanlyWhenThePortIsTaken) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(
      static_cast<uint16_t>(std::stoi(peers_[0].address.substr(peers_[0].address.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  RaftLog node(options(0));
  absl::Status s = node.start();
  close(fd);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("raft start")) << s;
  EXPECT_FALSE(node.isLeader());
  EXPECT_EQ(node.put("k", "v", 1s).code(), absl::StatusCode::kUnavailable);
  node.stop();
  // The dir was bootstrapped by the failed attempt; a later start uses it as is.
  ASSERT_TRUE(node.start().ok());
  node.stop();
}

TEST_F(RaftLogTest, ElectsOneLeaderAndReplicates) {
  startAll();
  int l = waitForLeader();
  ASSERT_GE(l, 0) << "no single leader within 10s";

  ASSERT_TRUE(nodes_[l]->put("app/echo", "v1", 5s).ok());
  EXPECT_EQ(nodes_[l]->get("app/echo"), "v1");  // applied locally before put() returns
  ASSERT_TRUE(converged({{"app/echo", "v1"}}));
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(nodes_[i]->get("app/echo"), "v1") << "node " << i;

  int f = (l + 1) % kNodes;
  absl::Status s = nodes_[f]->put("app/other", "x", 5s);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr(peers_[l].address));
  EXPECT_EQ(nodes_[f]->leader(), peers_[l]);
  EXPECT_EQ(nodes_[f]->get("app/other"), std::nullopt);

  ASSERT_TRUE(nodes_[l]->erase("app/echo", 5s).ok());
  ASSERT_TRUE(converged({}));
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(applied(i), nodes_[i]->snapshot()) << "node " << i;
}

TEST_F(RaftLogTest, ManyWritesConvergeThroughSnapshots) {
  threshold_ = 64;
  trailing_ = 16;
  startAll();
  ASSERT_GE(waitForLeader(), 0);

  std::map<std::string, std::string> want;
  for (int i = 0; i < 200; ++i) {
    if (i % 5 == 4) {
      std::string key = "k" + std::to_string((i * 7) % 37);
      ASSERT_TRUE(write(key, std::nullopt).ok()) << "erase " << i;
      want.erase(key);
    } else {
      std::string key = "k" + std::to_string(i % 37);
      std::string value = "v" + std::to_string(i);
      ASSERT_TRUE(write(key, value).ok()) << "put " << i;
      want[key] = value;
    }
  }
  ASSERT_TRUE(converged(want));
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(applied(i), want) << "onApply stream of node " << i;
    EXPECT_TRUE(hasSnapshotFile(i)) << "node " << i << " never compacted its log";
  }
}

// Payloads of every length modulo 8, binary bytes and empty values, written concurrently, must
// arrive intact, including at a follower that catches up from the log: it receives many entries
// in one AppendEntries, where libraft 0.15 misplaces unpadded payloads after the first.
TEST_F(RaftLogTest, ConcurrentWritesOfEverySizeConverge) {
  startAll();
  int l = waitForLeader();
  ASSERT_GE(l, 0);
  int lagging = (l + 1) % kNodes;
  nodes_[lagging]->stop();
  stopped_.insert(lagging);
  ASSERT_EQ(waitForLeader(), l);
  constexpr int kThreads = 4, kPerThread = 40;
  std::vector<std::map<std::string, std::string>> wrote(kThreads);
  std::vector<std::string> failures(kThreads);
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string key = "t" + std::to_string(t) + std::string(static_cast<size_t>(i % 9), 'k');
          key.push_back(static_cast<char>(i));  // includes a NUL byte
          std::string value(static_cast<size_t>((i * 7 + t) % 23), static_cast<char>('a' + t));
          if (absl::Status s = nodes_[l]->put(key, value, 5s); !s.ok()) {
            failures[t] = std::string(s.message());
            return;
          }
          wrote[t][key] = value;
        }
      });
    }
  }
  std::map<std::string, std::string> want;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(failures[t], "") << "writer " << t;
    want.insert(wrote[t].begin(), wrote[t].end());
  }
  ASSERT_EQ(want.size(), static_cast<size_t>(kThreads * kPerThread));
  ASSERT_TRUE(converged(want));
  ASSERT_TRUE(nodes_[lagging]->start().ok());
  stopped_.erase(lagging);
  ASSERT_TRUE(converged(want)) << "lagging node did not catch up from the log";
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(applied(i), want) << "node " << i;
}

TEST_F(RaftLogTest, FailoverElectsNewLeaderAndRestartedNodeCatchesUp) {
  // The restarted node misses more than threshold + trailing entries: it must be sent a snapshot.
  threshold_ = 64;
  trailing_ = 16;
  startAll();
  int old = waitForLeader();
  ASSERT_GE(old, 0);
  ASSERT_TRUE(write("before", "1").ok());
  ASSERT_TRUE(converged({{"before", "1"}}));

  nodes_[old]->stop();
  stopped_.insert(old);
  EXPECT_FALSE(nodes_[old]->isLeader());
  EXPECT_EQ(nodes_[old]->put("x", "y", 1s).code(), absl::StatusCode::kUnavailable);
  nodes_[old]->stop();  // idempotent

  int now = waitForLeader(15s);
  ASSERT_GE(now, 0) << "no new leader among the two survivors";
  ASSERT_NE(now, old);
  std::map<std::string, std::string> want = {{"before", "1"}};
  for (int i = 0; i < 150; ++i) {
    std::string key = "during" + std::to_string(i % 50);
    ASSERT_TRUE(write(key, std::to_string(i)).ok()) << "put " << i;
    want[key] = std::to_string(i);
  }
  ASSERT_TRUE(converged(want));
  EXPECT_EQ(nodes_[old]->get("during0"), std::nullopt);

  // Same object, same dir: start() again.
  ASSERT_TRUE(nodes_[old]->start().ok());
  stopped_.erase(old);
  ASSERT_TRUE(converged(want, 20s)) << "restarted node did not catch up";
  EXPECT_EQ(applied(old), want);
  ASSERT_TRUE(write("after", "2").ok());
  want["after"] = "2";
  ASSERT_TRUE(converged(want));
}

TEST_F(RaftLogTest, CommittedDataSurvivesFullClusterRestart) {
  threshold_ = 16;  // leave both a snapshot and a log tail on disk
  trailing_ = 4;
  startAll();
  ASSERT_GE(waitForLeader(), 0);
  std::map<std::string, std::string> want;
  for (int i = 0; i < 30; ++i) {
    std::string key = "durable" + std::to_string(i);
    ASSERT_TRUE(write(key, "v" + std::to_string(i)).ok()) << "put " << i;
    want[key] = "v" + std::to_string(i);
  }
  ASSERT_TRUE(converged(want));

  for (auto& n : nodes_) n->stop();
  for (int i = 0; i < kNodes; ++i) {
    std::lock_guard lock(views_[i]->mu);
    views_[i]->map.clear();
  }
  nodes_ = std::vector<std::unique_ptr<RaftLog>>(kNodes);
  startAll();
  // No new writes: the new leader's barrier commits and applies the old log everywhere.
  ASSERT_TRUE(converged(want, 20s)) << "committed data lost or not replayed after restart";
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(applied(i), want) << "node " << i;

  ASSERT_TRUE(write("after-restart", "ok").ok());
  want["after-restart"] = "ok";
  ASSERT_TRUE(converged(want));
}

}  // namespace
}  // namespace waverless::meta
