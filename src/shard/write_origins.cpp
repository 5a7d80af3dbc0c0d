#include "shard/write_origins.h"

namespace waverless::shard {

void WriteOrigins::note(uint64_t node) {
  ++current_.total;
  for (auto& [n, count] : current_.counts) {
    if (n == node) {
      ++count;
      return;
    }
  }
  current_.counts.emplace_back(node, 1);
}

void WriteOrigins::roll(uint64_t now_ms, uint64_t window_ms) {
  if (!started_ms_) {
    started_ms_ = now_ms;
    return;
  }
  if (now_ms < *started_ms_ + window_ms) return;
  last_ = std::move(current_);
  current_ = Window{};
  started_ms_ = now_ms;
  judged_ = true;
}

void WriteOrigins::restart(uint64_t now_ms) {
  current_ = Window{};
  last_ = Window{};
  started_ms_ = now_ms;
  judged_ = false;
}

std::optional<uint64_t> WriteOrigins::dominant(uint64_t min_writes, double share) const {
  if (last_.total == 0 || last_.total < min_writes) return std::nullopt;
  for (const auto& [node, count] : last_.counts) {
    if (static_cast<double>(count) >= share * static_cast<double>(last_.total)) return node;
  }
  return std::nullopt;
}

}  // namespace waverless::shard
