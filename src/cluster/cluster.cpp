#include "cluster/cluster.h"

#include <sys/resource.h>

#include <fstream>
#include <future>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "cluster/cluster_util.h"
#include "common/status_map.h"
#include "kv/kv_store.h"
#include "master/package.h"
#include "meta/app_record.h"
#include "meta/app_registry.h"
#include "sched/scheduler.h"
#include "wasm/engine.h"
#include "worker/request_runner.h"

namespace waverless::cluster {

namespace fs = std::filesystem;
namespace pb = net::pb;
using std::chrono::milliseconds;

Cluster::Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing)
    : config_(std::move(config)), deps_(std::move(deps)), rng_(self * 7919u) {
  self_ = config_.find(self);
  peers_ = std::make_unique<Peers>(config_, self);
  MembershipDeps md;
  md.local_state = [this] { return localState(); };
  md.app_versions = [this] {
    AppVersions out;
    for (const auto& a : deps_.registry.list()) out[a->name] = a->version;
    return out;
  };
  // Nodes in the raft group take the app set from it; others from the
  // master's reply.
  md.on_master_apps = [this](const AppVersions& wanted) {
    if (!raft_) syncApps(wanted);
  };
  membership_ = std::make_unique<Membership>(config_, self, std::move(md), timing);
  kv_ = std::make_unique<RemoteKv>(config_, self, *peers_, deps_.kv);
}

Cluster::~Cluster() { stop(); }

absl::Status Cluster::start() {
  if (self_ == nullptr) return absl::InvalidArgumentError("this node's id is not in the cluster");
  server_ = std::make_unique<net::RpcServer>(self_->bind, *this);
  if (auto st = server_->start(); !st.ok()) return st;
  if (self_->meta) {
    // The app versions every node should serve are raft-replicated among the
    // meta nodes: they survive the master and every meta node applies them.
    meta::RaftLogOptions ro;
    ro.id = self_->id;
    ro.address = self_->raftAddr();
    for (const auto& n : config_.nodes) {
      if (n.meta) ro.peers.push_back({n.id, n.raftAddr()});
    }
    ro.dir = deps_.scratch_dir.parent_path() / "raft";
    raft_ = std::make_unique<meta::RaftLog>(ro);
    raft_->onApply([this](const std::string& key, const std::optional<std::string>& value) {
      auto name = meta::appOfRecordKey(key);
      if (!name) return;
      std::lock_guard lock(sync_mu_);
      // Only a committed erase removes an app (and its keys) here: an app
      // merely absent from a partly replayed map must never be dropped.
      if (!value) removals_.insert(*name);
      sync_pending_ = true;
      sync_cv_.notify_one();
    });
    if (auto st = raft_->start(); !st.ok()) return st;
    if (self_->worker) {
      meta_sync_ = std::jthread([this](std::stop_token st) { metaSyncLoop(st); });
    }
  }
  membership_->registerMetrics(deps_.metrics);
  peers_->registerMetrics(deps_.metrics);
  if (auto st = membership_->start(isMaster() ? nullptr : peer(config_.master()->id)); !st.ok()) {
    return st;
  }
  started_ = true;
  return absl::OkStatus();
}

void Cluster::stop() {
  if (!started_) return;
  started_ = false;
  membership_->stop();
  if (meta_sync_.joinable()) {
    meta_sync_.request_stop();
    sync_cv_.notify_all();
    meta_sync_.join();
  }
  if (raft_) raft_->stop();
  peers_->shutdown();
  if (server_) server_->stop();
}

// --- this node's load -----------------------------------------------------------------

pb::WorkerState Cluster::localState() {
  pb::WorkerState s;
  s.set_id(self_->id);
  s.set_weight(self_->weight);
  s.set_alive(true);
  uint64_t running = deps_.runner.inflight();
  s.set_running(running);
  s.set_load(double(running) / self_->weight);
  auto es = deps_.engine.stats();
  s.set_instances(es.instances_live);
  std::ifstream statm("/proc/self/statm");
  long pages = 0, rss = 0;
  statm >> pages >> rss;
  s.set_rss_bytes(static_cast<uint64_t>(rss) * 4096);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  s.set_cpu_seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return s;
}

pb::HeartbeatReply Cluster::heartbeat(const pb::HeartbeatRequest& req) {
  return membership_->heartbeat(req);
}

// --- placement --------------------------------------------------------------------

sched::Policy Cluster::policyFor(const meta::DeployedApp& app) const {
  auto p = sched::parsePolicy(app.manifest.scheduler.value_or(config_.scheduler));
  return p.ok() ? *p : sched::Policy::kDataAware;
}

std::optional<uint32_t> Cluster::placeTrigger(const meta::DeployedApp& app, const app::FnSpec& fn,
                                              std::string_view key) {
  auto workers = membership_->view()->workers();
  sched::PlacementRequest req;
  req.app = app.name;
  req.function = fn.name;
  req.key = key;
  req.data_node = sched::NodeId{kv_->dataNode(app.name, key)};
  if (self_->worker) req.local = sched::NodeId{self_->id};
  {
    std::lock_guard lock(rng_mu_);
    req.random = rng_();
  }
  auto node = sched::makeScheduler(policyFor(app))->place(req, workers);
  if (!node.ok() || node->value == self_->id) return std::nullopt;
  return node->value;
}

// --- remote calls ------------------------------------------------------------------

void Cluster::invokeRemote(uint32_t node, worker::RemoteTask task,
                           absl::AnyInvocable<void(absl::Status)> done) {
  net::PeerClient* p = peer(node);
  if (p == nullptr) {
    done(absl::InternalError(absl::StrCat("no peer ", node)));
    return;
  }
  pb::Envelope e;
  auto* t = e.mutable_invoke();
  t->set_app(task.app);
  t->set_function(task.function);
  for (auto& a : task.args) t->add_args(std::move(a));
  t->set_timeout_ms(task.timeout_ms);
  t->set_request_id(task.request_id);
  std::string fn = task.function;
  p->call(std::move(e), milliseconds(task.timeout_ms) + std::chrono::seconds(5),
          [done = std::move(done), node, fn](absl::StatusOr<pb::Envelope> r) mutable {
            if (!r.ok()) {
              done(absl::UnavailableError(
                  absl::StrCat("function ", fn, " on node ", node, ": ", r.status().message())));
              return;
            }
            done(common::fromWire(r->done().code(), r->done().message()));
          });
}

void Cluster::onEnvelope(pb::Envelope req, net::Reply reply) {
  uint64_t id = req.id();
  if (req.has_kv()) {
    pb::Envelope out;
    out.set_id(id);
    kv_->serve(req.kv(), *out.mutable_kv_reply());
    reply(std::move(out));
    return;
  }
  auto fail = [&](absl::Status st) {
    pb::Envelope out;
    out.set_id(id);
    out.mutable_done()->set_code(common::toWire(st));
    out.mutable_done()->set_message(std::string(st.message()));
    out.mutable_done()->set_http_status(common::httpStatus(st));
    reply(std::move(out));
  };
  if (!req.has_invoke()) {
    // Every request is answered: the caller would otherwise wait out its deadline.
    fail(absl::InvalidArgumentError("peer message is neither an invoke task nor a KV request"));
    return;
  }
  const auto& task = req.invoke();
  auto app = deps_.registry.find(task.app());
  if (!app) {
    fail(absl::NotFoundError(absl::StrCat("no app named '", task.app(), "' on node ", self_->id)));
    return;
  }
  const app::FnSpec* fn = app->manifest.find(task.function());
  if (fn == nullptr) {
    fail(absl::NotFoundError(
        absl::StrCat("app ", task.app(), " has no function ", task.function())));
    return;
  }
  auto respond = [id, reply = std::move(reply)](worker::RequestOutcome o) mutable {
    pb::Envelope out;
    out.set_id(id);
    auto* d = out.mutable_done();
    d->set_code(common::toWire(o.status));
    d->set_message(std::string(o.status.message()));
    d->set_http_status(o.http_status);
    d->set_output(std::move(o.body));
    d->set_request_id(o.request_id);
    reply(std::move(out));
  };
  if (task.entry()) {
    deps_.runner.run(app, *fn, task.http_text(), std::move(respond));
  } else {
    std::vector<std::string> args(task.args().begin(), task.args().end());
    // What is left of the triggering request's deadline, not a fresh one.
    deps_.runner.runTriggered(app, *fn, std::move(args), task.request_id(), std::move(respond),
                              std::chrono::milliseconds(task.timeout_ms()));
  }
}

// --- HTTP dispatch ------------------------------------------------------------------

void Cluster::dispatch(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                       std::string body, absl::AnyInvocable<void(worker::RequestOutcome)> done,
                       std::shared_ptr<common::CancelScope> cancel) {
  dispatchTo(std::move(app), &fn, std::move(body), {}, std::move(done), nullptr, std::move(cancel));
}

void Cluster::dispatchStream(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                             std::shared_ptr<http::BodyStream> body,
                             absl::AnyInvocable<void(worker::RequestOutcome)> done,
                             std::shared_ptr<common::CancelScope> cancel) {
  dispatchTo(std::move(app), &fn, "", {}, std::move(done), std::move(body), std::move(cancel));
}

void Cluster::dispatchTo(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec* fn,
                         std::string body, std::vector<uint32_t> excluded,
                         absl::AnyInvocable<void(worker::RequestOutcome)> done,
                         std::shared_ptr<http::BodyStream> stream,
                         std::shared_ptr<common::CancelScope> cancel) {
  auto workers = membership_->view()->workers();
  for (auto& w : workers) {
    if (std::find(excluded.begin(), excluded.end(), w.id.value) != excluded.end()) w.alive = false;
  }
  sched::PlacementRequest req;
  req.app = app->name;
  req.function = fn->name;
  if (self_->worker) req.local = sched::NodeId{self_->id};
  {
    std::lock_guard lock(rng_mu_);
    req.random = rng_();
  }
  auto node = sched::makeScheduler(policyFor(*app))->place(req, workers);
  if (!node.ok()) {
    worker::RequestOutcome o;
    o.status = absl::UnavailableError("no live worker can run " + app->name + ": " +
                                      std::string(node.status().message()));
    o.http_status = 503;
    o.body = std::string(o.status.message()) + "\n";
    done(std::move(o));
    return;
  }
  if (node->value == self_->id) {
    deps_.runner.run(std::move(app), *fn, std::move(body), std::move(done), std::move(stream),
                     std::move(cancel));
    return;
  }
  if (stream) {
    // Another node runs it: the body crosses whole, once it is all here.
    http::BodyStream::readAll(
        std::move(stream), [this, app = std::move(app), fn, excluded = std::move(excluded),
                            done = std::move(done)](absl::StatusOr<std::string> got) mutable {
          if (!got.ok()) {
            worker::RequestOutcome o;
            o.status = got.status();
            o.http_status = common::httpStatus(o.status);
            o.body = std::string(o.status.message()) + "\n";
            done(std::move(o));
            return;
          }
          dispatchTo(std::move(app), fn, *std::move(got), std::move(excluded), std::move(done));
        });
    return;
  }
  pb::Envelope e;
  auto* t = e.mutable_invoke();
  t->set_app(app->name);
  t->set_function(fn->name);
  t->set_entry(true);
  t->set_http_text(body);
  auto timeout = fn->timeout.value_or(std::chrono::seconds(30));
  t->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  uint32_t target = node->value;
  peer(target)->call(std::move(e), timeout + std::chrono::seconds(5),
                     [this, app, fn, body = std::move(body), excluded = std::move(excluded), target,
                      done = std::move(done)](absl::StatusOr<pb::Envelope> r) mutable {
                       if (r.ok()) {
                         worker::RequestOutcome o;
                         o.status = common::fromWire(r->done().code(), r->done().message());
                         o.http_status = r->done().http_status();
                         o.body = std::move(*r->mutable_done()->mutable_output());
                         o.request_id = r->done().request_id();
                         done(std::move(o));
                         return;
                       }
                       // The node was lost mid-request. Only an idempotent function may run
                       // again elsewhere: anything else may have had effects already.
                       excluded.push_back(target);
                       if (fn->idempotent && excluded.size() < 3) {
                         dispatchTo(app, fn, std::move(body), std::move(excluded), std::move(done));
                         return;
                       }
                       worker::RequestOutcome o;
                       o.status = absl::UnavailableError(
                           absl::StrCat("node ", target, " failed while running ", app->name, "/",
                                        fn->name, ": ", r.status().message()));
                       o.http_status = 503;
                       o.body = std::string(o.status.message()) + "\n";
                       done(std::move(o));
                     });
}

}  // namespace waverless::cluster
