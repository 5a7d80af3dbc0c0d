// The node's integrated key-value store: one RocksDB database holding the keys of every app, each
// app in its own namespace.
//
// It owns durability (when a write counts as done), size limits and app isolation. It knows nothing
// about key patterns, triggers or replication; those sit above it. RocksDB headers stay out of this
// header (they are heavy), so the database lives behind a pimpl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace waverless::kv {

enum class Durability {
  kProcessCrash,  // WAL written to the OS before a write returns, not fsynced: survives kill -9
  kPowerLoss,     // WAL fsynced before a write returns: survives power loss, much slower
};

struct KvOptions {
  std::filesystem::path dir;  // created if missing
  Durability durability = Durability::kProcessCrash;
  size_t max_value_bytes = size_t{16} << 20;
  size_t max_key_bytes = 4096;  // also bounds app names
};

// One write of a replicated placement group (src/shard/); value nullopt deletes the key.
struct ShardWrite {
  std::string app;
  std::string key;
  std::optional<std::string> value;
};

// Counters since open(). sets counts each pair of a setBatch(); bytes_written counts key + value
// bytes set; bytes_read counts values returned by get() and keys + values returned by scan().
// dropApp() is not counted as deletes. A cas() that stores and every incr() count as one set.
struct KvStats {
  uint64_t gets = 0;
  uint64_t sets = 0;
  uint64_t deletes = 0;
  uint64_t scans = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// Thread-safe; never throws. App names and keys are arbitrary non-empty byte strings of at most
// max_key_bytes. The keys of one app are invisible to every other app: the stored key is the app
// name's length (4 bytes, big-endian), the app name, then the key, which is injective over all
// (app, key) pairs and keeps each app's keys contiguous and in key order.
//
// Errors: InvalidArgument for an empty or oversized app name or key, ResourceExhausted for an
// oversized value, Unavailable for I/O-type RocksDB failures (retry may help) and Internal for the
// rest, always with RocksDB's message.
class KvStore {
 public:
  static absl::StatusOr<std::unique_ptr<KvStore>> open(KvOptions options);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // nullopt: the key does not exist (distinct from an empty value).
  absl::StatusOr<std::optional<std::string>> get(std::string_view app, std::string_view key);
  absl::Status set(std::string_view app, std::string_view key, std::string_view value);
  // All pairs or none: every pair is validated first, then written in one RocksDB WriteBatch. A key
  // that appears twice takes its last value.
  absl::Status setBatch(std::string_view app,
                        const std::vector<std::pair<std::string, std::string>>& kvs);
  // Deleting a missing key is OK.
  absl::Status del(std::string_view app, std::string_view key);

  // Atomic read-modify-writes. They are linearizable against each other and against set, setBatch
  // and del of the same key: every write of a key holds that key's stripe lock (one of a fixed set
  // of mutexes chosen by hashing the stored key) across its read and its write.
  //
  // Compare-and-set: stores value only if the key's current value equals *expected, or, with
  // expected nullopt, only if the key is absent (create-only). true: stored; false: the current
  // value did not match and nothing was written (not an error: a lost race is a normal outcome).
  absl::StatusOr<bool> cas(std::string_view app, std::string_view key,
                           std::optional<std::string_view> expected, std::string_view value);
  // Adds delta to the integer stored under key and returns the sum, which is stored as decimal
  // ASCII ("-42") so get() reads it as text. A missing key counts as 0. InvalidArgument if the
  // current value is not a decimal int64 (optional '-', digits, nothing else); OutOfRange if the
  // sum overflows int64 (nothing is written then).
  absl::StatusOr<int64_t> incr(std::string_view app, std::string_view key, int64_t delta);
  // At most `limit` pairs of `app` whose keys start with `prefix` (empty: all keys), in key
  // (bytewise) order, from one consistent snapshot. limit 0 returns nothing.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> scan(std::string_view app,
                                                                        std::string_view prefix,
                                                                        size_t limit);
  // Deletes every key of the app in one range tombstone; space is reclaimed by later compactions.
  absl::Status dropApp(std::string_view app);

  // ---- Keys of replicated placement groups (src/shard/) ----
  // A group's keys live apart from the node's local keys: a 0x01 byte, the group id (4 bytes,
  // big-endian), then the app namespace as above. Local keys start with 0x00, so the two never
  // meet, and each group is one contiguous range: a raft snapshot copies it, a group that leaves
  // the node drops it. Callers (the group's state machine) validate sizes before proposing; these
  // writes are applied from a raft log that is already fsynced, so they are never synced here,
  // and shardWrite skips RocksDB's WAL too: after a crash, raft restores the group's last
  // snapshot (shardLoad, which is logged) and applies the log after it again, so the WAL would
  // be a second copy of the raft log (one write(2) per applied entry on every replica).
  // Internal records may use the empty app name, which get()/set() refuse.
  absl::StatusOr<std::optional<std::string>> shardGet(uint32_t group, std::string_view app,
                                                      std::string_view key);
  absl::Status shardWrite(uint32_t group, const std::vector<ShardWrite>& writes);  // atomic
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> shardScan(
      uint32_t group, std::string_view app, std::string_view prefix, size_t limit);
  // The whole group, encoded for a raft snapshot, and its inverse, which replaces the group's
  // keys atomically (InvalidArgument for a malformed dump, which changes nothing).
  absl::StatusOr<std::string> shardDump(uint32_t group);
  absl::Status shardLoad(uint32_t group, std::string_view dump);
  absl::Status shardDrop(uint32_t group);

  KvStats stats() const;
  const KvOptions& options() const;

 private:
  struct Impl;
  explicit KvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::kv
