// Placement policies: which worker node runs an invocation, and (through straw2Pick) which node
// owns a KV key.
//
// A policy is a pure function of the request and a snapshot of the workers; it owns no state, does
// no I/O and never blocks, so one Scheduler may be shared by every thread of a node. Collecting
// the snapshot (membership, heartbeats, loads) is the caller's job, not this subsystem's.
//
// A worker is eligible when it is alive and has a positive weight (a worker with no capacity can
// run nothing). Every policy picks an eligible worker or returns Unavailable when there is none.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"

namespace waverless::sched {

struct NodeId {
  uint32_t value = 0;
  auto operator<=>(const NodeId&) const = default;
};

struct WorkerInfo {
  NodeId id;
  double weight = 1.0;  // capacity (e.g. cores); straw2 shares are proportional to it
  bool alive = true;    // dead workers are never chosen
  double load = 0;  // invocations demanding CPU / capacity, from heartbeats (Cluster::localLoad)
};

// What a placement decision may look at. The views must outlive the place() call only.
struct PlacementRequest {
  std::string_view app;
  std::string_view function;
  std::string_view key;             // the triggering key ("" for HTTP requests)
  uint64_t value_bytes = 0;         // size of the value that triggers it
  std::optional<NodeId> data_node;  // where the input data already is (data-aware), if known
  std::optional<NodeId> local;      // the node making the decision
  uint64_t random = 0;              // entropy for `random` (caller passes it: deterministic tests)
};

enum class Policy { kRandom, kHash, kStraw2, kLeastLoaded, kDataAware };

// Accepts "random", "hash", "straw2", "least-loaded", "data-aware"; InvalidArgument naming the bad
// value (and the valid ones) otherwise.
absl::StatusOr<Policy> parsePolicy(std::string_view name);
std::string_view policyName(Policy p);

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Picks one eligible worker; Unavailable when none is eligible. The choice never depends on the
  // order of `workers`. Ids in `workers` are expected to be distinct.
  virtual absl::StatusOr<NodeId> place(const PlacementRequest& req,
                                       std::span<const WorkerInfo> workers) const = 0;
};

// The policies:
//  - random: uniform over eligible workers, drawn from req.random (mixed first, so a counter works
//    as well as a random number).
//  - hash: straw2 on the app name with equal weights: an app sticks to one node, and adding or
//    removing a node moves only the apps that must move (unlike hash-modulo-N, which moves most).
//  - straw2: weighted straw2 on "app/key", or "app/function" when there is no key: different keys
//    of one app spread over the cluster in proportion to capacity.
//  - least-loaded: the eligible worker with the smallest load; ties (e.g. an idle cluster) are
//    broken by weighted straw2 on the app name among the tied workers, so they are deterministic
//    and still spread apps.
//  - data-aware: data_node if it is eligible; else `local` if it is eligible and not saturated
//    (load < 1); else straw2 as above among the workers less loaded than `local`, and `local` when
//    none is (sending work from one busy node to another busy one adds two network hops and saves
//    nothing). Without `local`, straw2 over all. So the value crosses the network at most once:
//    not at all on the node that stores it or on the deciding node (which holds the triggering
//    value), and once, to a node chosen by capacity, otherwise.
std::unique_ptr<Scheduler> makeScheduler(Policy p);

// Straw2 (Ceph CRUSH): every eligible worker draws ln(u) / weight, where u in (0,1] is the top 53
// bits of hash64(key, seed = worker id) mapped to (0,1]; the largest draw wins, ties going to the
// smaller id. Each worker's draw depends only on the key and itself, so adding, removing or
// reweighting one worker moves keys only to or from that worker, and shares are proportional to
// weight. Deterministic for the same key and worker set, whatever their order: it is also the KV
// rule for which node owns a key. (std::log is not bit-identical across every libm; two nodes
// could disagree only on a key whose top two draws are within an ulp.)
//
// Precondition: at least one worker is eligible (asserted; callers check first). Returns NodeId{}
// if asserts are compiled out.
NodeId straw2Pick(std::string_view key, std::span<const WorkerInfo> workers);

// XXH64 (xxHash, 64-bit variant) of `data` with `seed`: fast, well mixed, and a published
// algorithm, so its output can be checked against the reference implementation (`xxhsum -H64`).
// Stable: placement across nodes and restarts depends on it never changing.
uint64_t hash64(std::string_view data, uint64_t seed);

}  // namespace waverless::sched
