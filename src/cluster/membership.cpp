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

absl::Status Membership::start(net::PeerClient* master) {
  const NodeConfig* me = config_.find(self_);
  if (me == nullptr) return absl::InvalidArgumentError("this node's id is not in the cluster");
  if (!me->master && master == nullptr) {
    return absl::InvalidArgumentError("a node other than the master needs the master's client");
  }
  update([&](View& v) {
    Member& m = v.members[self_];
    m.alive = true;
    m.last_seen = Clock::now();
  });
  if (me->master) {
    detector_ = std::jthread([this](std::stop_token st) { detectorLoop(st); });
  } else {
    heartbeat_ = std::jthread([this, master](std::stop_token st) { heartbeatLoop(st, master); });
  }
  return absl::OkStatus();
}

void Membership::stop() {
  for (std::jthread* t : {&heartbeat_, &detector_}) {
    if (!t->joinable()) continue;
    t->request_stop();
    t->join();
  }
}

void Membership::update(const std::function<void(View&)>& edit) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<View>(*view_.load());
  edit(*next);
  view_.store(std::move(next));
}

void Membership::heartbeatLoop(std::stop_token st, net::PeerClient* master) {
  const uint32_t master_id = config_.master()->id;
  while (!st.stop_requested()) {
    pb::HeartbeatRequest req;
    *req.mutable_state() = deps_.local_state();
    for (const auto& [name, version] : deps_.app_versions()) {
      (*req.mutable_app_versions())[name] = version;
    }
    auto reply = master->heartbeat(req, timing_.heartbeat * 3);
    if (reply.ok()) {
      update([&](View& v) {
        for (const auto& w : reply->workers()) {
          auto it = v.members.find(w.id());
          if (it == v.members.end()) continue;
          it->second.alive = w.alive();
          it->second.state = w;
        }
        v.members[master_id].alive = true;
      });
      deps_.on_master_apps(AppVersions(reply->app_versions().begin(), reply->app_versions().end()));
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
  for (const auto& [id, m] : view()->members) {
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
  return reply;
}

std::string Membership::nodesJson() const {
  std::string out = "[";
  auto now = Clock::now();
  for (const auto& [id, m] : view()->members) {
    if (out.size() > 1) out += ',';
    std::string roles;
    for (auto [on, name] :
         {std::pair{m.config->meta, "meta"}, std::pair{m.config->master, "master"},
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
      for (const auto& [id, m] : view()->members) {
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
