// The processes of the harness's cluster: master + workers as real `waverless node` processes,
// on loopback or each in its own network namespace (made by tests/faults/run), killed, paused,
// cut off and restarted by the fault schedule.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "http/http_client.h"

namespace waverless::faults {

struct ClusterLayout {
  std::filesystem::path binary;
  std::filesystem::path root;  // cluster.yaml, token, data and logs of every node
  std::filesystem::path apps;  // deployed by the master at its first start
  std::filesystem::path cache;
  int workers = 5;
  // Empty: loopback, one port pair per node. Else nodes run in namespaces <netns>-n<id> with
  // address <net>.<id> and port 2500, reachable from here through the bridge.
  std::string netns;
  std::string net;
};

class NodeProc {
 public:
  NodeProc(const ClusterLayout& layout, int id, std::string host, uint16_t port, bool master);
  ~NodeProc();
  NodeProc(const NodeProc&) = delete;
  NodeProc& operator=(const NodeProc&) = delete;

  // Starts the process; it answers /healthz within `wait`, or false.
  bool start(std::chrono::seconds wait);
  void kill9();   // and reaps it
  void pause();   // SIGSTOP
  void resume();  // SIGCONT
  // Its link down / up (netns only): nothing reaches it, it reaches nothing.
  bool partition(bool cut);
  bool running() const { return pid_ > 0; }
  bool paused() const { return paused_; }

  int id() const { return id_; }
  bool master() const { return master_; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  std::string logPath() const;

  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body, std::chrono::milliseconds timeout) const;

 private:
  const ClusterLayout& layout_;
  int id_;
  std::string host_;
  uint16_t port_;
  bool master_;
  pid_t pid_ = -1;
  bool paused_ = false;
  std::string token_;
};

// Writes cluster.yaml and the shared admin token; makes the nodes (not started).
std::vector<std::unique_ptr<NodeProc>> makeCluster(const ClusterLayout& layout);

// Runs a command line (sh -c); its exit status.
int runShell(const std::string& cmd);

}  // namespace waverless::faults
