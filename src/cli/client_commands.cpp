// The listing commands: apps, logs (with --follow) and status, each as a
// table for people or JSON (--output json) for scripts.
#include <unistd.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_common.h"

namespace waverless::cli {

namespace pt = boost::property_tree;

namespace {

absl::StatusOr<pt::ptree> parseJson(const std::string& text, const std::string& what) {
  pt::ptree tree;
  std::istringstream in(text);
  try {
    pt::read_json(in, tree);
  } catch (const pt::json_parser_error& e) {
    return absl::DataLossError("the node's " + what + " is not the JSON expected: " + e.what());
  }
  return tree;
}

std::vector<std::string> strings(const pt::ptree& t, const std::string& key) {
  std::vector<std::string> out;
  if (auto c = t.get_child_optional(key)) {
    for (const auto& [k, v] : *c) out.push_back(v.get_value<std::string>());
  }
  return out;
}

std::string humanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

// Columns padded to their widest cell; the last one is not padded.
void printTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    printf("%s\n", line.c_str());
  }
}

// One entry of GET /api/apps/APP/logs: "<unix ms> req=<id> fn=<fn> | <text>",
// the text's further lines indented by four spaces.
struct LogEntry {
  long long unix_ms = 0;
  std::string request_id, fn, text, raw;
};

std::vector<LogEntry> parseLogs(const std::string& body) {
  std::vector<LogEntry> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("    ") && !out.empty()) {
      out.back().text += "\n" + line.substr(4);
      out.back().raw += "\n" + line;
      continue;
    }
    LogEntry e;
    e.raw = line;
    auto bar = line.find(" | ");
    std::string head = line.substr(0, bar);
    e.text = bar == std::string::npos ? "" : line.substr(bar + 3);
    std::istringstream h(head);
    std::string field;
    h >> e.unix_ms;
    while (h >> field) {
      if (field.starts_with("req=")) e.request_id = field.substr(4);
      if (field.starts_with("fn=")) e.fn = field.substr(3);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string logJson(const LogEntry& e) {
  return absl::StrCat("{\"unix_ms\":", e.unix_ms, ",\"request_id\":\"", jsonEscape(e.request_id),
                      "\",\"fn\":\"", jsonEscape(e.fn), "\",\"text\":\"", jsonEscape(e.text),
                      "\"}");
}

}  // namespace

int runApps(const Args& a, const Client& c) {
  Output out;
  if (!outputOf(a, out)) return kUsage;
  auto body = adminGet(c, "/api/apps");
  if (!body.ok()) return fail(std::string(body.status().message()));
  if (out == Output::kJson) {
    printf("%s\n", body->c_str());
    return 0;
  }
  auto tree = parseJson(*body, "app list");
  if (!tree.ok()) return fail(std::string(tree.status().message()));
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "VERSION", "FUNCTIONS", "COMPILE", "WARNINGS"}};
  for (const auto& [k, app] : *tree) {
    std::string name = app.get<std::string>("name", "?");
    if (out == Output::kName) {
      printf("%s\n", name.c_str());
      continue;
    }
    std::string compile = app.get<bool>("from_cache", false)
                              ? "cached"
                              : absl::StrCat(app.get<long long>("compile_ms", 0), " ms");
    // Long lists stay readable in a terminal; --output json has them all.
    std::string fns = absl::StrJoin(strings(app, "functions"), ", ");
    if (fns.size() > 48) fns = fns.substr(0, fns.rfind(", ", 45)) + ", ...";
    size_t warnings = strings(app, "warnings").size();
    rows.push_back({name, app.get<std::string>("version", "?").substr(0, 12), fns, compile,
                    warnings == 0 ? "-" : std::to_string(warnings)});
  }
  if (out == Output::kTable) {
    if (rows.size() == 1) {
      fprintf(stderr, "no apps deployed at %s (deploy one: waverless deploy DIR)\n", c.to.c_str());
    } else {
      printTable(rows);
    }
  }
  return 0;
}

int runLogs(const Args& a, const Client& c) {
  if (a.positional.size() < 2) return usageError("logs APP [--limit N] [--follow]");
  Output out;
  if (!outputOf(a, out)) return kUsage;
  if (out == Output::kName) return usageError("logs has no --output name");
  const std::string& app = a.positional[1];
  std::string limit = a.get("limit", "200");
  bool follow = a.has("follow");
  // Entries already printed: the node's log is a window of the most recent
  // entries, so each poll overlaps the last; entries are told apart by
  // their time and, within one millisecond, by their whole text.
  long long last_ms = -1;
  std::set<std::string> at_last_ms;
  bool first = true;
  while (true) {
    auto body = adminGet(c, "/api/apps/" + app + "/logs?limit=" + (first ? limit : "1000"));
    if (!body.ok()) return fail(std::string(body.status().message()));
    auto entries = parseLogs(*body);
    if (first && out == Output::kJson && !follow) {
      std::vector<std::string> items;
      for (const auto& e : entries) items.push_back(logJson(e));
      printf("[%s]\n", absl::StrJoin(items, ",").c_str());
      return 0;
    }
    for (const auto& e : entries) {
      if (e.unix_ms < last_ms || (e.unix_ms == last_ms && at_last_ms.contains(e.raw))) continue;
      if (e.unix_ms > last_ms) {
        last_ms = e.unix_ms;
        at_last_ms.clear();
      }
      at_last_ms.insert(e.raw);
      // JSON Lines when following: one object per entry as it comes.
      printf("%s\n", out == Output::kJson ? logJson(e).c_str() : e.raw.c_str());
    }
    fflush(stdout);
    if (!follow) return 0;
    first = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int runStatus(const Args& a, const Client& c) {
  Output out;
  if (!outputOf(a, out)) return kUsage;
  if (out == Output::kName) return usageError("status has no --output name");
  auto health =
      http::fetch("GET", c.to + "/healthz", "", c.with("", "text/plain", std::chrono::seconds(10)));
  if (!health.ok()) return fail(unreachable(c, health.status()));
  bool serving = health->status == 200;
  auto apps = adminGet(c, "/api/apps");
  if (!apps.ok()) return fail(std::string(apps.status().message()));
  auto app_tree = parseJson(*apps, "app list");
  if (!app_tree.ok()) return fail(std::string(app_tree.status().message()));
  // A dev node is not a cluster: /api/nodes answers 404 there.
  auto nodes_r = http::fetch("GET", c.to + "/api/nodes", "",
                             c.with(c.admin.token, "text/plain", std::chrono::seconds(10)));
  if (!nodes_r.ok()) return fail(unreachable(c, nodes_r.status()));
  std::optional<std::string> nodes;
  if (nodes_r->status == 200) nodes = nodes_r->body;
  // A meta node knows the raft leader; others answer {"meta":false}.
  std::optional<std::string> meta;
  if (nodes) {
    auto m = adminGet(c, "/api/meta");
    if (m.ok()) meta = *m;
  }
  if (out == Output::kJson) {
    printf("{\"node\":\"%s\",\"serving\":%s,\"apps\":%s,\"nodes\":%s,\"meta\":%s}\n",
           jsonEscape(c.to).c_str(), serving ? "true" : "false", apps->c_str(),
           nodes ? nodes->c_str() : "null", meta ? meta->c_str() : "null");
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& [k, app] : *app_tree) names.push_back(app.get<std::string>("name", "?"));
  printf("node     %s  %s\n", c.to.c_str(), serving ? "serving" : "starting");
  printf("apps     %zu%s%s\n", names.size(), names.empty() ? "" : ": ",
         absl::StrJoin(names, ", ").c_str());
  if (!nodes) {
    printf("cluster  none: a single node (waverless dev)\n");
    return 0;
  }
  auto node_tree = parseJson(*nodes, "node list");
  if (!node_tree.ok()) return fail(std::string(node_tree.status().message()));
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ADDR", "ROLES", "STATE", "LOAD", "RUNNING", "INSTANCES", "RSS"}};
  size_t alive = 0;
  for (const auto& [k, n] : *node_tree) {
    bool up = n.get<bool>("alive", false);
    alive += up ? 1 : 0;
    rows.push_back({n.get<std::string>("id", "?"), n.get<std::string>("addr", "?"),
                    absl::StrJoin(strings(n, "roles"), ","), up ? "alive" : "DOWN",
                    n.get<std::string>("load", "0"), n.get<std::string>("running", "0"),
                    n.get<std::string>("instances", "0"),
                    humanBytes(n.get<double>("rss_bytes", 0))});
  }
  printf("cluster  %zu nodes, %zu alive\n", rows.size() - 1, alive);
  if (meta) {
    auto m = parseJson(*meta, "meta view");
    if (m.ok() && m->get<bool>("meta", false)) {
      std::string leader = m->get<std::string>("leader", "null");
      printf("meta     raft leader: %s\n",
             leader == "null" ? "none (no quorum?)" : ("node " + leader).c_str());
    }
  }
  printf("\n");
  printTable(rows);
  return alive == rows.size() - 1 ? 0 : kFailed;
}

}  // namespace waverless::cli
