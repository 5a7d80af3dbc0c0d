// A cluster of real `waverless node` processes on loopback, from one cluster.yaml: distinct port
// pairs, a shared admin token, node 1 deploying `apps` at its start. Not started: start() each.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dev_node.h"

namespace waverless::testing {

// specs[i] is node i+1's spec ("[meta, master]"); head goes above `nodes:` (shards:, ...).
// Nodes share the test module cache, except those whose own_cache[i] is set (root/cache<id>).
inline std::vector<std::unique_ptr<NodeProcess>> makeProcessCluster(
    const std::filesystem::path& root, const std::string& head,
    const std::vector<std::string>& specs, const std::filesystem::path& apps,
    const std::vector<bool>& own_cache = {}) {
  std::vector<uint16_t> ports;
  while (ports.size() < specs.size()) {
    uint16_t p = freePortPair();
    bool clash = false;
    for (uint16_t q : ports) clash |= p == q;
    if (!clash) ports.push_back(p);
  }
  {
    std::ofstream c(root / "cluster.yaml");
    c << head << "nodes:\n";
    for (size_t i = 0; i < specs.size(); ++i) {
      c << "  " << i + 1 << ": {addr: 127.0.0.1:" << ports[i] << ", spec: " << specs[i] << "}\n";
    }
  }
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string id = std::to_string(i + 1);
    std::vector<std::string> args = {"node",
                                     "--config",
                                     (root / "cluster.yaml").string(),
                                     "--id",
                                     id,
                                     "--data",
                                     (root / ("data" + id)).string(),
                                     "--cache",
                                     i < own_cache.size() && own_cache[i]
                                         ? (root / ("cache" + id)).string()
                                         : std::string(WL_TEST_CACHE),
                                     "--token-file",
                                     (root / "cluster.token").string()};
    if (i == 0 && !apps.empty()) args.insert(args.end(), {"--apps", apps.string()});
    nodes.push_back(std::make_unique<NodeProcess>(args, static_cast<uint16_t>(ports[i] + 1),
                                                  (root / ("node" + id + ".log")).string()));
  }
  return nodes;
}

}  // namespace waverless::testing
