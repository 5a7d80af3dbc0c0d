#include "cluster/membership.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "metrics/metrics.h"
#include "net/peer.h"

namespace waverless::cluster {

namespace pb = net::pb;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<sched::WorkerInfo> Membership::View::workers() const {
  std::vector<sched::WorkerInfo> out;
  for (const auto& [id, m] : members) {
    if (!m.config->worker) continue;
    out.push_back({sched::NodeId{id}, m.config->weight, m.alive, m.state.load()});
  }
  return out;
}

Membership::Membership(const ClusterConfig& config, uint32_t self, MembershipDeps deps,
                       ClusterTiming timing)
    : config_(config), self_(self), deps_(std::move(deps)), timing_(timing) {
  auto v = std::make_shared<View>();
  for (const auto& n : config_.nodes) v->members[n.id] = Member{&n};
  view_.store(std::move(v));
}

Membership::~Membership() { stop(); }

std::vector<uint32_t> Membership::heartbeatTargets(const ClusterConfig& config, uint32_t self) {
  std::vector<uint32_t> out;
  const bool any_meta = config.hasMeta();
  for (const auto& n : config.nodes) {
    if (n.id != self && (any_meta ? n.meta : n.master)) out.push_back(n.id);
  }
  return out;
}

bool Membership::detects() const {
  const NodeConfig* me = config_.find(self_);
  return me->meta || (me->master && heartbeatTargets(config_, self_).empty());
}

std::optional<uint32_t> Membership::master() const {
  if (deps_.meta_leader) return deps_.meta_leader();
  if (uint32_t m = learned_master_.load(std::memory_order_relaxed); m != 0) return m;
  // A cluster without meta nodes: the configured master, fixed.
  const NodeConfig* fixed = config_.master();
  if (!config_.hasMeta() && fixed != nullptr) return fixed->id;
  return std::nullopt;
}

absl::Status Membership::start(Targets targets) {
  const NodeConfig* me = config_.find(self_);
  if (me == nullptr) return absl::InvalidArgumentError("this node's id is not in the cluster");
  for (uint32_t id : heartbeatTargets(config_, self_)) {
    if (targets.count(id) == 0 || targets.at(id) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("no client for node ", id, ", which this node heartbeats to"));
    }
  }
  if (me->meta && !deps_.meta_leader) {
    return absl::InvalidArgumentError("a meta node needs the meta group's leader");
  }
  update([&](View& v) {
    Member& m = v.members[self_];
    m.alive = true;
    m.last_seen = Clock::now();
  });
  if (detects()) detector_ = std::jthread([this](std::stop_token st) { detectorLoop(st); });
  for (const auto& target : targets) {
    // Named copies: clang-14 cannot capture structured bindings.
    uint32_t id = target.first;
    net::PeerClient* client = target.second;
    heartbeats_.emplace_back(
        [this, id, client](std::stop_token st) { heartbeatLoop(st, id, client); });
  }
  return absl::OkStatus();
}

void Membership::stop() {
  for (auto& t : heartbeats_) t.request_stop();
  detector_.request_stop();
  for (auto& t : heartbeats_) t.join();
  heartbeats_.clear();
  if (detector_.joinable()) detector_.join();
}

void Membership::update(const std::function<void(View&)>& edit) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<View>(*view_.load());
  edit(*next);
  view_.store(std::move(next));
}

void Membership::heartbeatLoop(std::stop_token st, uint32_t target, net::PeerClient* client) {
  const bool detector = detects();
  while (!st.stop_requested()) {
    pb::HeartbeatRequest req;
    *req.mutable_state() = deps_.local_state();
    for (const auto& [name, version] : deps_.app_versions()) {
      (*req.mutable_app_versions())[name] = version;
    }
    if (deps_.shard_map) req.set_shard_map_version(deps_.shard_map().first);
    auto reply = client->heartbeat(req, timing_.heartbeat * 3);
    // A detector keeps the view its own heartbeats build; any other node
    // takes the master's, and only the master's (a deposed one may still
    // answer with a stale view).
    if (reply.ok() && !detector) {
      if (reply->master() != 0) learned_master_.store(reply->master(), std::memory_order_relaxed);
      if (reply->master() == target) {
        update([&](View& v) {
          for (const auto& w : reply->workers()) {
            auto it = v.members.find(w.id());
            if (it == v.members.end()) continue;
            it->second.alive = w.alive();
            it->second.state = w;
          }
          v.members[target].alive = true;
          v.members[target].last_seen = Clock::now();
        });
        deps_.on_master_apps(
            AppVersions(reply->app_versions().begin(), reply->app_versions().end()));
        if (!reply->shard_map().empty() && deps_.on_master_map) {
          deps_.on_master_map(reply->shard_map());
        }
      }
    } else if (!reply.ok() && !detector && learned_master_.load() == target) {
      // The master is unreachable: learn the next one from another reply.
      learned_master_.store(0, std::memory_order_relaxed);
    }
    std::this_thread::sleep_for(timing_.heartbeat);
  }
}

void Membership::detectorLoop(std::stop_token st) {
  while (!st.stop_requested()) {
    std::this_thread::sleep_for(timing_.detector_period);
    pb::WorkerState mine = deps_.local_state();  // /proc: before the lock
    auto now = Clock::now();
    std::vector<uint32_t> lost;
    update([&](View& v) {
      for (auto& [id, m] : v.members) {
        if (id == self_) {
          m.state = mine;
          m.last_seen = now;
          m.alive = true;
          continue;
        }
        bool was = m.alive;
        m.alive = m.last_seen != Clock::time_point{} && now - m.last_seen < timing_.dead_after;
        m.state.set_alive(m.alive);
        if (was && !m.alive) lost.push_back(id);
      }
    });
    for (uint32_t id : lost) {
      fprintf(stderr, "level=warn node=%u msg=\"no heartbeat for %lld ms: out of scheduling\"\n",
              id, static_cast<long long>(timing_.dead_after.count()));
    }
  }
}

pb::HeartbeatReply Membership::heartbeat(const pb::HeartbeatRequest& req) {
  bool joined = false;
  update([&](View& v) {
    auto it = v.members.find(req.state().id());
    if (it == v.members.end()) return;
    joined = !it->second.alive;
    it->second.state = req.state();
    it->second.last_seen = Clock::now();
    it->second.alive = true;
  });
  if (joined) fprintf(stderr, "level=info node=%u msg=\"joined\"\n", req.state().id());
  pb::HeartbeatReply reply;
  // Held: a range-for over view()->members would free the view (the temporary shared_ptr)
  // before the loop, and a concurrent update() would leave it iterating freed memory.
  const auto v = view();
  for (const auto& [id, m] : v->members) {
    if (!m.config->worker) continue;
    pb::WorkerState s = m.state;
    s.set_id(id);
    s.set_weight(m.config->weight);
    s.set_alive(m.alive);
    *reply.add_workers() = s;
  }
  for (const auto& [name, version] : deps_.app_versions()) {
    (*reply.mutable_app_versions())[name] = version;
  }
  reply.set_master(master().value_or(0));
  if (deps_.shard_map) {
    auto [version, encoded] = deps_.shard_map();
    if (version > req.shard_map_version()) reply.set_shard_map(std::move(encoded));
  }
  return reply;
}

std::string Membership::nodesJson() const {
  std::string out = "[";
  auto now = Clock::now();
  const uint32_t master_now = master().value_or(0);
  const auto v = view();  // held for the loop (see heartbeat())
  for (const auto& [id, m] : v->members) {
    if (out.size() > 1) out += ',';
    std::string roles;
    for (auto [on, name] :
         {std::pair{m.config->meta, "meta"}, std::pair{id == master_now, "master"},
          std::pair{m.config->worker, "worker"}}) {
      if (!on) continue;
      if (!roles.empty()) roles += ',';
      roles += absl::StrCat("\"", name, "\"");
    }
    long long ago = m.last_seen == Clock::time_point{}
                        ? -1
                        : std::chrono::duration_cast<milliseconds>(now - m.last_seen).count();
    absl::StrAppend(&out, "{\"id\":", id, ",\"addr\":\"", m.config->addr, "\",\"roles\":[", roles,
                    "],\"alive\":", m.alive ? "true" : "false", ",\"load\":", m.state.load(),
                    ",\"running\":", m.state.running(), ",\"instances\":", m.state.instances(),
                    ",\"rss_bytes\":", m.state.rss_bytes(),
                    ",\"cpu_seconds\":", m.state.cpu_seconds(), ",\"last_seen_ms_ago\":", ago, "}");
  }
  return out + "]";
}

void Membership::registerMetrics(metrics::Registry& metrics) {
  // Cluster-wide metrics on every node, per node label (the master's view is
  // the authoritative one).
  auto perNode = [this](auto value) {
    return [this, value] {
      metrics::Registry::Samples out;
      const auto v = view();  // held for the loop (see heartbeat())
      for (const auto& [id, m] : v->members) {
        out.push_back({{{"node", std::to_string(id)}}, value(m)});
      }
      return out;
    };
  };
  metrics.gauges("wl_node_up", "1 when the node is in the live cluster view",
                 perNode([](const Member& m) { return m.alive ? 1.0 : 0.0; }));
  metrics.gauges("wl_node_running", "Invocations running on each node",
                 perNode([](const Member& m) { return double(m.state.running()); }));
  metrics.gauges("wl_node_rss_bytes", "Resident memory of each node",
                 perNode([](const Member& m) { return double(m.state.rss_bytes()); }));
}

}  // namespace waverless::cluster
