// The cluster's KV as the request runner reaches it (worker::ClusterKv): keys
// of `durability: replicated` patterns (the default) live in placement groups
// replicated by raft (src/shard/), keys of `durability: local` patterns in the
// store of the node that wrote them. Also the ShardLink that carries
// ReplicatedKv's calls over the peer stream, and their server side.
//
// Must not: run functions or decide where they run beyond naming the node
// that holds a key's data (dataNode), which data-aware placement follows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "app/app_manifest.h"
#include "cluster/cluster_config.h"
#include "common/timer_queue.h"
#include "net/peer.h"
#include "shard/replicated_kv.h"
#include "worker/cluster_kv.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::cluster {

class Peers;

// The durability of app's key: its deployed manifest's rule (Cluster looks it up in the registry).
using DurabilityOf = std::function<app::KeyDurability(std::string_view app, std::string_view key)>;

struct ShardedKvDeps {
  const ClusterConfig& config;
  Peers& peers;
  kv::KvStore& store;
  DurabilityOf durability;
  shard::RaftHost* host;  // this node's groups; null on nodes without the worker role
};

class ShardedKv : public worker::ClusterKv, public shard::ShardLink {
 public:
  ShardedKv(uint32_t self, ShardedKvDeps deps, std::shared_ptr<const shard::ShardMap> map);
  ~ShardedKv() override;

  absl::Status start();  // the retry timer
  void stop();

  shard::ReplicatedKv& replicated() { return *replicated_; }

  // worker::ClusterKv
  bool storedHere(std::string_view app, std::string_view key) override;
  uint32_t dataNode(std::string_view app, std::string_view key) override;
  void get(std::string app, std::string key, ValueDone done) override;
  void set(std::string app, std::string key, std::string value, worker::TriggerRecords triggers,
           StatusDone done) override;
  void del(std::string app, std::string key, StatusDone done) override;
  void cas(std::string app, std::string key, std::optional<std::string> expected, std::string value,
           worker::TriggerRecords triggers,
           absl::AnyInvocable<void(absl::StatusOr<bool>)> done) override;
  void incr(std::string app, std::string key, int64_t delta, worker::TriggerRecords triggers,
            absl::AnyInvocable<void(absl::StatusOr<int64_t>)> done) override;
  void setBatch(std::string app, KvPairs pairs, worker::TriggerRecords triggers,
                StatusDone done) override;

  // The group record's key lives in, and the write that retires the record (its run and its tree
  // have finished): proposed to the group's leader, retried like a set.
  uint32_t groupOf(std::string_view app, std::string_view key) const;
  void retireTrigger(const shard::TriggerRecord& record, StatusDone done);
  // A durable trigger's record as the group stores it: the writer (this node) is its origin.
  shard::TriggerRecord recordOf(std::string_view app, const worker::TriggerRecord& t) const;
  void scan(std::string app, std::string prefix, size_t limit, PairsDone done) override;

  // shard::ShardLink: one call over the peer stream.
  void call(uint32_t node, shard::ShardRequest request,
            absl::AnyInvocable<void(shard::ShardReply)> done) override;
  // The server side of call(): answers a peer's envelope carrying a shard request.
  void serve(const net::pb::Envelope& request, net::Reply reply);

 private:
  bool local(std::string_view app, std::string_view key) const;
  shard::ReplicatedKv::Clock::time_point deadline() const;

  const uint32_t self_;
  ShardedKvDeps deps_;
  common::TimerQueue timers_;
  std::unique_ptr<shard::ReplicatedKv> replicated_;
};

}  // namespace waverless::cluster
