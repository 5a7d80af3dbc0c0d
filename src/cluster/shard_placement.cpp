#include "cluster/shard_placement.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cluster/membership.h"
#include "cluster/sharded_kv.h"
#include "meta/raft_log.h"
#include "metrics/metrics.h"
#include "shard/raft_host.h"
#include "shard/replicated_kv.h"

namespace waverless::cluster {

using Clock = std::chrono::steady_clock;

ShardPlacement::ShardPlacement(uint32_t self, ShardPlacementDeps deps,
                               std::shared_ptr<const shard::ShardMap> first)
    : self_(self), deps_(deps), map_(std::move(first)) {}

ShardPlacement::~ShardPlacement() { stop(); }

std::shared_ptr<const shard::ShardMap> ShardPlacement::map() const {
  std::lock_guard lock(mu_);
  return map_;
}

absl::Status ShardPlacement::start() {
  // A restarted meta node knows the committed map from its raft snapshot and log already.
  if (deps_.raft != nullptr) {
    if (auto v = deps_.raft->get(kMetaKey)) {
      if (auto m = shard::ShardMap::decode(*v); m && m->version() > map()->version()) {
        auto next = std::make_shared<const shard::ShardMap>(std::move(*m));
        {
          std::lock_guard lock(mu_);
          map_ = next;
        }
        deps_.kv.replicated().setMap(next);
      }
    }
  }
  if (deps_.host != nullptr) {
    auto m = map();
    for (uint32_t g : m->groupsOn(self_)) {
      std::vector<shard::Replica> replicas;
      for (uint32_t n : m->replicasOf(g))
        replicas.push_back({n, deps_.config.find(n)->shardAddr()});
      // Only version 1's replicas bootstrap a group; a later one joins and is filled by its leader.
      if (auto st = deps_.host->openGroup(g, replicas, m->version() == 1); !st.ok()) return st;
      deps_.host->setReplicas(g, std::move(replicas));
    }
    // Copies a map moved away while this node was down.
    if (m->version() > 1) {
      for (uint32_t g = 0; g < m->groups(); ++g) {
        const auto& reps = m->replicasOf(g);
        if (std::find(reps.begin(), reps.end(), self_) == reps.end()) deps_.host->dropGroup(g);
      }
    }
  }
  thread_ = std::jthread([this](std::stop_token st) { loop(st); });
  return absl::OkStatus();
}

void ShardPlacement::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
}

void ShardPlacement::offer(std::string encoded) {
  std::lock_guard lock(mu_);
  offered_ = std::move(encoded);
  cv_.notify_all();
}

void ShardPlacement::loop(std::stop_token st) {
  while (!st.stop_requested()) {
    std::string offered;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, st, std::chrono::seconds(1), [&] { return !offered_.empty(); });
      offered.swap(offered_);
    }
    if (st.stop_requested()) return;
    if (!offered.empty()) {
      auto m = shard::ShardMap::decode(offered);
      if (!m) {
        fprintf(stderr, "level=error msg=\"ignored an undecodable shard map\"\n");
      } else if (m->version() > map()->version()) {
        adopt(std::make_shared<const shard::ShardMap>(std::move(*m)));
      }
    }
    if (deps_.raft != nullptr && deps_.membership.master() == self_) replaceDeadWorkers();
  }
}

void ShardPlacement::adopt(std::shared_ptr<const shard::ShardMap> next) {
  {
    std::lock_guard lock(mu_);
    map_ = next;
  }
  deps_.kv.replicated().setMap(next);
  fprintf(stderr, "level=info version=%llu msg=\"shard map adopted\"\n",
          static_cast<unsigned long long>(next->version()));
  if (deps_.host == nullptr) return;
  for (uint32_t g = 0; g < next->groups(); ++g) {
    const auto& reps = next->replicasOf(g);
    if (std::find(reps.begin(), reps.end(), self_) == reps.end()) {
      // Closed before deleted: from then on this node is simply absent from the group.
      deps_.host->dropGroup(g);
      continue;
    }
    std::vector<shard::Replica> replicas;
    for (uint32_t n : reps) replicas.push_back({n, deps_.config.find(n)->shardAddr()});
    absl::Status st = deps_.host->openGroup(g, replicas, /*bootstrap=*/false);
    if (!st.ok()) {
      fprintf(stderr, "level=warn group=%u msg=\"opening a group placed here: %s\"\n", g,
              std::string(st.message()).c_str());
    }
    deps_.host->setReplicas(g, std::move(replicas));
  }
}

void ShardPlacement::replaceDeadWorkers() {
  auto view = deps_.membership.view();
  auto now = Clock::now();
  auto current = map();
  for (const auto& [id, m] : view->members) {
    if (!m.config->worker) continue;
    if (m.alive) {
      down_since_.erase(id);
      warned_.erase(id);
      continue;
    }
    auto since = down_since_.emplace(id, now).first->second;
    if (now - since < deps_.config.replace_after || current->groupsOn(id).empty()) continue;
    shard::ShardMap next = current->without(id, view->workers());
    bool shrinks = false;
    for (uint32_t g = 0; g < next.groups(); ++g) {
      shrinks |= next.replicasOf(g).size() < current->replicasOf(g).size();
    }
    if (shrinks) {
      if (!warned_[id]) {
        fprintf(stderr,
                "level=warn node=%u msg=\"down for %lld ms, but no live worker can take "
                "its copies; its groups run on fewer until it is back\"\n",
                id, static_cast<long long>(deps_.config.replace_after.count()));
        warned_[id] = true;
      }
      continue;
    }
    fprintf(
        stderr, "level=warn node=%u version=%llu msg=\"down for %lld ms: moving its %zu groups\"\n",
        id, static_cast<unsigned long long>(next.version()),
        static_cast<long long>(deps_.config.replace_after.count()), current->groupsOn(id).size());
    absl::Status st = deps_.raft->put(kMetaKey, next.encode(), std::chrono::seconds(5));
    if (!st.ok()) {
      fprintf(stderr, "level=warn msg=\"shard map not committed: %s\"\n",
              std::string(st.message()).c_str());
      return;
    }
    offer(next.encode());  // the apply callback offers it too; the newer one wins either way
    return;                // one worker per round: the next sees this map
  }
}

void ShardPlacement::registerMetrics(metrics::Registry& metrics) {
  metrics.gauge("wl_shard_map_version", "Version of the shard map this node routes by",
                [this] { return double(map()->version()); });
  if (deps_.host == nullptr) return;
  // Which groups this node leads: what a failover measurement must kill.
  metrics.gauges("wl_shard_leader", "1 for each placement group this node leads", [this] {
    metrics::Registry::Samples out;
    for (uint32_t g : deps_.host->openGroups()) {
      if (deps_.host->leads(g)) out.push_back({{{"group", std::to_string(g)}}, 1.0});
    }
    return out;
  });
  // Their ratio is how many raft appends, across all groups, one fsync carries.
  metrics.gauge("wl_raft_log_appends", "Raft appends written to this node's shared log since start",
                [this] { return double(deps_.host->stats().log_appends); });
  metrics.gauge("wl_raft_log_syncs", "WAL syncs of this node's shared raft log since start",
                [this] { return double(deps_.host->stats().log_syncs); });
  // Their ratio is how many raft messages, across all groups, one write to a peer carries.
  metrics.gauge("wl_raft_messages_sent", "Raft messages this node sent to its peers since start",
                [this] { return double(deps_.host->stats().messages_sent); });
  metrics.gauge("wl_raft_message_writes", "Socket writes that carried this node's raft messages",
                [this] { return double(deps_.host->stats().message_writes); });
  metrics.gauge("wl_raft_leader_transfers",
                "Groups this node handed to a replica that led fewer (leadership balancing)",
                [this] { return double(deps_.host->stats().leader_transfers); });
  metrics.gauge("wl_raft_follow_transfers",
                "Of those, groups handed to the replica most of their writes entered at",
                [this] { return double(deps_.host->stats().follow_transfers); });
  metrics.gauge("wl_shard_groups_hosted", "Placement groups with a replica on this node",
                [this] { return double(deps_.host->openGroups().size()); });
  metrics.gauge("wl_shard_groups_off_map",
                "Groups this node leads whose raft voters are not the shard map's replicas yet",
                [this] {
                  auto m = map();
                  int off = 0;
                  for (uint32_t g : deps_.host->openGroups()) {
                    if (g >= m->groups() || !deps_.host->leads(g)) continue;
                    auto voters = deps_.host->votersOf(g);
                    std::vector<uint64_t> want(m->replicasOf(g).begin(), m->replicasOf(g).end());
                    std::sort(voters.begin(), voters.end());
                    std::sort(want.begin(), want.end());
                    off += voters != want;
                  }
                  return double(off);
                });
}

}  // namespace waverless::cluster
