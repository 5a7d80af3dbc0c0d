// The replicated KV that requests of a cluster node use: every operation goes to its key's
// placement group's leader, on this node (RaftHost) or on another one (ShardLink), and is retried
// across elections and dead replicas until the caller's deadline.
//
// Guarantees (docs/replication.md): get/set/delete/cas/incr are linearizable per key; OK from a
// write means committed on a majority of the group's replicas and fsynced there; reads are served
// by the leader after a read barrier. set_batch is atomic within a group, not across groups. A
// write that may or may not have committed (its leader failed under it) comes back Unavailable and
// is retried here only when repeating it is harmless (set, delete); cas and incr are not repeated.
//
// Threading: thread-safe. Callbacks run on whichever thread completed the operation (the raft loop,
// a peer stream's thread or the timer thread) and must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "common/timer_queue.h"
#include "shard/raft_host.h"
#include "shard/shard_command.h"
#include "shard/shard_map.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::shard {

using KvPairs = std::vector<std::pair<std::string, std::string>>;

// One operation on one group, as it crosses to the node that leads the group.
struct ShardRequest {
  enum class Kind : uint8_t { kRead = 1, kWrite = 2, kScan = 3 };
  Kind kind = Kind::kRead;
  uint32_t group = 0;
  std::string app;
  std::string key;  // read: the key; scan: the prefix
  uint32_t limit = 0;
  std::vector<KvOp> ops;  // write
  uint32_t origin = 0;    // the node the operation entered the cluster at (RaftHost::propose)

  bool operator==(const ShardRequest&) const = default;
};

struct ShardReply {
  absl::Status status;       // of routing and consensus; OK: the fields below hold the answer
  uint32_t leader_hint = 0;  // with FailedPrecondition: the group's leader, when known
  ProposalResult result;     // write
  std::optional<std::string> value;  // read
  KvPairs pairs;                     // scan
};

std::string encodeRequest(const ShardRequest& r);
std::optional<ShardRequest> decodeRequest(std::string_view bytes);
std::string encodeReply(const ShardReply& r);
std::optional<ShardReply> decodeReply(std::string_view bytes);

// How one node reaches another's ReplicatedKv::serve (the cluster's peer stream). done gets
// Unavailable when the node cannot be reached or did not answer.
class ShardLink {
 public:
  virtual ~ShardLink() = default;
  virtual void call(uint32_t node, ShardRequest request,
                    absl::AnyInvocable<void(ShardReply)> done) = 0;
};

class ReplicatedKv {
 public:
  using Clock = std::chrono::steady_clock;
  // host: this node's groups (null when it replicates none). All must outlive this object.
  ReplicatedKv(uint32_t self, RaftHost* host, kv::KvStore& store, ShardLink& link,
               common::TimerQueue& timers, std::shared_ptr<const ShardMap> map);

  void setMap(std::shared_ptr<const ShardMap> map);
  std::shared_ptr<const ShardMap> map() const;
  // The node that last answered for group as its leader (0: none yet): every routed operation
  // refreshes it.
  uint32_t leaderHint(uint32_t group) const;

  void get(std::string app, std::string key, Clock::time_point deadline,
           absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)> done);
  // ops must all be on keys of one group (InvalidArgument otherwise); they apply atomically.
  // The result's status carries a cas mismatch (FailedPrecondition) or a bad incr.
  void write(std::string app, std::vector<KvOp> ops, Clock::time_point deadline,
             absl::AnyInvocable<void(absl::StatusOr<ProposalResult>)> done);
  // Splits by group: each group's pairs are atomic, the batch as a whole is not. Each trigger
  // record commits with its key's group's pairs.
  void setBatch(std::string app, KvPairs pairs, std::vector<TriggerRecord> triggers,
                Clock::time_point deadline, absl::AnyInvocable<void(absl::Status)> done);
  // The first `limit` keys under prefix over every group, in key order; Unavailable when a group
  // cannot answer (a partial list would silently miss keys).
  void scan(std::string app, std::string prefix, size_t limit, Clock::time_point deadline,
            absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done);

  // The leader side: answers a request for a group this node hosts.
  void serve(ShardRequest request, absl::AnyInvocable<void(ShardReply)> done);

 private:
  struct Call;
  void route(std::shared_ptr<Call> call);
  void retryLater(std::shared_ptr<Call> call);
  uint32_t target(const Call& call);

  const uint32_t self_;
  RaftHost* host_;
  kv::KvStore& store_;
  ShardLink& link_;
  common::TimerQueue& timers_;
  mutable std::mutex mu_;
  std::shared_ptr<const ShardMap> map_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> leader_hint_ ABSL_GUARDED_BY(mu_);  // per group; 0: unknown
};

}  // namespace waverless::shard
