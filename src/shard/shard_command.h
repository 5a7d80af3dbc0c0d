// What a placement group's raft log carries, and how it is applied: the byte format of one entry
// (a batch of proposals, each a list of KV operations) and the deterministic state machine step
// that turns an entry into writes of the node's KvStore plus a result per proposal.
//
// Every replica applies the same entries in the same order to the same state, so every decision
// (a cas that does not match, an incr of a non-number) is taken identically everywhere; nothing
// here may read the clock, the node id or anything else that differs between replicas.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace waverless::kv {
class KvStore;
}

namespace waverless::shard {

// kTrigger and kTriggerDone carry a durable trigger's record (TriggerRecord below): a kv_set's
// proposal holds its set and the records of the functions it triggers, so they commit together.
enum class OpKind : uint8_t {
  kSet = 1,
  kDelete = 2,
  kCas = 3,
  kIncr = 4,
  kTrigger = 5,
  kTriggerDone = 6
};

struct KvOp {
  OpKind kind = OpKind::kSet;
  std::string app;
  std::string key;    // kTrigger, kTriggerDone: the key that fired it (it names the group)
  std::string value;  // set, cas: the new value; kTrigger: the encoded record; kTriggerDone: its id
  std::optional<std::string> expected;  // cas: the value it must have now; nullopt: absent
  int64_t delta = 0;                    // incr

  bool operator==(const KvOp&) const = default;
};

// The operations of one proposal apply atomically: all of their writes or none (kv_set_batch).
struct Proposal {
  uint64_t id = 0;  // unique per proposing node; its results are found by it
  std::vector<KvOp> ops;

  bool operator==(const Proposal&) const = default;
};

// One raft entry. Many concurrent writes to a group share an entry: one append, one fsync.
struct Entry {
  uint64_t proposer = 0;  // node id of the proposer (its results are only useful there)
  std::vector<Proposal> proposals;

  bool operator==(const Entry&) const = default;
};

// A function a committed kv_set triggered, pending until the node that ran it (and its whole tree)
// proposes kTriggerDone. Stored in its group's range under the internal (empty) app name, so raft
// snapshots carry it. id is the invocation id every run of it sees (wl_invocation_id): unique in
// the cluster, chosen by the writer before it proposes.
struct TriggerRecord {
  std::string id;
  std::string app;
  std::string function;
  std::string key;      // the key whose set fired it: the function's kv_key arguments
  uint64_t origin = 0;  // node whose request waits for it (it may be gone)
  std::string request_id;
  uint32_t timeout_ms = 0;  // what one run may take
  uint32_t depth = 0;       // in its request's trigger tree: limits.trigger_depth holds across runs

  bool operator==(const TriggerRecord&) const = default;
};

std::string encodeTrigger(const TriggerRecord& record);
std::optional<TriggerRecord> decodeTrigger(std::string_view bytes);
// The ops that commit and retire a record; the key is the one that fired it (its group's).
KvOp triggerOp(const TriggerRecord& record);
KvOp triggerDoneOp(const TriggerRecord& record);

// The records pending in group's range of store (at most limit), in id order. A stored record
// that does not decode (a corrupt store: the state machine stores only records that do) is an
// Internal error; with `corrupt` given, it is skipped and its key appended there instead, so that
// one bad record does not hold back the group's others.
absl::StatusOr<std::vector<TriggerRecord>> pendingTriggers(
    kv::KvStore& store, uint32_t group, size_t limit, std::vector<std::string>* corrupt = nullptr);

std::string encodeEntry(const Entry& entry);
std::optional<Entry> decodeEntry(std::string_view bytes);

// The outcome of one proposal. status: OK; FailedPrecondition when a cas found another value
// (value: what it found, nullopt if absent); InvalidArgument when an incr found a value that is not
// a decimal int64; OutOfRange when it would overflow. value after an incr: the new number.
struct ProposalResult {
  absl::Status status;
  std::optional<std::string> value;
};

// Applies entry, raft's log entry number `index`, to group's keys in store and returns one result
// per proposal, in order. Later proposals see the writes of earlier ones. The writes and the new
// applied index go in one atomic batch, so a restarted replica that replays its log from an older
// point skips what it had applied (an incr must not count twice). A store failure is returned as
// the status (the caller must not go on applying: the replica would diverge).
absl::Status applyEntry(kv::KvStore& store, uint32_t group, uint64_t index, const Entry& entry,
                        std::vector<ProposalResult>& results);

// The index of the last entry applied to group's keys in store (0: none). It is stored in the
// group's own range, so a raft snapshot carries it along.
absl::StatusOr<uint64_t> appliedIndex(kv::KvStore& store, uint32_t group);

}  // namespace waverless::shard
