#include "kv/kv_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <functional>
#include <mutex>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace waverless::kv {

namespace {

// Keys and app names in messages are untrusted bytes of up to max_key_bytes: escape and shorten.
std::string quoted(std::string_view bytes) {
  constexpr size_t kShown = 64;
  std::string out =
      absl::StrCat("\"", absl::CHexEscape(std::string(bytes.substr(0, kShown))), "\"");
  if (bytes.size() > kShown) absl::StrAppend(&out, "... (", bytes.size(), " bytes)");
  return out;
}

absl::Status fromRocks(const rocksdb::Status& s, std::string_view what) {
  std::string msg = absl::StrCat("kv ", std::string(what), ": ", s.ToString());
  // Failures of the disk or of contention may go away on retry; anything else (corruption, invalid
  // options, unsupported operations) is a bug or damage that retrying will not fix.
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete() ||
      s.IsAborted()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

// The app's namespace: 4-byte big-endian length of the app name, then the name. No encoded app
// prefix is a prefix of another app's, because the length comes first.
std::string appPrefix(std::string_view app) {
  std::string out;
  out.reserve(4 + app.size());
  uint32_t n = static_cast<uint32_t>(app.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(app);
  return out;
}

std::string storedKey(std::string_view app, std::string_view key) {
  std::string out = appPrefix(app);
  out.append(key);
  return out;
}

// The smallest string greater than every string starting with `prefix`, or "" if there is none (all
// bytes 0xff). Used as an exclusive upper bound.
std::string prefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Enough stripes that unrelated hot keys rarely share one; each is a plain mutex held only across
// one RocksDB read and write, never across I/O of another kind.
constexpr size_t kStripes = 256;

size_t stripeOf(std::string_view stored_key) {
  return std::hash<std::string_view>{}(stored_key) % kStripes;
}

// Strictly a decimal int64: what incr() itself writes, and nothing looser (no spaces, no '+').
std::optional<int64_t> parseInt64(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

void appendBe32(std::string& out, uint32_t n) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
}

bool readBe32(std::string_view& in, uint32_t& n) {
  if (in.size() < 4) return false;
  n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  return true;
}

// See "Keys of replicated placement groups" in the header.
constexpr char kShardTag = 0x01;
constexpr std::string_view kShardFamily = "shards";
std::string shardPrefix(uint32_t group) {
  std::string out(1, kShardTag);
  appendBe32(out, group);
  return out;
}

}  // namespace

struct KvStore::Impl {
  KvOptions options;
  std::unique_ptr<rocksdb::DB> db;
  // The column families' handles, destroyed before the DB closes. Placement groups' keys live in
  // their own family (see open()).
  rocksdb::ColumnFamilyHandle* base = nullptr;
  rocksdb::ColumnFamilyHandle* shards = nullptr;
  rocksdb::WriteOptions write_options;

  std::atomic<uint64_t> gets{0};
  std::atomic<uint64_t> sets{0};
  std::atomic<uint64_t> deletes{0};
  std::atomic<uint64_t> scans{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};

  // A write of a key holds its stripe across read and write, so read-modify-writes are atomic
  // against every other write of that key (plain gets need no lock: RocksDB reads are atomic).
  std::array<std::mutex, kStripes> stripes;

  // A store written before placement groups had their own family keeps their keys in the default
  // one: they move over once, in one synced batch, before the store is used.
  absl::Status moveShardsToTheirFamily() {
    const std::string start(1, kShardTag);
    const std::string end = prefixEnd(start);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options, base));
    rocksdb::WriteBatch batch;
    for (it->Seek(start); it->Valid(); it->Next()) {
      rocksdb::Status st = batch.Put(shards, it->key(), it->value());
      if (!st.ok()) return fromRocks(st, "moving placement groups' keys");
    }
    if (!it->status().ok()) return fromRocks(it->status(), "moving placement groups' keys");
    if (batch.Count() == 0) return absl::OkStatus();
    rocksdb::Status st = batch.DeleteRange(base, start, end);
    rocksdb::WriteOptions synced;
    synced.sync = true;
    if (st.ok()) st = db->Write(synced, &batch);
    return st.ok() ? absl::OkStatus() : fromRocks(st, "moving placement groups' keys");
  }

  // Locks the stripes of several stored keys, in index order so two batches cannot deadlock.
  class StripeLocks {
   public:
    StripeLocks(Impl& impl, std::vector<size_t> idx) : impl_(impl), idx_(std::move(idx)) {
      std::sort(idx_.begin(), idx_.end());
      idx_.erase(std::unique(idx_.begin(), idx_.end()), idx_.end());
      for (size_t i : idx_) impl_.stripes[i].lock();
    }
    ~StripeLocks() {
      for (auto it = idx_.rbegin(); it != idx_.rend(); ++it) impl_.stripes[*it].unlock();
    }
    StripeLocks(const StripeLocks&) = delete;
    StripeLocks& operator=(const StripeLocks&) = delete;

   private:
    Impl& impl_;
    std::vector<size_t> idx_;
  };

  std::mutex& stripe(std::string_view stored_key) { return stripes[stripeOf(stored_key)]; }

  // Under the key's stripe: the current value, nullopt if missing.
  absl::StatusOr<std::optional<std::string>> readLocked(std::string_view stored,
                                                        std::string_view app,
                                                        std::string_view key) {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), slice(stored), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return fromRocks(s, absl::StrCat("read ", quoted(key), " in app ", quoted(app)));
    return std::optional<std::string>(std::move(value));
  }

  absl::Status putLocked(std::string_view stored, std::string_view app, std::string_view key,
                         std::string_view value) {
    rocksdb::Status s = db->Put(write_options, slice(stored), slice(value));
    if (!s.ok()) return fromRocks(s, absl::StrCat("set ", quoted(key), " in app ", quoted(app)));
    sets.fetch_add(1, std::memory_order_relaxed);
    bytes_written.fetch_add(key.size() + value.size(), std::memory_order_relaxed);
    return absl::OkStatus();
  }

  absl::Status checkApp(std::string_view app) const {
    if (app.empty()) return absl::InvalidArgumentError("kv: app name is empty");
    if (app.size() > options.max_key_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("kv: app name ", quoted(app), " is ",
                                                     app.size(), " bytes, over the limit of ",
                                                     options.max_key_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status checkKey(std::string_view app, std::string_view key) const {
    if (absl::Status s = checkApp(app); !s.ok()) return s;
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("kv: empty key in app ", quoted(app)));
    }
    if (key.size() > options.max_key_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("kv: key ", quoted(key), " in app ", quoted(app), " is ", key.size(),
                       " bytes, over the limit of ", options.max_key_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status checkValue(std::string_view app, std::string_view key,
                          std::string_view value) const {
    if (value.size() > options.max_value_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "kv: value for key ", quoted(key), " in app ", quoted(app), " is ", value.size(),
          " bytes, over the limit of ", options.max_value_bytes, " bytes"));
    }
    return absl::OkStatus();
  }
};

KvStore::KvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KvStore::~KvStore() {
  if (impl_ && impl_->db) {
    if (impl_->shards != nullptr) impl_->db->DestroyColumnFamilyHandle(impl_->shards);
    if (impl_->base != nullptr) impl_->db->DestroyColumnFamilyHandle(impl_->base);
    // Close() reports background errors; a destructor cannot act on them, and every acknowledged
    // write is already in the WAL, so the next open() recovers regardless.
    impl_->db->Close().PermitUncheckedError();
  }
}

absl::StatusOr<std::unique_ptr<KvStore>> KvStore::open(KvOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("kv: store directory is empty");
  // App names are bounded by max_key_bytes; keeping them under 2^24 bytes keeps the first byte of
  // every namespace 0, which scan() and dropApp() rely on for their upper bounds.
  if (options.max_key_bytes == 0 || options.max_key_bytes >= (size_t{1} << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv: max_key_bytes ", options.max_key_bytes, " must be in [1, 2^24)"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("kv: cannot create ", options.dir.string(), ": ", ec.message()));
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  // Much of what functions write lives for milliseconds (a slice, then its
  // delete). Compressing it on flush cost ~20% of a word_count node's CPU;
  // the deepest levels, where long-lived data settles, still compress.
  db_options.compression = rocksdb::kNoCompression;
  db_options.bottommost_compression = rocksdb::kLZ4Compression;
  // Bigger memtables: short-lived keys are deleted before they are flushed.
  db_options.write_buffer_size = 64 << 20;
  db_options.max_write_buffer_number = 3;
  // Every write reaches the OS before it returns (kProcessCrash relies on this); buffering the WAL
  // in-process would lose acknowledged writes on kill -9.
  db_options.manual_wal_flush = false;
  // Placement groups' keys get their own column family with small memtables. Every replica
  // applies every write of its groups, and a skiplist insert costs a cache miss per level: in a
  // 64 MiB memtable (sized for short-lived local keys, above) the inserts of applied entries
  // doubled in cost as it filled, and replicated throughput fell by a third within a minute.
  rocksdb::ColumnFamilyOptions shard_options(db_options);
  shard_options.write_buffer_size = 8 << 20;
  db_options.create_missing_column_families = true;
  std::vector<std::string> existing;
  bool had_shards = false;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.dir.string(), &existing).ok()) {
    had_shards = std::find(existing.begin(), existing.end(), kShardFamily) != existing.end();
  } else {
    had_shards = true;  // a new store: nothing to move
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(db_options)},
      {std::string(kShardFamily), shard_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.dir.string(), families, &handles, &raw);
  if (!s.ok()) return fromRocks(s, absl::StrCat("open ", options.dir.string()));

  auto impl = std::make_unique<Impl>();
  impl->db.reset(raw);
  impl->base = handles[0];
  impl->shards = handles[1];
  if (!had_shards) {
    if (absl::Status moved = impl->moveShardsToTheirFamily(); !moved.ok()) return moved;
  }
  impl->write_options.sync = options.durability == Durability::kPowerLoss;
  impl->write_options.disableWAL = false;
  impl->options = std::move(options);
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

absl::StatusOr<std::optional<std::string>> KvStore::get(std::string_view app,
                                                        std::string_view key) {
  if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
  impl_->gets.fetch_add(1, std::memory_order_relaxed);
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), slice(storedKey(app, key)), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return fromRocks(s, absl::StrCat("get ", quoted(key), " in app ", quoted(app)));
  impl_->bytes_read.fetch_add(value.size(), std::memory_order_relaxed);
  return std::optional<std::string>(std::move(value));
}

absl::Status KvStore::set(std::string_view app, std::string_view key, std::string_view value) {
  if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
  if (absl::Status st = impl_->checkValue(app, key, value); !st.ok()) return st;
  std::string stored = storedKey(app, key);
  std::lock_guard lock(impl_->stripe(stored));
  return impl_->putLocked(stored, app, key, value);
}

absl::Status KvStore::setBatch(std::string_view app,
                               const std::vector<std::pair<std::string, std::string>>& kvs) {
  if (absl::Status st = impl_->checkApp(app); !st.ok()) return st;
  if (kvs.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  uint64_t bytes = 0;
  std::vector<size_t> stripes;
  stripes.reserve(kvs.size());
  for (const auto& [key, value] : kvs) {
    if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
    if (absl::Status st = impl_->checkValue(app, key, value); !st.ok()) return st;
    std::string stored = storedKey(app, key);
    stripes.push_back(stripeOf(stored));
    rocksdb::Status s = batch.Put(slice(stored), slice(value));
    if (!s.ok()) return fromRocks(s, absl::StrCat("batch set in app ", quoted(app)));
    bytes += key.size() + value.size();
  }
  Impl::StripeLocks locks(*impl_, std::move(stripes));
  rocksdb::Status s = impl_->db->Write(impl_->write_options, &batch);
  if (!s.ok()) {
    return fromRocks(s, absl::StrCat("batch set of ", kvs.size(), " keys in app ", quoted(app)));
  }
  impl_->sets.fetch_add(kvs.size(), std::memory_order_relaxed);
  impl_->bytes_written.fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status KvStore::del(std::string_view app, std::string_view key) {
  if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
  std::string stored = storedKey(app, key);
  std::lock_guard lock(impl_->stripe(stored));
  rocksdb::Status s = impl_->db->Delete(impl_->write_options, slice(stored));
  if (!s.ok()) return fromRocks(s, absl::StrCat("delete ", quoted(key), " in app ", quoted(app)));
  impl_->deletes.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<bool> KvStore::cas(std::string_view app, std::string_view key,
                                  std::optional<std::string_view> expected,
                                  std::string_view value) {
  if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
  if (absl::Status st = impl_->checkValue(app, key, value); !st.ok()) return st;
  std::string stored = storedKey(app, key);
  std::lock_guard lock(impl_->stripe(stored));
  auto current = impl_->readLocked(stored, app, key);
  if (!current.ok()) return current.status();
  impl_->gets.fetch_add(1, std::memory_order_relaxed);
  bool matches = expected.has_value() ? (current->has_value() && **current == *expected)
                                      : !current->has_value();
  if (!matches) return false;
  if (absl::Status st = impl_->putLocked(stored, app, key, value); !st.ok()) return st;
  return true;
}

absl::StatusOr<int64_t> KvStore::incr(std::string_view app, std::string_view key, int64_t delta) {
  if (absl::Status st = impl_->checkKey(app, key); !st.ok()) return st;
  std::string stored = storedKey(app, key);
  std::lock_guard lock(impl_->stripe(stored));
  auto current = impl_->readLocked(stored, app, key);
  if (!current.ok()) return current.status();
  impl_->gets.fetch_add(1, std::memory_order_relaxed);
  int64_t base = 0;
  if (current->has_value()) {
    std::optional<int64_t> parsed = parseInt64(**current);
    if (!parsed) {
      // (quoted): the parentheses keep argument-dependent lookup from finding std::quoted.
      return absl::InvalidArgumentError(absl::StrCat("kv incr: key ", quoted(key), " in app ",
                                                     quoted(app), " holds ", (quoted)(**current),
                                                     ", not a decimal 64-bit integer"));
    }
    base = *parsed;
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(base, delta, &sum)) {
    return absl::OutOfRangeError(absl::StrCat("kv incr: key ", quoted(key), " in app ", quoted(app),
                                              ": ", base, " + ", delta,
                                              " overflows a 64-bit integer"));
  }
  if (absl::Status st = impl_->putLocked(stored, app, key, absl::StrCat(sum)); !st.ok()) return st;
  return sum;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KvStore::scan(
    std::string_view app, std::string_view prefix, size_t limit) {
  if (absl::Status st = impl_->checkApp(app); !st.ok()) return st;
  impl_->scans.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::pair<std::string, std::string>> out;
  if (limit == 0) return out;

  std::string start = storedKey(app, prefix);
  // The namespace begins with a 0 byte (open() bounds app names), so this bound is never empty.
  std::string end = prefixEnd(start);
  rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  size_t strip = start.size() - prefix.size();  // the app's namespace bytes
  uint64_t bytes = 0;
  for (it->Seek(slice(start)); it->Valid() && out.size() < limit; it->Next()) {
    rocksdb::Slice k = it->key();
    rocksdb::Slice v = it->value();
    out.emplace_back(std::string(k.data() + strip, k.size() - strip), v.ToString());
    bytes += out.back().first.size() + v.size();
  }
  if (!it->status().ok()) {
    return fromRocks(it->status(),
                     absl::StrCat("scan of prefix ", quoted(prefix), " in app ", quoted(app)));
  }
  impl_->bytes_read.fetch_add(bytes, std::memory_order_relaxed);
  return out;
}

absl::Status KvStore::dropApp(std::string_view app) {
  if (absl::Status st = impl_->checkApp(app); !st.ok()) return st;
  std::string begin = appPrefix(app);
  std::string end = prefixEnd(begin);
  rocksdb::Status s = impl_->db->DeleteRange(impl_->write_options, impl_->db->DefaultColumnFamily(),
                                             slice(begin), slice(end));
  if (!s.ok()) return fromRocks(s, absl::StrCat("drop app ", quoted(app)));
  return absl::OkStatus();
}

KvStats KvStore::stats() const {
  KvStats out;
  out.gets = impl_->gets.load(std::memory_order_relaxed);
  out.sets = impl_->sets.load(std::memory_order_relaxed);
  out.deletes = impl_->deletes.load(std::memory_order_relaxed);
  out.scans = impl_->scans.load(std::memory_order_relaxed);
  out.bytes_read = impl_->bytes_read.load(std::memory_order_relaxed);
  out.bytes_written = impl_->bytes_written.load(std::memory_order_relaxed);
  return out;
}

const KvOptions& KvStore::options() const { return impl_->options; }

absl::StatusOr<std::optional<std::string>> KvStore::shardGet(uint32_t group, std::string_view app,
                                                             std::string_view key) {
  impl_->gets.fetch_add(1, std::memory_order_relaxed);
  std::string value;
  std::string stored = shardPrefix(group) + storedKey(app, key);
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->shards, slice(stored), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) {
    return fromRocks(
        s, absl::StrCat("get ", quoted(key), " in app ", quoted(app), " (group ", group, ")"));
  }
  impl_->bytes_read.fetch_add(value.size(), std::memory_order_relaxed);
  return std::optional<std::string>(std::move(value));
}

absl::Status KvStore::shardWrite(uint32_t group, const std::vector<ShardWrite>& writes) {
  if (writes.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  const std::string prefix = shardPrefix(group);
  uint64_t bytes = 0, sets = 0, deletes = 0;
  for (const ShardWrite& w : writes) {
    std::string stored = prefix + storedKey(w.app, w.key);
    rocksdb::Status s = w.value ? batch.Put(impl_->shards, slice(stored), slice(*w.value))
                                : batch.Delete(impl_->shards, slice(stored));
    if (!s.ok()) return fromRocks(s, absl::StrCat("write to group ", group));
    if (w.value) {
      ++sets;
      bytes += w.key.size() + w.value->size();
    } else {
      ++deletes;
    }
  }
  rocksdb::WriteOptions applied = impl_->write_options;
  applied.sync = false;
  applied.disableWAL = true;  // the raft log is this write's log (kv_store.h)
  rocksdb::Status s = impl_->db->Write(applied, &batch);
  if (!s.ok())
    return fromRocks(s, absl::StrCat("write of ", writes.size(), " keys to group ", group));
  impl_->sets.fetch_add(sets, std::memory_order_relaxed);
  impl_->deletes.fetch_add(deletes, std::memory_order_relaxed);
  impl_->bytes_written.fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KvStore::shardScan(
    uint32_t group, std::string_view app, std::string_view prefix, size_t limit) {
  impl_->scans.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::pair<std::string, std::string>> out;
  if (limit == 0) return out;
  std::string start = shardPrefix(group) + storedKey(app, prefix);
  std::string end = prefixEnd(start);  // never empty: the tag byte is 0x01
  rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->shards));
  size_t strip = start.size() - prefix.size();
  uint64_t bytes = 0;
  for (it->Seek(slice(start)); it->Valid() && out.size() < limit; it->Next()) {
    rocksdb::Slice k = it->key();
    out.emplace_back(std::string(k.data() + strip, k.size() - strip), it->value().ToString());
    bytes += out.back().first.size() + out.back().second.size();
  }
  if (!it->status().ok()) {
    return fromRocks(it->status(), absl::StrCat("scan of prefix ", quoted(prefix), " in app ",
                                                quoted(app), " (group ", group, ")"));
  }
  impl_->bytes_read.fetch_add(bytes, std::memory_order_relaxed);
  return out;
}

// A dump is a sequence of (BE32 length, stored key without the group prefix, BE32 length, value).
absl::StatusOr<std::string> KvStore::shardDump(uint32_t group) {
  const std::string start = shardPrefix(group);
  const std::string end = prefixEnd(start);
  rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->shards));
  std::string out;
  for (it->Seek(slice(start)); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    rocksdb::Slice v = it->value();
    appendBe32(out, static_cast<uint32_t>(k.size() - start.size()));
    out.append(k.data() + start.size(), k.size() - start.size());
    appendBe32(out, static_cast<uint32_t>(v.size()));
    out.append(v.data(), v.size());
  }
  if (!it->status().ok()) return fromRocks(it->status(), absl::StrCat("dump of group ", group));
  return out;
}

absl::Status KvStore::shardLoad(uint32_t group, std::string_view dump) {
  const std::string start = shardPrefix(group);
  const std::string end = prefixEnd(start);
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.DeleteRange(impl_->shards, slice(start), slice(end));
  bool malformed = false;
  while (s.ok() && !dump.empty()) {
    uint32_t klen = 0, vlen = 0;
    if (!readBe32(dump, klen) || dump.size() < klen) {
      malformed = true;
      break;
    }
    std::string key = start + std::string(dump.substr(0, klen));
    dump.remove_prefix(klen);
    if (!readBe32(dump, vlen) || dump.size() < vlen) {
      malformed = true;
      break;
    }
    s = batch.Put(impl_->shards, slice(key), slice(dump.substr(0, vlen)));
    dump.remove_prefix(vlen);
  }
  if (!s.ok()) return fromRocks(s, absl::StrCat("load of group ", group));
  if (malformed) {
    return absl::InvalidArgumentError(absl::StrCat("kv: malformed dump of group ", group));
  }
  rocksdb::WriteOptions unsynced = impl_->write_options;
  unsynced.sync = false;
  s = impl_->db->Write(unsynced, &batch);
  if (!s.ok()) return fromRocks(s, absl::StrCat("load of group ", group));
  return absl::OkStatus();
}

absl::Status KvStore::shardDrop(uint32_t group) {
  const std::string start = shardPrefix(group);
  const std::string end = prefixEnd(start);
  rocksdb::Status s =
      impl_->db->DeleteRange(impl_->write_options, impl_->shards, slice(start), slice(end));
  if (!s.ok()) return fromRocks(s, absl::StrCat("drop of group ", group));
  return absl::OkStatus();
}

}  // namespace waverless::kv
