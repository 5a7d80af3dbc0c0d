// The cluster's KV with one copy of each key, on its owner: the client the
// request runner's KV calls go through (worker::ClusterKv) and the server
// that answers other nodes' KV requests from this node's store.
//
// The owner of an app's key is straw2(app + "/" + key) over the configured
// workers and their weights, alive or not: every node computes it without
// asking anyone, and a key's home does not move when a node fails (its keys
// are Unavailable until it is back).
//
// Must not: run functions or decide where they run (Dispatcher does).
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/cluster_config.h"
#include "net/waverless.pb.h"
#include "sched/scheduler.h"
#include "worker/cluster_kv.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::cluster {

class Peers;

class RemoteKv : public worker::ClusterKv {
 public:
  // config, peers and store must outlive this object.
  RemoteKv(const ClusterConfig& config, uint32_t self, Peers& peers, kv::KvStore& store);

  // The owner of app's key.
  uint32_t owner(std::string_view app, std::string_view key) const;

  // worker::ClusterKv. Keys owned here are answered from the store before
  // the call returns.
  bool storedHere(std::string_view app, std::string_view key) override;
  uint32_t dataNode(std::string_view app, std::string_view key) override;
  void get(std::string app, std::string key, ValueDone done) override;
  void set(std::string app, std::string key, std::string value, StatusDone done) override;
  void del(std::string app, std::string key, StatusDone done) override;
  void setBatch(std::string app, KvPairs pairs, StatusDone done) override;
  void scan(std::string app, std::string prefix, size_t limit, PairsDone done) override;

  // Answers a peer's KV request (GET, SET, DELETE, SET_BATCH, SCAN) from this
  // node's store; reply.code is the store's status.
  void serve(const net::pb::KvRequest& request, net::pb::KvReply& reply);

 private:
  // One request to `node`; done gets the reply or Unavailable.
  void call(uint32_t node, net::pb::Envelope request,
            absl::AnyInvocable<void(absl::StatusOr<net::pb::KvReply>)> done);
  void single(net::pb::KvRequest::Op op, std::string app, std::string key, std::string value,
              ValueDone done);

  const uint32_t self_;
  Peers& peers_;
  kv::KvStore& store_;
  std::vector<sched::WorkerInfo> workers_;  // configured, for the owner rule
};

}  // namespace waverless::cluster
