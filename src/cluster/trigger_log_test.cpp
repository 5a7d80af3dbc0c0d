// TriggerLog on real parts: three workers in one process, each with its own RocksDB store, raft
// host, gRPC server, app registry and request runner (one wasm engine serves the three, as one CPU
// would). The function is the register test app's `mark` (tests/apps/register): triggered by
// ev_<token>, it writes done_<token> = its wl_invocation_id to the store of the node running it, so
// a test sees where a record ran and under which id. The runners have no cluster hooks: mark's own
// write stays local, which is what shows the node.
#include "cluster/trigger_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "cluster/peers.h"
#include "cluster/sharded_kv.h"
#include "cluster/test_support.h"
#include "common/status_map.h"
#include "kv/kv_store.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "net/peer.h"
#include "shard/raft_host.h"
#include "wasm/engine.h"
#include "worker/app_logs.h"
#include "worker/request_runner.h"

namespace waverless::cluster {
namespace {

namespace fs = std::filesystem;
namespace pb = net::pb;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr uint32_t kGroups = 8;
constexpr char kApp[] = "register";

struct TestNode;

// What Cluster's router does with the envelopes a TriggerLog and a ShardedKv send.
class Router : public testing::PeerHandlerBase {
 public:
  std::atomic<TestNode*> node{nullptr};
  void onEnvelope(pb::Envelope req, net::Reply reply) override;
};

struct TestNode {
  std::unique_ptr<kv::KvStore> store;
  std::unique_ptr<shard::RaftHost> host;
  Router router;
  std::unique_ptr<net::RpcServer> server;
  std::unique_ptr<Peers> peers;
  std::unique_ptr<ShardedKv> kv;
  metrics::Registry metrics;
  worker::AppLogs logs;
  std::unique_ptr<meta::AppRegistry> registry;
  std::unique_ptr<worker::RequestRunner> runner;
  std::unique_ptr<TriggerLog> triggers;

  // Everything but the store, in reverse order of start: the node is lost.
  void stop() {
    if (triggers) triggers->stop();
    if (runner) runner->stop();
    if (peers) peers->shutdown();
    if (server) server->stop();
    if (kv) kv->stop();
    if (host) host->stop();
  }
};

void Router::onEnvelope(pb::Envelope req, net::Reply reply) {
  TestNode* n = node.load();
  if (req.body_case() == pb::Envelope::kShardRequest) return n->kv->serve(req, std::move(reply));
  // A durable trigger's delivery, as Dispatcher::serveInvoke hands it over.
  const pb::InvokeTask& t = req.invoke();
  auto app = n->registry->find(t.app());
  const app::FnSpec* fn = app ? app->manifest.find(t.function()) : nullptr;
  auto respond = [id = req.id(), reply = std::move(reply)](worker::RequestOutcome o) mutable {
    pb::Envelope out;
    out.set_id(id);
    out.mutable_done()->set_code(common::toWire(o.status));
    out.mutable_done()->set_message(std::string(o.status.message()));
    reply(std::move(out));
  };
  if (fn == nullptr) return respond({absl::NotFoundError(t.function())});
  n->triggers->serve(std::move(app), *fn,
                     {t.invocation_id(), t.app(), t.function(), t.key(), t.origin(), t.request_id(),
                      t.timeout_ms(), t.depth()},
                     std::move(respond));
}

// Polls cond until it holds or 20 s pass.
bool waitFor(const std::function<bool()>& cond) {
  for (auto until = Clock::now() + 20s; Clock::now() < until; std::this_thread::sleep_for(10ms)) {
    if (cond()) return true;
  }
  return cond();
}

template <class T>
T await(absl::AnyInvocable<void(absl::AnyInvocable<void(T)>)> start) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  start([p](T v) { p->set_value(std::move(v)); });
  EXPECT_EQ(f.wait_for(20s), std::future_status::ready);
  return f.get();
}

class TriggerLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = testing::startEngine().release(); }
  static void TearDownTestSuite() { delete engine_; }

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trigger_log_test." + std::to_string(getpid()));
    fs::remove_all(dir_);
    // The app as `waverless deploy` hands it to a registry: app.yaml and the built app.wasm.
    testing::copyRegisterApp(dir_ / "src");
    std::vector<sched::WorkerInfo> workers;
    for (int i = 0; i < kNodes; ++i) {
      TestNode& n = nodes_[i];
      auto store = kv::KvStore::open({.dir = dir_ / std::to_string(i + 1)});
      ASSERT_TRUE(store.ok()) << store.status();
      n.store = std::move(*store);
      n.server = std::make_unique<net::RpcServer>("127.0.0.1:0", n.router);
      ASSERT_TRUE(n.server->start().ok());
      shard::RaftHostOptions so;
      so.node_id = i + 1;
      so.listen_address = "127.0.0.1:0";
      so.dir = dir_ / ("raft" + std::to_string(i + 1));
      so.secret = "cluster secret";
      so.election_timeout = 300ms;
      so.heartbeat_timeout = 30ms;
      n.host = std::make_unique<shard::RaftHost>(so, *n.store);
      ASSERT_TRUE(n.host->start().ok());
      NodeConfig c;
      c.id = i + 1;
      c.addr = c.bind = "127.0.0.1:" + std::to_string(n.server->port());
      c.worker = true;
      config_.nodes.push_back(c);
      workers.push_back({sched::NodeId{uint32_t(i + 1)}, 1.0, true, 0});
    }
    map_ = std::make_shared<const shard::ShardMap>(*shard::ShardMap::place(kGroups, 3, workers));
    std::vector<shard::Replica> replicas;
    for (auto& n : nodes_) replicas.push_back({replicas.size() + 1, n.host->address()});
    for (uint32_t i = 0; i < kNodes; ++i) {
      TestNode& n = nodes_[i];
      for (uint32_t g = 0; g < kGroups; ++g) ASSERT_TRUE(n.host->openGroup(g, replicas).ok());
      n.peers = std::make_unique<Peers>(config_, i + 1);
      auto replicated = [](std::string_view, std::string_view) {
        return app::KeyDurability::kReplicated;
      };
      n.kv = std::make_unique<ShardedKv>(
          i + 1, ShardedKvDeps{config_, *n.peers, *n.store, replicated, n.host.get()}, map_);
      ASSERT_TRUE(n.kv->start().ok());
      n.registry = std::make_unique<meta::AppRegistry>(dir_ / ("apps" + std::to_string(i + 1)),
                                                       *engine_, *n.store);
      auto deployed = n.registry->deploy(kApp, dir_ / "src");
      ASSERT_TRUE(deployed.ok()) << deployed.status();
      n.runner = std::make_unique<worker::RequestRunner>(*engine_, *n.store, n.metrics, n.logs);
      ASSERT_TRUE(n.runner->start().ok());
      // Sweeps only when a test calls sweep(); a short grace so an orphan test need not wait.
      TriggerLogTiming timing{.sweep_every = 1h, .grace = 200ms, .keep_finished = 10s};
      n.triggers = std::make_unique<TriggerLog>(
          i + 1, TriggerLogDeps{*n.peers, *n.registry, *n.runner, *n.kv, *n.store, n.host.get()},
          timing);
      ASSERT_TRUE(n.triggers->start().ok());
      n.router.node = &n;
    }
    for (uint32_t g = 0; g < kGroups; ++g) ASSERT_NE(leaderOf(g), -1) << "group " << g;
  }

  void TearDown() override {
    for (auto& n : nodes_) n.stop();
    for (auto& n : nodes_) {
      n.triggers.reset();
      n.runner.reset();
      n.host.reset();
    }
    fs::remove_all(dir_);
  }

  // The index of the node leading group g as the live nodes agree, -1 if none does within 20 s.
  int leaderOf(uint32_t g, int except = -1) {
    int found = -1;
    waitFor([&] {
      for (int i = 0; i < kNodes; ++i) {
        if (i != except && nodes_[i].host->leads(g)) found = i;
      }
      return found != -1;
    });
    return found;
  }

  // A record of mark for ev_<token>, as a request on node `origin` would commit it with its write.
  worker::TriggerRecord recordFor(const std::string& token) {
    return {.id = "it-" + token,
            .function = "mark",
            .key = "ev_" + token,
            .request_id = "req-" + token,
            .timeout_ms = 10000};
  }
  absl::Status commit(int via, const std::string& app, const worker::TriggerRecord& r) {
    return await<absl::Status>(
        [&](auto done) { nodes_[via].kv->set(app, r.key, "reg_x", {r}, std::move(done)); });
  }
  uint32_t groupOf(const std::string& key, const std::string& app = kApp) {
    return map_->groupOf(app, key);
  }
  // The ids pending in g's range of node i's store.
  std::vector<std::string> pending(int i, uint32_t g) {
    auto records = shard::pendingTriggers(*nodes_[i].store, g, 100);
    EXPECT_TRUE(records.ok()) << records.status();
    std::vector<std::string> ids;
    if (records.ok()) {
      for (auto& r : *records) ids.push_back(r.id);
    }
    return ids;
  }
  // What mark wrote on node i for token: the invocation id it ran under.
  std::optional<std::string> markOn(int i, const std::string& token) {
    auto v = nodes_[i].store->get(kApp, "done_" + token);
    return v.ok() ? *v : std::nullopt;
  }
  static wasm::Engine* engine_;
  fs::path dir_;
  ClusterConfig config_;
  std::shared_ptr<const shard::ShardMap> map_;
  TestNode nodes_[kNodes];
};

wasm::Engine* TriggerLogTest::engine_ = nullptr;

TEST_F(TriggerLogTest, ACommittedRecordIsPendingUntilItsRunRetiresIt) {
  auto rec = recordFor("a");
  const uint32_t g = groupOf(rec.key);
  ASSERT_TRUE(commit(0, kApp, rec).ok());
  const int leader = leaderOf(g);
  EXPECT_EQ(pending(leader, g), std::vector<std::string>{rec.id});

  absl::Status ran = await<absl::Status>([&](auto done) {
    nodes_[0].triggers->runDurable(nodes_[0].registry->find(kApp), rec, std::move(done));
  });
  ASSERT_TRUE(ran.ok()) << ran;
  // It ran on its group's leader (the value is local there), under the record's id, once.
  EXPECT_EQ(markOn(leader, "a"), rec.id);
  EXPECT_EQ(nodes_[leader].triggers->stats().runs, 1u);
  // Retired on every replica: a sweeper anywhere finds nothing to run again.
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(waitFor([&] { return pending(i, g).empty(); })) << "node " << i + 1;
  }
  EXPECT_TRUE(waitFor([&] { return nodes_[leader].triggers->stats().retired == 1; }));
}

TEST_F(TriggerLogTest, ASecondDeliveryOfAnIdAttachesToItsRunInsteadOfRunningAgain) {
  auto rec = recordFor("b");
  ASSERT_TRUE(commit(0, kApp, rec).ok());
  const int leader = leaderOf(groupOf(rec.key));
  TestNode& n = nodes_[leader];
  auto app = n.registry->find(kApp);
  shard::TriggerRecord stored = n.kv->recordOf(kApp, rec);
  std::promise<worker::RequestOutcome> first, second;
  n.triggers->serve(app, *app->manifest.find("mark"), stored,
                    [&](worker::RequestOutcome o) { first.set_value(std::move(o)); });
  n.triggers->serve(app, *app->manifest.find("mark"), stored,
                    [&](worker::RequestOutcome o) { second.set_value(std::move(o)); });
  auto f1 = first.get_future(), f2 = second.get_future();
  ASSERT_EQ(f1.wait_for(20s), std::future_status::ready);
  ASSERT_EQ(f2.wait_for(20s), std::future_status::ready);
  EXPECT_TRUE(f1.get().status.ok());
  EXPECT_TRUE(f2.get().status.ok());
  // A late third delivery gets the finished run's outcome.
  auto third = await<worker::RequestOutcome>([&](auto done) {
    n.triggers->serve(app, *app->manifest.find("mark"), stored, std::move(done));
  });
  EXPECT_TRUE(third.status.ok()) << third.status;
  TriggerLog::Stats s = n.triggers->stats();
  EXPECT_EQ(s.runs, 1u);
  EXPECT_EQ(s.attached, 2u);
  EXPECT_EQ(n.triggers->running(), 0u);
}

TEST_F(TriggerLogTest, TheOriginPlacesARunAgainWhenItsNodeIsLost) {
  const std::string token = "f";
  auto rec = recordFor(token);
  const uint32_t g = groupOf(rec.key);
  const int lost = leaderOf(g);
  const int origin = (lost + 1) % kNodes;
  ASSERT_TRUE(commit(origin, kApp, rec).ok());

  // The leader stops answering its peers, still leading: the run cannot reach it.
  nodes_[lost].server->stop();
  auto result = std::make_shared<std::promise<absl::Status>>();
  nodes_[origin].triggers->runDurable(nodes_[origin].registry->find(kApp), rec,
                                      [result](absl::Status s) { result->set_value(s); });
  ASSERT_TRUE(waitFor([&] { return nodes_[origin].triggers->stats().replaced >= 1; }));
  // Then it is lost for good: the group elects another leader, which runs the record.
  nodes_[lost].stop();
  auto f = result->get_future();
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  absl::Status s = f.get();
  ASSERT_TRUE(s.ok()) << s;
  const int next = leaderOf(g, lost);
  ASSERT_NE(next, -1);
  EXPECT_EQ(markOn(next, token), rec.id) << "run on the group's new leader, under the same id";
  EXPECT_EQ(markOn(lost, token), std::nullopt);
  EXPECT_TRUE(waitFor([&] { return pending(next, g).empty(); }));
}

TEST_F(TriggerLogTest, TheLeadersSweeperRunsAnOrphanOnlyAfterTheGrace) {
  auto rec = recordFor("c");
  const uint32_t g = groupOf(rec.key);
  ASSERT_TRUE(commit(1, kApp, rec).ok());  // and its origin never runs it
  const int leader = leaderOf(g);
  const auto committed = Clock::now();
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 0u) << "first seen now: its origin comes first";
  for (int i = 0; i < kNodes; ++i) {
    if (i == leader) continue;
    EXPECT_EQ(nodes_[i].triggers->sweep(), 0u) << "node " << i + 1 << " does not lead the group";
  }
  std::this_thread::sleep_until(committed + 300ms);  // the grace is 200 ms
  for (int i = 0; i < kNodes; ++i) {
    if (i == leader) continue;
    EXPECT_EQ(nodes_[i].triggers->sweep(), 0u) << "only the leader sweeps";
  }
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 1u);
  EXPECT_TRUE(waitFor([&] { return pending(leader, g).empty(); }));
  EXPECT_EQ(markOn(leader, "c"), rec.id);
  TriggerLog::Stats s = nodes_[leader].triggers->stats();
  EXPECT_EQ(s.orphans, 1u);
  EXPECT_EQ(s.runs, 1u);
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 0u) << "retired: nothing left to run";
}

TEST_F(TriggerLogTest, ARecordOfAFunctionTheAppLacksIsRefusedClearly) {
  auto rec = recordFor("d");
  rec.function = "no_such_fn";
  absl::Status s = await<absl::Status>([&](auto done) {
    nodes_[0].triggers->runDurable(nodes_[0].registry->find(kApp), rec, std::move(done));
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("app register has no function no_such_fn"), std::string::npos) << s;
}

TEST_F(TriggerLogTest, AnOrphanOfAnAppThisNodeLacksIsKeptNotRun) {
  // A node that has not installed the app yet must not drop the record (another may run it).
  auto rec = recordFor("e");
  const uint32_t g = groupOf(rec.key, "ghost");
  ASSERT_TRUE(commit(0, "ghost", rec).ok());
  const int leader = leaderOf(g);
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 0u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 0u);
  EXPECT_EQ(pending(leader, g), std::vector<std::string>{rec.id});
  EXPECT_EQ(nodes_[leader].triggers->stats().runs, 0u);
}

TEST_F(TriggerLogTest, AMalformedStoredRecordIsSkippedAndTheGroupsOthersStillRun) {
  // Two records in two groups the same node leads; one group's range also holds bytes that are no
  // record (a corrupt store): strictly listed, that is an error; the sweep skips the bad bytes and
  // runs both groups' orphans.
  // Some node leads at least three of the eight groups: find two tokens of two of its groups.
  std::map<int, std::map<uint32_t, std::string>> led;  // leader -> group -> a token in it
  std::string bad_token, good_token;
  int leader = -1;
  for (int i = 0; good_token.empty() && i < 1000; ++i) {
    std::string t = "m" + std::to_string(i);
    uint32_t g = groupOf("ev_" + t);
    int l = leaderOf(g);
    led[l].try_emplace(g, t);
    if (led[l].size() == 2) {
      leader = l;
      bad_token = led[l].begin()->second;
      good_token = std::next(led[l].begin())->second;
    }
  }
  ASSERT_NE(leader, -1);
  const uint32_t bad_group = groupOf("ev_" + bad_token);
  ASSERT_TRUE(commit(0, kApp, recordFor(bad_token)).ok());
  ASSERT_TRUE(commit(0, kApp, recordFor(good_token)).ok());
  ASSERT_TRUE(nodes_[leader]
                  .store
                  ->shardWrite(bad_group, {{"", "trigger/" + std::string(20, '\xff'),
                                            std::string("\x01garbage", 8)}})
                  .ok());
  auto listed = shard::pendingTriggers(*nodes_[leader].store, bad_group, 100);
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(listed.status().message().find("bad trigger record"), std::string::npos)
      << listed.status();

  std::vector<std::string> corrupt;
  auto lenient = shard::pendingTriggers(*nodes_[leader].store, bad_group, 100, &corrupt);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  EXPECT_EQ(lenient->size(), 1u);
  EXPECT_EQ(corrupt.size(), 1u);

  EXPECT_EQ(nodes_[leader].triggers->sweep(), 0u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(nodes_[leader].triggers->sweep(), 2u) << "both groups' orphans, not the bad bytes";
  EXPECT_TRUE(waitFor([&] { return markOn(leader, good_token).has_value(); }));
  EXPECT_TRUE(waitFor([&] { return markOn(leader, bad_token).has_value(); }));
}

}  // namespace
}  // namespace waverless::cluster
