// shard_probe: which placement group an app's keys fall in and where each group is placed, by the
// product's own ShardMap (the same hash and straw2 the nodes use), so that the replication bench
// can pick a key in a group whose leader it is about to kill, and count the groups a node hosts.
//
//   shard_probe --shards S --replicas R --workers 2,3,4 --app A --prefix P [--tries N]
//
// Prints one line per group: "<group> <first key P<i> in it> <replica node ids, comma-separated>",
// then "hosted <node> <groups>" per worker. Exit 2 on bad flags, 1 when some group got no key
// within --tries candidates (default 1,000,000).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "shard/shard_map.h"

namespace {

int usage(const char* why) {
  fprintf(stderr,
          "shard_probe: %s\nusage: shard_probe --shards S --replicas R --workers ID,ID,... "
          "--app NAME --prefix P [--tries N]\n",
          why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (!k.starts_with("--")) return usage(("bad argument " + k).c_str());
    flags[k.substr(2)] = argv[i + 1];
  }
  if (argc % 2 == 0) return usage("every flag takes a value");
  uint32_t shards = 0, replicas = 0, tries = 1000000;
  if (!absl::SimpleAtoi(flags["shards"], &shards) || shards == 0) return usage("--shards S > 0");
  if (!absl::SimpleAtoi(flags["replicas"], &replicas) || replicas == 0) {
    return usage("--replicas R > 0");
  }
  if (flags.count("tries") && !absl::SimpleAtoi(flags["tries"], &tries)) return usage("--tries N");
  std::vector<waverless::sched::WorkerInfo> workers;
  for (absl::string_view id : absl::StrSplit(flags["workers"], ',', absl::SkipEmpty())) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(id, &n) || n == 0) return usage("--workers: node ids > 0");
    workers.push_back({waverless::sched::NodeId{n}, 1.0, true, 0});
  }
  if (workers.empty()) return usage("--workers: at least one node id");
  if (flags["app"].empty()) return usage("--app NAME");
  auto map = waverless::shard::ShardMap::place(shards, replicas, workers);
  if (!map.ok()) return usage(std::string(map.status().message()).c_str());

  std::vector<std::string> key_of(shards);
  uint32_t found = 0;
  for (uint32_t i = 0; i < tries && found < shards; ++i) {
    std::string key = flags["prefix"] + std::to_string(i);
    uint32_t g = map->groupOf(flags["app"], key);
    if (key_of[g].empty()) {
      key_of[g] = key;
      ++found;
    }
  }
  std::map<uint32_t, uint32_t> hosted;
  for (uint32_t g = 0; g < shards; ++g) {
    std::string nodes;
    for (uint32_t n : map->replicasOf(g)) {
      nodes += (nodes.empty() ? "" : ",") + std::to_string(n);
      ++hosted[n];
    }
    printf("%u %s %s\n", g, key_of[g].empty() ? "-" : key_of[g].c_str(), nodes.c_str());
  }
  for (const auto& w : workers) printf("hosted %u %u\n", w.id.value, hosted[w.id.value]);
  return found == shards ? 0 : 1;
}
