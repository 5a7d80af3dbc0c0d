#include "app/trigger_cycles.h"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace waverless::app {

void addTriggerCycleWarnings(AppManifest& m, std::string_view file) {
  // Edge a -> b: a may set a key that b's kv_set trigger matches.
  const size_t n = m.fns.size();
  std::vector<std::vector<bool>> edge(n, std::vector<bool>(n, false));
  for (size_t a = 0; a < n; ++a) {
    for (const KvAccess& access : m.fns[a].kvs) {
      if (!access.set) continue;
      for (size_t b = 0; b < n; ++b) {
        for (const EventSpec& ev : m.fns[b].events) {
          if (ev.kind == EventSpec::Kind::kKvSet &&
              access.pattern.overlaps(m.fns[b].kvs[ev.kv_index].pattern)) {
            edge[a][b] = true;
          }
        }
      }
    }
  }
  auto warn = [&](size_t at, const std::vector<size_t>& cycle) {
    std::vector<std::string> names;
    for (size_t v : cycle) names.push_back(m.fns[v].name);
    names.push_back(m.fns[cycle.front()].name);
    const char* why = cycle.size() == 1
                          ? "it may set a key matching its own kv_set trigger, so it can keep "
                            "triggering itself unless its code stops"
                          : "each may set a key matching the next one's kv_set trigger, so the "
                            "chain can keep going unless the code stops it";
    m.warnings.push_back(absl::StrCat(std::string(file), ":", m.fns[at].line, ": fns.",
                                      m.fns[at].name, ": kv_set trigger cycle ",
                                      absl::StrJoin(names, " -> "), ": ", why));
  };

  // Breadth-first from `from`: distance and predecessor of every reachable node.
  auto bfs = [&](size_t from, std::vector<size_t>& parent) {
    std::vector<bool> seen(n, false);
    parent.assign(n, n);
    std::deque<size_t> queue{from};
    seen[from] = true;
    while (!queue.empty()) {
      const size_t v = queue.front();
      queue.pop_front();
      for (size_t w = 0; w < n; ++w) {
        if (edge[v][w] && !seen[w]) {
          seen[w] = true;
          parent[w] = v;
          queue.push_back(w);
        }
      }
    }
    return seen;
  };
  std::vector<std::vector<bool>> reach(n);
  std::vector<std::vector<size_t>> parent(n);
  for (size_t v = 0; v < n; ++v) reach[v] = bfs(v, parent[v]);

  // One warning per self-loop, and one per larger cycle group (strongly
  // connected component), showing its shortest cycle through its first function.
  std::vector<bool> grouped(n, false);
  for (size_t v = 0; v < n; ++v) {
    if (edge[v][v]) warn(v, {v});
    if (grouped[v]) continue;
    size_t best = n;  // the group member closing the shortest cycle back to v
    size_t best_len = 0;
    for (size_t u = 0; u < n; ++u) {
      if (u == v || !reach[v][u] || !reach[u][v]) continue;
      grouped[u] = true;
      if (!edge[u][v]) continue;
      size_t len = 0;
      for (size_t w = u; w != v; w = parent[v][w]) ++len;
      if (best == n || len < best_len) {
        best = u;
        best_len = len;
      }
    }
    if (best == n) continue;
    std::vector<size_t> cycle;
    for (size_t w = best; w != v; w = parent[v][w]) cycle.push_back(w);
    cycle.push_back(v);
    std::reverse(cycle.begin(), cycle.end());
    warn(v, cycle);
  }
}

}  // namespace waverless::app
