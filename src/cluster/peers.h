// One RPC client per other node of cluster.yaml, shared by the roles of a
// node (membership, dispatch, KV, app shipping). The set of clients is fixed
// at construction: lookups take no lock; each PeerClient is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "cluster/cluster_config.h"
#include "net/peer.h"

namespace waverless::metrics {
class Registry;
}

namespace waverless::cluster {

class Peers {
 public:
  Peers(const ClusterConfig& config, uint32_t self);
  // null for this node and for ids not in the cluster.
  net::PeerClient* get(uint32_t id) const;
  // wl_net_bytes{peer,dir}: stream bytes sent to / received from each peer.
  void registerMetrics(metrics::Registry& metrics);
  void shutdown();  // fails pending calls; idempotent

 private:
  std::map<uint32_t, std::unique_ptr<net::PeerClient>> clients_;
};

}  // namespace waverless::cluster
