// hash64 (XXH64) and straw2Pick: the deterministic half of placement, shared with the KV ownership
// rule, so nothing here may change output without moving every key in a running cluster.
#include <cassert>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <limits>

#include "sched/scheduler.h"

namespace waverless::sched {
namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kP5 = 0x27D4EB2F165667C5ULL;

constexpr uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// Little-endian loads assembled byte by byte: the hash must be the same on every host, and
// compilers turn this into a single load on little-endian machines.
uint64_t load(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t accumulate(uint64_t acc, uint64_t input) { return rotl(acc + input * kP2, 31) * kP1; }

uint64_t mergeAccumulator(uint64_t acc, uint64_t v) { return (acc ^ accumulate(0, v)) * kP1 + kP4; }

}  // namespace

uint64_t hash64(std::string_view data, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* const end = p + data.size();
  uint64_t h;
  if (data.size() >= 32) {
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    for (; end - p >= 32; p += 32) {
      v1 = accumulate(v1, load(p, 8));
      v2 = accumulate(v2, load(p + 8, 8));
      v3 = accumulate(v3, load(p + 16, 8));
      v4 = accumulate(v4, load(p + 24, 8));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    for (uint64_t v : {v1, v2, v3, v4}) h = mergeAccumulator(h, v);
  } else {
    h = seed + kP5;
  }
  h += data.size();
  for (; end - p >= 8; p += 8) h = rotl(h ^ accumulate(0, load(p, 8)), 27) * kP1 + kP4;
  if (end - p >= 4) {
    h = rotl(h ^ (load(p, 4) * kP1), 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (*p * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

NodeId straw2Pick(std::string_view key, std::span<const WorkerInfo> workers) {
  const WorkerInfo* best = nullptr;
  double best_draw = -std::numeric_limits<double>::infinity();
  for (const WorkerInfo& w : workers) {
    if (!w.alive || !(w.weight > 0)) continue;  // `!(>)` also skips a NaN weight
    // The top 53 bits fill a double's mantissa exactly; +1 keeps u out of 0, where ln is -inf.
    const double u = static_cast<double>((hash64(key, w.id.value) >> 11) + 1) * 0x1.0p-53;
    const double draw = std::log(u) / w.weight;
    if (best == nullptr || draw > best_draw || (draw == best_draw && w.id < best->id)) {
      best = &w;
      best_draw = draw;
    }
  }
  assert(best != nullptr && "straw2Pick needs an eligible worker");
  return best != nullptr ? best->id : NodeId{};
}

}  // namespace waverless::sched
