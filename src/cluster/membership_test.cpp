#include "cluster/membership.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "net/peer.h"

namespace waverless::cluster {
namespace {

namespace pb = net::pb;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

bool waitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

ClusterConfig threeNodes(uint16_t master_port = 1) {
  ClusterConfig c;
  for (uint32_t id = 1; id <= 3; ++id) {
    NodeConfig n;
    n.id = id;
    n.addr = n.bind = "127.0.0.1:" + std::to_string(id == 1 ? master_port : id);
    n.master = id == 1;
    n.worker = id != 1;
    n.weight = id;
    c.nodes.push_back(n);
  }
  return c;
}

pb::WorkerState stateOf(uint32_t id, uint64_t running) {
  pb::WorkerState s;
  s.set_id(id);
  s.set_running(running);
  s.set_load(double(running));
  return s;
}

MembershipDeps deps(std::function<pb::WorkerState()> local = [] { return stateOf(1, 0); }) {
  MembershipDeps d;
  d.local_state = std::move(local);
  d.app_versions = [] { return AppVersions{{"hello", "v1"}}; };
  d.on_master_apps = [](const AppVersions&) {};
  return d;
}

ClusterTiming fast() {
  ClusterTiming t;
  t.heartbeat = std::chrono::milliseconds(50);
  t.dead_after = std::chrono::milliseconds(1000);
  t.detector_period = std::chrono::milliseconds(20);
  return t;
}

pb::HeartbeatRequest beat(uint32_t id, uint64_t running) {
  pb::HeartbeatRequest r;
  *r.mutable_state() = stateOf(id, running);
  return r;
}

TEST(Membership, AHeartbeatJoinsTheViewAndSilenceLeavesIt) {
  ClusterConfig config = threeNodes();
  Membership master(config, 1, deps(), fast());
  ASSERT_TRUE(master.start({}).ok());
  EXPECT_FALSE(master.view()->members.at(2).alive);

  pb::HeartbeatReply reply = master.heartbeat(beat(2, 4));
  EXPECT_TRUE(master.view()->members.at(2).alive);
  EXPECT_EQ(master.view()->members.at(2).state.running(), 4u);
  // The reply: every worker with its configured weight and liveness, and the
  // app versions the master serves.
  ASSERT_EQ(reply.workers_size(), 2);
  EXPECT_EQ(reply.workers(0).id(), 2u);
  EXPECT_TRUE(reply.workers(0).alive());
  EXPECT_EQ(reply.workers(0).weight(), 2.0);
  EXPECT_EQ(reply.workers(1).id(), 3u);
  EXPECT_FALSE(reply.workers(1).alive());
  EXPECT_EQ(reply.app_versions().at("hello"), "v1");

  EXPECT_TRUE(waitFor([&] { return !master.view()->members.at(2).alive; }));
  EXPECT_THAT(master.nodesJson(),
              HasSubstr("\"id\":2,\"addr\":\"127.0.0.1:2\",\"roles\":[\"worker\"],"
                        "\"alive\":false"));
  master.heartbeat(beat(2, 0));  // back
  EXPECT_TRUE(master.view()->members.at(2).alive);
  master.stop();
}

TEST(Membership, APublishedViewNeverChanges) {
  ClusterConfig config = threeNodes();
  Membership master(config, 1, deps(), fast());
  auto before = master.view();
  master.heartbeat(beat(3, 9));
  auto after = master.view();
  EXPECT_NE(before, after);
  EXPECT_FALSE(before->members.at(3).alive);
  EXPECT_EQ(before->members.at(3).state.running(), 0u);
  EXPECT_TRUE(after->members.at(3).alive);
  auto workers = after->workers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[1].id.value, 3u);
  EXPECT_TRUE(workers[1].alive);
  EXPECT_EQ(workers[1].weight, 3.0);
}

// The node's own load is read (from /proc, slowly) with no lock held: while
// the detector is inside it, heartbeats are answered and the view is read.
TEST(Membership, ReadersAndHeartbeatsDoNotWaitForTheLocalStateRead) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> inside{false};
  ClusterConfig config = threeNodes();
  Membership master(config, 1, deps([&] {
                      inside = true;
                      released.wait();
                      return stateOf(1, 0);
                    }),
                    fast());
  ASSERT_TRUE(master.start({}).ok());
  ASSERT_TRUE(waitFor([&] { return inside.load(); }));
  auto answered = std::async(std::launch::async, [&] {
    master.heartbeat(beat(2, 1));
    return master.view()->members.at(2).alive && !master.nodesJson().empty();
  });
  bool ready = answered.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  release.set_value();
  ASSERT_TRUE(ready) << "a heartbeat waited for the detector's /proc read";
  EXPECT_TRUE(answered.get());
  master.stop();
}

// The master and a worker over real gRPC: the worker's heartbeats make it
// alive on the master, and the master's reply becomes the worker's view.
TEST(Membership, AWorkerTakesTheMastersView) {
  struct Router : net::PeerHandler {
    std::atomic<Membership*> m{nullptr};
    void onEnvelope(pb::Envelope, net::Reply) override {}
    pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest& r) override {
      return m.load()->heartbeat(r);
    }
    pb::Ack installApp(const pb::AppPackage&) override { return {}; }
    absl::StatusOr<pb::AppPackage> fetchApp(const std::string& n) override {
      return absl::NotFoundError(n);
    }
    pb::Ack removeApp(const std::string&, net::Removal) override { return {}; }
    pb::Ack metaPut(const pb::MetaEntry&) override { return {}; }
  } router;
  net::RpcServer server("127.0.0.1:0", router);
  ASSERT_TRUE(server.start().ok());
  ClusterConfig config = threeNodes(static_cast<uint16_t>(server.port()));
  Membership master(config, 1, deps(), fast());
  router.m = &master;
  ASSERT_TRUE(master.start({}).ok());

  std::mutex mu;
  AppVersions seen;
  MembershipDeps wd = deps([] { return stateOf(2, 7); });
  wd.on_master_apps = [&](const AppVersions& v) {
    std::lock_guard lock(mu);
    seen = v;
  };
  Membership worker(config, 2, std::move(wd), fast());
  EXPECT_FALSE(worker.start({}).ok());  // a worker needs the master's client
  net::PeerClient to_master(config.nodes[0].addr);
  ASSERT_TRUE(worker.start({{1, &to_master}}).ok());
  EXPECT_TRUE(waitFor([&] { return worker.master() == 1u; }));

  EXPECT_TRUE(waitFor([&] { return master.view()->members.at(2).alive; }));
  EXPECT_TRUE(waitFor([&] {
    auto v = worker.view();
    return v->members.at(1).alive && v->members.at(2).alive &&
           v->members.at(2).state.running() == 7 && !v->members.at(3).alive;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen, (AppVersions{{"hello", "v1"}}));
  }
  worker.stop();
  EXPECT_TRUE(waitFor([&] { return !master.view()->members.at(2).alive; }));
  to_master.shutdown();
  master.stop();
  server.stop();
}

// The master role follows the meta raft leader. Three meta nodes and a worker
// outside the raft group: the worker heartbeats to all three, so each has a
// warm view, and follows whichever says it is the master.
TEST(Membership, TheMasterRoleFollowsTheMetaLeader) {
  struct Router : net::PeerHandler {
    std::atomic<Membership*> m{nullptr};
    void onEnvelope(pb::Envelope, net::Reply) override {}
    pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest& r) override {
      Membership* mm = m.load();
      return mm ? mm->heartbeat(r) : pb::HeartbeatReply{};
    }
    pb::Ack installApp(const pb::AppPackage&) override { return {}; }
    absl::StatusOr<pb::AppPackage> fetchApp(const std::string& n) override {
      return absl::NotFoundError(n);
    }
    pb::Ack removeApp(const std::string&, net::Removal) override { return {}; }
    pb::Ack metaPut(const pb::MetaEntry&) override { return {}; }
  };
  Router routers[3];
  std::vector<std::unique_ptr<net::RpcServer>> servers;
  ClusterConfig config;
  for (uint32_t id = 1; id <= 4; ++id) {
    NodeConfig n;
    n.id = id;
    if (id <= 3) {
      servers.push_back(std::make_unique<net::RpcServer>("127.0.0.1:0", routers[id - 1]));
      ASSERT_TRUE(servers.back()->start().ok());
      n.addr = n.bind = "127.0.0.1:" + std::to_string(servers.back()->port());
    } else {
      n.addr = n.bind = "127.0.0.1:9";
    }
    n.meta = id <= 3;
    n.master = id == 1;
    n.worker = id != 1;
    config.nodes.push_back(n);
  }
  EXPECT_EQ(Membership::heartbeatTargets(config, 4), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Membership::heartbeatTargets(config, 2), (std::vector<uint32_t>{1, 3}));

  std::atomic<uint32_t> leader{1};  // what the meta raft group would say
  std::vector<std::unique_ptr<net::PeerClient>> clients;
  for (uint32_t id = 1; id <= 3; ++id) {
    clients.push_back(std::make_unique<net::PeerClient>(config.nodes[id - 1].addr));
  }
  auto targetsOf = [&](uint32_t self) {
    Membership::Targets t;
    for (uint32_t id : Membership::heartbeatTargets(config, self)) t[id] = clients[id - 1].get();
    return t;
  };
  std::vector<std::unique_ptr<Membership>> metas;
  for (uint32_t id = 1; id <= 3; ++id) {
    MembershipDeps d = deps([id] { return stateOf(id, 0); });
    d.meta_leader = [&leader]() -> std::optional<uint32_t> {
      if (uint32_t l = leader.load()) return l;
      return std::nullopt;
    };
    metas.push_back(std::make_unique<Membership>(config, id, std::move(d), fast()));
    routers[id - 1].m = metas.back().get();
  }
  MembershipDeps wd = deps([] { return stateOf(4, 5); });
  EXPECT_FALSE(Membership(config, 2, wd, fast()).start(targetsOf(2)).ok())
      << "a meta node needs the raft leader";
  for (uint32_t id = 1; id <= 3; ++id) ASSERT_TRUE(metas[id - 1]->start(targetsOf(id)).ok());
  Membership worker(config, 4, std::move(wd), fast());
  ASSERT_TRUE(worker.start(targetsOf(4)).ok());

  EXPECT_TRUE(waitFor([&] { return worker.master() == 1u; }));
  for (auto& m : metas) {
    EXPECT_TRUE(waitFor([&] { return m->view()->members.at(4).alive; }))
        << "every meta node detects";
  }
  EXPECT_THAT(metas[1]->nodesJson(), HasSubstr("\"id\":1,\"addr\":\"" + config.nodes[0].addr +
                                               "\",\"roles\":[\"meta\",\"master\"]"));

  // Node 1 dies; the raft group elects node 2.
  routers[0].m = nullptr;
  metas[0]->stop();
  servers[0]->stop();
  leader = 0;  // the election
  leader = 2;
  auto t0 = Clock::now();
  EXPECT_TRUE(waitFor([&] { return worker.master() == 2u; }));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  EXPECT_TRUE(waitFor([&] { return !metas[1]->view()->members.at(1).alive; }));
  EXPECT_TRUE(metas[1]->view()->members.at(4).alive) << "the new master's view was warm";
  EXPECT_THAT(metas[1]->nodesJson(), HasSubstr("\"roles\":[\"meta\",\"master\",\"worker\"]"));
  worker.stop();
  for (auto& m : metas) m->stop();
  for (auto& c : clients) c->shutdown();
  for (auto& s : servers) s->stop();
}

}  // namespace
}  // namespace waverless::cluster
