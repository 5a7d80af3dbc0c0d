// cluster.yaml: the nodes of a cluster, their addresses and roles.
//
//   scheduler: data-aware          # optional: random|hash|straw2|least-loaded|data-aware
//   shards: 64                     # optional: placement groups of the replicated KV (fixed)
//   replicas: 3                    # optional: copies of each group (fewer if fewer workers)
//   replace_after: 30s             # optional: a worker down this long has its copies moved
//   nodes:
//     1: {addr: 127.0.0.1:2500, spec: [meta, master]}
//     2: {addr: 127.0.0.1:2600, spec: [meta, worker], weight: 2, bind: 0.0.0.0:2600}
//
// `addr` is what other nodes dial (advertised); `bind` (default: addr) is
// where the node listens. HTTP is on the same host at port + 1, the meta raft
// group at port + 2, and the placement groups' raft (one port for all) at
// port + 3.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::cluster {

struct NodeConfig {
  uint32_t id = 0;
  std::string addr;  // host:port for RPC, advertised
  std::string bind;  // host:port to listen on for RPC
  bool meta = false, master = false, worker = false;
  double weight = 1.0;

  std::string host() const;
  uint16_t port() const;
  std::string httpBind() const;   // bind host, port + 1
  std::string httpAddr() const;   // addr host, port + 1
  std::string raftAddr() const;   // addr host, port + 2 (meta nodes' raft transport)
  std::string shardAddr() const;  // addr host, port + 3 (workers' placement-group raft)
  std::string shardBind() const;  // bind host, port + 3
};

struct ClusterConfig {
  std::string scheduler = "data-aware";
  uint32_t shards = 64;
  uint32_t replicas = 3;
  std::chrono::milliseconds replace_after{30000};
  std::vector<NodeConfig> nodes;  // sorted by id

  const NodeConfig* find(uint32_t id) const;
  // The first node configured with the master role. With meta nodes the role
  // follows their raft leader (Membership::master()) and this is only the node
  // that deploys its --apps folder first.
  const NodeConfig* master() const;
  // Whether any node is meta: then the master role follows the meta raft leader.
  bool hasMeta() const;
};

absl::StatusOr<ClusterConfig> parseClusterConfig(std::string_view yaml,
                                                 std::string_view file = "cluster.yaml");

}  // namespace waverless::cluster
