// The integrated KV of a cluster, as the request runner reaches it: where an
// app's key lives (which placement group and its leader, or this node's own
// store for `durability: local` keys) is this object's business. Implemented
// by cluster::ShardedKv; absent (null) when the node runs alone.
//
// Every asynchronous operation calls done exactly once, from any thread,
// possibly before it returns. Errors are the codes callers act on
// (common/status_map.h): Unavailable when the node holding the key cannot be
// reached, and whatever that node's store answered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace waverless::worker {

class ClusterKv {
 public:
  using KvPairs = std::vector<std::pair<std::string, std::string>>;
  using ValueDone = absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)>;
  using StatusDone = absl::AnyInvocable<void(absl::Status)>;
  using PairsDone = absl::AnyInvocable<void(absl::StatusOr<KvPairs>)>;

  virtual ~ClusterKv() = default;

  // True when app's key is kept in this node's own store alone: the runner
  // then reads and writes it there directly (no round trip, no parked fiber).
  virtual bool storedHere(std::string_view app, std::string_view key) = 0;
  // The node that reads the key without a network hop: data-aware placement
  // runs the functions a key triggers there.
  virtual uint32_t dataNode(std::string_view app, std::string_view key) = 0;

  // For get, nullopt = missing.
  virtual void get(std::string app, std::string key, ValueDone done) = 0;
  virtual void set(std::string app, std::string key, std::string value, StatusDone done) = 0;
  virtual void del(std::string app, std::string key, StatusDone done) = 0;
  // Atomic per node that stores some of the keys; those nodes are written one
  // after the other, and the first failure ends the batch.
  virtual void setBatch(std::string app, KvPairs pairs, StatusDone done) = 0;
  // The first `limit` keys of app starting with prefix, in key order, over
  // every node that stores keys (Unavailable if one cannot be asked: the
  // answer would silently miss its keys).
  virtual void scan(std::string app, std::string prefix, size_t limit, PairsDone done) = 0;
};

}  // namespace waverless::worker
