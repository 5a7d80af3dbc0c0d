#include "shard/group_config.h"

#include <algorithm>

#include "shard/raft_host.h"

namespace waverless::shard {

ConfigStep nextConfigStep(const std::vector<ConfigMember>& current,
                          const std::vector<Replica>& wanted, uint64_t self) {
  auto find = [&](uint64_t node) {
    return std::find_if(current.begin(), current.end(),
                        [&](const ConfigMember& m) { return m.node == node; });
  };
  for (const Replica& w : wanted) {
    if (find(w.node) == current.end()) return {ConfigStep::Kind::kAdd, w.node, w.address};
  }
  for (const Replica& w : wanted) {
    if (!find(w.node)->voter) return {ConfigStep::Kind::kPromote, w.node, {}};
  }
  for (const ConfigMember& m : current) {
    bool want = std::any_of(wanted.begin(), wanted.end(),
                            [&](const Replica& w) { return w.node == m.node; });
    if (!want && m.node != self) return {ConfigStep::Kind::kRemove, m.node, {}};
  }
  return {};
}

}  // namespace waverless::shard
