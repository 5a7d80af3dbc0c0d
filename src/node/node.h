// One Waverless node: composes the roles (meta: app registry; master: HTTP
// gateway and routing; worker: engine, KV and request runner) in one
// process. Several Nodes can live in one test process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace waverless::node {

struct NodeOptions {
  std::string http_address = "127.0.0.1";
  uint16_t http_port = 2501;  // 0: any free port
  std::filesystem::path data_dir = "waverless-data";
  std::filesystem::path apps_dir;   // app folders deployed at start (built if stale)
  std::filesystem::path cache_dir;  // compiled modules; empty: <data_dir>/module-cache
  size_t max_body_bytes = size_t{64} << 20;
  int executor_threads = 0;  // 0: one per core
  // Linear memory of every instance, running or idle (docs/limits.md).
  size_t memory_budget_bytes = size_t{4} << 30;
  int io_threads = 1;
  // Serve HTTP on the executor's threads (a request stays on one thread);
  // false: io_threads threads of its own.
  bool share_io_threads = true;
  bool fsync_writes = false;  // true: KV writes survive power loss, not just kill -9
  // Cluster mode: cluster.yaml and this node's id in it. The node's HTTP and
  // RPC addresses then come from the file (http_* above are ignored).
  std::filesystem::path cluster_config;
  uint32_t node_id = 0;
  // The admin token every /api/* call must present; empty:
  // <data_dir>/admin.token. Made (mode 0600) when the file does not exist.
  // The nodes of a cluster share one file.
  std::filesystem::path token_file;
  // HTTPS: both set serves the HTTP listener over TLS (PEM files).
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;
  // "HOST:PORT": a listener of its own serving only /metrics, without a
  // token (then /metrics on the main listener needs the admin token).
  std::string metrics_address;
};

class Node {
 public:
  explicit Node(NodeOptions options);
  ~Node();
  absl::Status start();
  void stop();  // idempotent; reverse order of start
  uint16_t httpPort() const;
  uint16_t metricsPort() const;  // 0 without metrics_address

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::node
