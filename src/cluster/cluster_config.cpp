#include "cluster/cluster_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "sched/scheduler.h"

namespace waverless::cluster {

namespace {

std::pair<std::string, uint16_t> splitHostPort(const std::string& hp) {
  auto c = hp.rfind(':');
  if (c == std::string::npos) return {hp, 0};
  int port = std::atoi(hp.c_str() + c + 1);
  return {hp.substr(0, c), static_cast<uint16_t>(port > 0 && port < 65535 ? port : 0)};
}

}  // namespace

std::string NodeConfig::host() const { return splitHostPort(addr).first; }
uint16_t NodeConfig::port() const { return splitHostPort(addr).second; }
std::string NodeConfig::httpBind() const {
  auto [h, p] = splitHostPort(bind);
  return absl::StrCat(h, ":", p + 1);
}
std::string NodeConfig::httpAddr() const { return absl::StrCat(host(), ":", port() + 1); }
std::string NodeConfig::raftAddr() const { return absl::StrCat(host(), ":", port() + 2); }
std::string NodeConfig::shardAddr() const { return absl::StrCat(host(), ":", port() + 3); }
std::string NodeConfig::shardBind() const {
  auto [host, port] = splitHostPort(bind);
  return absl::StrCat(host, ":", port + 3);
}

const NodeConfig* ClusterConfig::find(uint32_t id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

bool ClusterConfig::hasMeta() const {
  return std::any_of(nodes.begin(), nodes.end(), [](const NodeConfig& n) { return n.meta; });
}

const NodeConfig* ClusterConfig::master() const {
  for (const auto& n : nodes) {
    if (n.master) return &n;
  }
  return nullptr;
}

absl::StatusOr<ClusterConfig> parseClusterConfig(std::string_view yaml, std::string_view file) {
  const std::string f(file);
  auto err = [&](int line, const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat(f, ":", line + 1, ": ", msg));
  };
  ClusterConfig cfg;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return err(0, "expected a map with `nodes:`");
    for (const auto& kv : root) {
      std::string k = kv.first.as<std::string>();
      if (k != "nodes" && k != "scheduler" && k != "shards" && k != "replicas" &&
          k != "replace_after") {
        return err(kv.first.Mark().line,
                   "unknown field '" + k + "' (nodes, scheduler, shards, replicas, replace_after)");
      }
    }
    if (root["replace_after"]) {
      // "30s", "500ms", or a number of seconds.
      std::string text = root["replace_after"].as<std::string>();
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      std::string unit = end == nullptr ? "" : std::string(end);
      double ms = unit == "ms" ? v : (unit == "s" || unit.empty()) ? v * 1000 : -1;
      if (end == text.c_str() || ms < 100 || ms > 86400e3) {
        return err(root["replace_after"].Mark().line,
                   "replace_after: want a duration from 100ms to 24h such as 30s or 500ms, not '" +
                       text + "'");
      }
      cfg.replace_after = std::chrono::milliseconds(static_cast<int64_t>(ms));
    }
    for (auto [field, target, max] :
         {std::tuple{"shards", &cfg.shards, 4096u}, std::tuple{"replicas", &cfg.replicas, 7u}}) {
      if (!root[field]) continue;
      long v = 0;
      try {
        v = root[field].as<long>();
      } catch (const YAML::Exception&) {
      }
      if (v < 1 || v > static_cast<long>(max)) {
        return err(root[field].Mark().line,
                   absl::StrCat(field, ": want an integer 1..", max, ", not '",
                                root[field].as<std::string>(), "'"));
      }
      *target = static_cast<uint32_t>(v);
    }
    if (root["scheduler"]) {
      cfg.scheduler = root["scheduler"].as<std::string>();
      if (!sched::parsePolicy(cfg.scheduler).ok()) {
        return err(root["scheduler"].Mark().line,
                   "scheduler: '" + cfg.scheduler +
                       "' is not one of random, hash, straw2, least-loaded, data-aware");
      }
    }
    YAML::Node nodes = root["nodes"];
    if (!nodes || !nodes.IsMap() || nodes.size() == 0) return err(0, "nodes: missing or empty");
    std::set<std::string> addrs;
    for (const auto& kv : nodes) {
      int line = kv.first.Mark().line;
      NodeConfig n;
      long id = -1;
      try {
        id = kv.first.as<long>();
      } catch (const YAML::Exception&) {
      }
      if (id <= 0 || id > 65535) return err(line, "node ids are integers 1..65535");
      n.id = static_cast<uint32_t>(id);
      const YAML::Node& v = kv.second;
      if (!v.IsMap()) return err(line, absl::StrCat("nodes.", id, ": expected {addr, spec}"));
      for (const auto& f2 : v) {
        std::string k = f2.first.as<std::string>();
        if (k != "addr" && k != "spec" && k != "weight" && k != "bind") {
          return err(f2.first.Mark().line, absl::StrCat("nodes.", id, ": unknown field '", k,
                                                        "' (addr, spec, weight, bind)"));
        }
      }
      if (!v["addr"]) return err(line, absl::StrCat("nodes.", id, ".addr: missing"));
      n.addr = v["addr"].as<std::string>();
      if (splitHostPort(n.addr).second == 0 || splitHostPort(n.addr).second > 65532) {
        return err(v["addr"].Mark().line,
                   absl::StrCat("nodes.", id, ".addr: want host:port, not '", n.addr, "'"));
      }
      n.bind = v["bind"] ? v["bind"].as<std::string>() : n.addr;
      if (!addrs.insert(n.addr).second) {
        return err(v["addr"].Mark().line, absl::StrCat("nodes.", id, ".addr: used twice"));
      }
      if (v["weight"]) {
        n.weight = v["weight"].as<double>();
        if (!(n.weight > 0)) return err(v["weight"].Mark().line, "weight must be > 0");
      }
      if (!v["spec"] || !v["spec"].IsSequence()) {
        return err(line, absl::StrCat("nodes.", id, ".spec: want a list of meta, master, worker"));
      }
      for (const auto& s : v["spec"]) {
        std::string role = s.as<std::string>();
        if (role == "meta")
          n.meta = true;
        else if (role == "master")
          n.master = true;
        else if (role == "worker")
          n.worker = true;
        else
          return err(s.Mark().line, "unknown role '" + role + "' (meta, master, worker)");
      }
      if (cfg.find(n.id) != nullptr) return err(line, absl::StrCat("node ", id, " listed twice"));
      cfg.nodes.push_back(std::move(n));
    }
  } catch (const YAML::Exception& e) {
    return err(e.mark.line, std::string("yaml: ") + e.msg);
  }
  std::sort(cfg.nodes.begin(), cfg.nodes.end(),
            [](const NodeConfig& a, const NodeConfig& b) { return a.id < b.id; });
  int masters = 0, workers = 0, metas = 0;
  for (const auto& n : cfg.nodes) {
    masters += n.master;
    workers += n.worker;
    metas += n.meta;
  }
  if (metas == 0 && masters != 1) {
    return err(0,
               "exactly one node must have the master role (or list meta nodes: the master "
               "role then follows their raft leader)");
  }
  for (const auto& n : cfg.nodes) {
    if (metas > 0 && n.master && !n.meta) {
      return err(0, absl::StrCat("node ", n.id,
                                 ": the master role follows the meta raft leader, so a master "
                                 "must also be a meta node"));
    }
  }
  if (workers == 0) return err(0, "at least one node must have the worker role");
  return cfg;
}

}  // namespace waverless::cluster
