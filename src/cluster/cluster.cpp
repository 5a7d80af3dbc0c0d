#include "cluster/cluster.h"

#include <sys/resource.h>

#include <fstream>

#include "meta/app_record.h"
#include "meta/app_registry.h"
#include "wasm/engine.h"
#include "worker/request_runner.h"

namespace waverless::cluster {

namespace pb = net::pb;

Cluster::Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing)
    : config_(std::move(config)), deps_(std::move(deps)) {
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
  dispatcher_ = std::make_unique<Dispatcher>(
      self, DispatcherDeps{config_, *membership_, *kv_, *peers_, deps_.registry, deps_.runner});
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

// --- peer stream ------------------------------------------------------------------

void Cluster::onEnvelope(pb::Envelope req, net::Reply reply) {
  if (req.has_kv()) {
    pb::Envelope out;
    out.set_id(req.id());
    kv_->serve(req.kv(), *out.mutable_kv_reply());
    reply(std::move(out));
    return;
  }
  dispatcher_->serveInvoke(req, std::move(reply));
}

}  // namespace waverless::cluster
