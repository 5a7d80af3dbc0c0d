#include "cluster/cluster.h"

#include <sys/resource.h>

#include <fstream>

#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "wasm/engine.h"
#include "worker/request_runner.h"

namespace waverless::cluster {

namespace pb = net::pb;

Cluster::Cluster(ClusterConfig config, uint32_t self, ClusterDeps deps, ClusterTiming timing)
    : config_(std::move(config)), deps_(std::move(deps)) {
  self_ = config_.find(self);
  if (self_ == nullptr) return;  // start() says why
  peers_ = std::make_unique<Peers>(config_, self);
  if (self_->meta) {
    // The app versions every node should serve are raft-replicated among the
    // meta nodes: they survive the master and every meta node applies them.
    meta::RaftLogOptions ro;
    ro.id = self;
    ro.address = self_->raftAddr();
    for (const auto& n : config_.nodes) {
      if (n.meta) ro.peers.push_back({n.id, n.raftAddr()});
    }
    ro.dir = deps_.scratch_dir.parent_path() / "raft";
    raft_ = std::make_unique<meta::RaftLog>(ro);
  }
  shipper_ = std::make_unique<AppShipper>(
      self, AppShipperDeps{config_, *peers_, deps_.registry, raft_.get(), deps_.scratch_dir,
                           deps_.cache_dir, [this] { return membership_->master(); },
                           [this](uint32_t id) {
                             auto v = membership_->view();
                             auto it = v->members.find(id);
                             return it != v->members.end() && it->second.alive;
                           }});
  MembershipDeps md;
  md.local_state = [this] { return localState(); };
  md.app_versions = [this] {
    AppVersions out;
    for (const auto& a : deps_.registry.list()) out[a->name] = a->version;
    return out;
  };
  md.on_master_apps = [this](const AppVersions& wanted) { shipper_->onMasterApps(wanted); };
  if (raft_) {
    md.meta_leader = [this]() -> std::optional<uint32_t> {
      auto l = raft_->leader();
      if (!l) return std::nullopt;
      return static_cast<uint32_t>(l->id);
    };
  }
  md.shard_map = [this] {
    auto m = placement_->map();
    return std::pair{m->version(), m->encode()};
  };
  md.on_master_map = [this](std::string encoded) { placement_->offer(std::move(encoded)); };
  membership_ = std::make_unique<Membership>(config_, self, std::move(md), timing);
  // Every node computes the same first map from cluster.yaml: the configured
  // workers, alive or not, so the groups' first replicas agree everywhere.
  std::vector<sched::WorkerInfo> workers;
  for (const auto& n : config_.nodes) {
    if (n.worker) workers.push_back({sched::NodeId{n.id}, n.weight, true, 0});
  }
  auto map = shard::ShardMap::place(config_.shards, config_.replicas, workers);
  if (!map.ok()) {
    self_ = nullptr;  // parseClusterConfig guarantees a worker; start() reports it anyway
    return;
  }
  shard_map_ = std::make_shared<const shard::ShardMap>(std::move(*map));
  if (self_->worker) {
    shard::RaftHostOptions so;
    so.node_id = self;
    so.listen_address = self_->shardBind();
    so.dir = deps_.scratch_dir.parent_path() / "shards";
    so.secret = deps_.cluster_secret;
    shard_host_ = std::make_unique<shard::RaftHost>(so, deps_.kv);
  }
  kv_ = std::make_unique<ShardedKv>(
      self,
      ShardedKvDeps{config_, *peers_, deps_.kv,
                    [this](std::string_view app, std::string_view key) {
                      auto a = deps_.registry.find(app);
                      return a == nullptr ? app::KeyDurability::kReplicated
                                          : a->manifest.durabilityOf(key);
                    },
                    shard_host_.get()},
      shard_map_);
  placement_ = std::make_unique<ShardPlacement>(
      self, ShardPlacementDeps{config_, *membership_, *kv_, shard_host_.get(), raft_.get()},
      shard_map_);
  triggers_ = std::make_unique<TriggerLog>(
      self,
      TriggerLogDeps{*peers_, deps_.registry, deps_.runner, *kv_, deps_.kv, shard_host_.get()});
  dispatcher_ = std::make_unique<Dispatcher>(
      self, DispatcherDeps{config_, *membership_, *kv_, *peers_, deps_.registry, deps_.runner,
                           *triggers_, [this] { return localLoad(); }});
}

Cluster::~Cluster() { stop(); }

absl::Status Cluster::start() {
  if (self_ == nullptr) return absl::InvalidArgumentError("this node's id is not in the cluster");
  server_ = std::make_unique<net::RpcServer>(self_->bind, *this);
  started_ = true;  // stop() undoes whatever part of this succeeded
  if (auto st = server_->start(); !st.ok()) return st;
  if (raft_) {
    raft_->onApply([this](const std::string& key, const std::optional<std::string>& value) {
      if (key == ShardPlacement::kMetaKey) {
        if (value) placement_->offer(*value);
        return;
      }
      shipper_->onMetaApply(key, value);
    });
    if (auto st = raft_->start(); !st.ok()) return st;
  }
  if (auto st = startShards(); !st.ok()) return st;
  if (auto st = triggers_->start(); !st.ok()) return st;
  if (auto st = shipper_->start(); !st.ok()) return st;
  membership_->registerMetrics(deps_.metrics);
  placement_->registerMetrics(deps_.metrics);
  peers_->registerMetrics(deps_.metrics);
  triggers_->registerMetrics(deps_.metrics);
  Membership::Targets targets;
  for (uint32_t id : Membership::heartbeatTargets(config_, self_->id))
    targets[id] = peers_->get(id);
  return membership_->start(std::move(targets));
}

void Cluster::stop() {
  if (!started_) return;
  started_ = false;
  membership_->stop();
  placement_->stop();
  shipper_->stop();
  triggers_->stop();
  kv_->stop();
  if (shard_host_) shard_host_->stop();
  if (raft_) raft_->stop();
  peers_->shutdown();
  server_->stop();
}

absl::Status Cluster::startShards() {
  if (auto st = kv_->start(); !st.ok()) return st;
  if (shard_host_) {
    if (auto st = shard_host_->start(); !st.ok()) return st;
  }
  return placement_->start();  // this node's groups, of the newest map it knows
}

// CPU time used, per unit of capacity (weight: cores). Not invocations in flight: one parked on
// a KV round trip uses no CPU, and counting it made a node serving 64 concurrent kv_set requests
// look 64 times full, so data-aware sent nearly every request to another node: two network hops
// each for nothing (docs/cluster.md, bench/RESULTS.md).
double Cluster::localLoad() const { return cpu_load_.cores() / self_->weight; }

pb::WorkerState Cluster::localState() {
  pb::WorkerState s;
  s.set_id(self_->id);
  s.set_weight(self_->weight);
  s.set_alive(true);
  uint64_t running = deps_.runner.inflight();
  s.set_running(running);
  s.set_load(localLoad());
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

// --- net::PeerHandler -------------------------------------------------------------

void Cluster::onEnvelope(pb::Envelope req, net::Reply reply) {
  if (req.body_case() == pb::Envelope::kShardRequest) {
    kv_->serve(req, std::move(reply));
    return;
  }
  dispatcher_->serveInvoke(req, std::move(reply));
}

pb::HeartbeatReply Cluster::heartbeat(const pb::HeartbeatRequest& request) {
  return membership_->heartbeat(request);
}

pb::Ack Cluster::installApp(const pb::AppPackage& package) { return shipper_->installApp(package); }

absl::StatusOr<pb::AppPackage> Cluster::fetchApp(const std::string& name) {
  return shipper_->fetchApp(name);
}

pb::Ack Cluster::removeApp(const std::string& name, net::Removal scope) {
  return shipper_->removeApp(name, scope);
}

pb::Ack Cluster::metaPut(const pb::MetaEntry& entry) { return shipper_->metaPut(entry); }

}  // namespace waverless::cluster
