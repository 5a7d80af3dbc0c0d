// Where a placement group's writes come from, as its leader counts them over fixed windows: the
// input of follow-the-writer leadership (RaftHost::Impl::balanceLeaders). A group whose writes
// nearly all enter at one node is cheaper led there: each write then skips a forward to the
// leader and its reply (a peer round trip and two gRPC messages).
//
// Threading: none; the RaftHost loop thread owns each group's.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace waverless::shard {

class WriteOrigins {
 public:
  // One proposal that entered the cluster at node.
  void note(uint64_t node);
  // Closes the current window once it has lasted window_ms (the first call only starts one);
  // dominant() reads the last closed window.
  void roll(uint64_t now_ms, uint64_t window_ms);
  // The node at which at least `share` (0..1] of the last window's writes entered, when the window
  // had at least min_writes: too few writes say nothing about where the next ones come from.
  std::optional<uint64_t> dominant(uint64_t min_writes, double share) const;
  // Forgets every window and starts one: this node just became the group's leader, and what it
  // counted while it led before says little about now.
  void restart(uint64_t now_ms);
  // A window closed since the start or the last restart(): until then, dominant() knows nothing.
  bool judged() const { return judged_; }

 private:
  struct Window {
    std::vector<std::pair<uint64_t, uint64_t>> counts;  // node, writes; a handful of nodes
    uint64_t total = 0;
  };
  Window current_, last_;
  std::optional<uint64_t> started_ms_;
  bool judged_ = false;
};

}  // namespace waverless::shard
