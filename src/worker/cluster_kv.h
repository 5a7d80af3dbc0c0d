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

// A function a replicated key's set triggers, committed with the write (a durable trigger,
// docs/replication.md): the group's leader runs it, and runs it again if the node running it is
// lost, until the node that ran it retires the record.
struct TriggerRecord {
  std::string id;  // the invocation id every run sees (wl_invocation_id), unique in the cluster
  std::string function;
  std::string key;  // the key whose set fired it
  std::string request_id;
  uint32_t timeout_ms = 0;  // what one run may take
  uint32_t depth = 0;       // in the request's trigger tree (limits.trigger_depth)
};
using TriggerRecords = std::vector<TriggerRecord>;

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
  // Writes that fire kv_set triggers carry their records (`triggers`, each naming a key of the
  // write): a replicated key's records commit atomically with its value, none if it fails (a cas
  // that does not store included). Keys stored here alone (storedHere) take no records.
  virtual void set(std::string app, std::string key, std::string value, TriggerRecords triggers,
                   StatusDone done) = 0;
  virtual void del(std::string app, std::string key, StatusDone done) = 0;
  // Atomic on the key. cas stores value only if the key now holds expected
  // (nullopt: only if it is absent): true if it stored. incr adds delta to a
  // decimal int64 (missing = 0) and gives the sum; InvalidArgument for a value
  // that is not one, OutOfRange on overflow.
  virtual void cas(std::string app, std::string key, std::optional<std::string> expected,
                   std::string value, TriggerRecords triggers,
                   absl::AnyInvocable<void(absl::StatusOr<bool>)> done) = 0;
  virtual void incr(std::string app, std::string key, int64_t delta, TriggerRecords triggers,
                    absl::AnyInvocable<void(absl::StatusOr<int64_t>)> done) = 0;
  // Atomic per node that stores some of the keys; those nodes are written one
  // after the other, and the first failure ends the batch.
  virtual void setBatch(std::string app, KvPairs pairs, TriggerRecords triggers,
                        StatusDone done) = 0;
  // The first `limit` keys of app starting with prefix, in key order, over
  // every node that stores keys (Unavailable if one cannot be asked: the
  // answer would silently miss its keys).
  virtual void scan(std::string app, std::string prefix, size_t limit, PairsDone done) = 0;
};

}  // namespace waverless::worker
