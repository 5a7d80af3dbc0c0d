#include "kv/kv_store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace waverless::kv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

// A fresh directory, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/wl-kv-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<KvStore> mustOpen(KvOptions options) {
  absl::StatusOr<std::unique_ptr<KvStore>> store = KvStore::open(std::move(options));
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = mustOpen({.dir = dir_.path() / "db"});
    ASSERT_NE(store_, nullptr);
  }
  std::optional<std::string> get(std::string_view app, std::string_view key) {
    absl::StatusOr<std::optional<std::string>> v = store_->get(app, key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> scan(std::string_view app,
                                                        std::string_view prefix, size_t limit) {
    auto r = store_->scan(app, prefix, limit);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<std::pair<std::string, std::string>>{};
  }

  TempDir dir_;
  std::unique_ptr<KvStore> store_;
};

TEST_F(KvStoreTest, SetGetMissingAndEmptyValue) {
  EXPECT_EQ(get("app", "k"), std::nullopt);
  ASSERT_TRUE(store_->set("app", "k", "v1").ok());
  EXPECT_EQ(get("app", "k"), "v1");
  ASSERT_TRUE(store_->set("app", "k", "v2").ok());
  EXPECT_EQ(get("app", "k"), "v2");
  // An empty value exists; it is not the same as a missing key.
  ASSERT_TRUE(store_->set("app", "empty", "").ok());
  std::optional<std::string> empty = get("app", "empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "");
  // Arbitrary bytes, including NUL, round-trip.
  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(store_->set("app", binary, binary).ok());
  EXPECT_EQ(get("app", binary), binary);
}

TEST_F(KvStoreTest, DeleteRemovesAndMissingIsOk) {
  ASSERT_TRUE(store_->set("app", "k", "v").ok());
  ASSERT_TRUE(store_->del("app", "k").ok());
  EXPECT_EQ(get("app", "k"), std::nullopt);
  EXPECT_TRUE(store_->del("app", "k").ok());
  EXPECT_TRUE(store_->del("app", "never-existed").ok());
}

TEST_F(KvStoreTest, AppsAreIsolated) {
  ASSERT_TRUE(store_->set("a", "k", "from-a").ok());
  ASSERT_TRUE(store_->set("b", "k", "from-b").ok());
  EXPECT_EQ(get("a", "k"), "from-a");
  EXPECT_EQ(get("b", "k"), "from-b");
  ASSERT_TRUE(store_->del("a", "k").ok());
  EXPECT_EQ(get("a", "k"), std::nullopt);
  EXPECT_EQ(get("b", "k"), "from-b");
}

TEST_F(KvStoreTest, AppNamesThatArePrefixesDoNotCollide) {
  // Plain concatenation would store both of these as "abk".
  ASSERT_TRUE(store_->set("a", "bk", "a/bk").ok());
  ASSERT_TRUE(store_->set("ab", "k", "ab/k").ok());
  EXPECT_EQ(get("a", "bk"), "a/bk");
  EXPECT_EQ(get("ab", "k"), "ab/k");
  EXPECT_EQ(get("a", "k"), std::nullopt);
  EXPECT_EQ(get("ab", "bk"), std::nullopt);
  // A separator byte would not help either: NUL may appear in both app and key.
  ASSERT_TRUE(store_->set(std::string("x\0", 2), "y", "1").ok());
  ASSERT_TRUE(store_->set("x", std::string("\0y", 2), "2").ok());
  EXPECT_EQ(get(std::string("x\0", 2), "y"), "1");
  EXPECT_EQ(get("x", std::string("\0y", 2)), "2");
  EXPECT_THAT(scan("a", "", 10), ElementsAre(Pair("bk", "a/bk")));
  EXPECT_THAT(scan("ab", "", 10), ElementsAre(Pair("k", "ab/k")));
}

TEST_F(KvStoreTest, ScanReturnsOnlyThisAppsPrefixInOrderUpToLimit) {
  for (const char* k : {"p3", "p1", "q1", "p2", "o9"}) ASSERT_TRUE(store_->set("a", k, k).ok());
  ASSERT_TRUE(store_->set("ab", "p0", "other app").ok());
  ASSERT_TRUE(store_->set("b", "p1", "other app").ok());
  EXPECT_EQ(store_->set("", "x", "v").code(), absl::StatusCode::kInvalidArgument);

  EXPECT_THAT(scan("a", "p", 2), ElementsAre(Pair("p1", "p1"), Pair("p2", "p2")));
  EXPECT_THAT(scan("a", "p", 100),
              ElementsAre(Pair("p1", "p1"), Pair("p2", "p2"), Pair("p3", "p3")));
  EXPECT_THAT(scan("a", "", 100), ElementsAre(Pair("o9", "o9"), Pair("p1", "p1"), Pair("p2", "p2"),
                                              Pair("p3", "p3"), Pair("q1", "q1")));
  EXPECT_THAT(scan("a", "p", 0), IsEmpty());
  EXPECT_THAT(scan("a", "z", 10), IsEmpty());
  EXPECT_THAT(scan("nobody", "", 10), IsEmpty());
  EXPECT_THAT(scan("ab", "", 10), ElementsAre(Pair("p0", "other app")));
}

TEST_F(KvStoreTest, ScanPrefixOfHighBytes) {
  // The end of a prefix range is found by incrementing its last byte; 0xff must carry.
  ASSERT_TRUE(store_->set("a", "\xff", "1").ok());
  ASSERT_TRUE(store_->set("a", "\xff\xff", "2").ok());
  ASSERT_TRUE(store_->set("a", "\xff\xff\x01", "3").ok());
  ASSERT_TRUE(store_->set("b", "\xff", "other").ok());
  EXPECT_THAT(scan("a", "\xff\xff", 10),
              ElementsAre(Pair("\xff\xff", "2"), Pair("\xff\xff\x01", "3")));
  EXPECT_EQ(scan("a", "\xff", 10).size(), 3u);
}

TEST_F(KvStoreTest, SetBatchWritesAllOrNothing) {
  ASSERT_TRUE(store_->setBatch("app", {{"x", "1"}, {"y", "2"}, {"x", "3"}}).ok());
  EXPECT_EQ(get("app", "x"), "3");  // the last value of a repeated key wins
  EXPECT_EQ(get("app", "y"), "2");
  EXPECT_TRUE(store_->setBatch("app", {}).ok());

  // One bad pair fails the whole batch before anything is written.
  absl::Status st = store_->setBatch("app", {{"z", "new"}, {"", "bad key"}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(get("app", "z"), std::nullopt);
  st = store_->setBatch("app", {{"z", "new"}, {"w", std::string(17 << 20, 'v')}});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(get("app", "z"), std::nullopt);
}

TEST_F(KvStoreTest, SetBatchIsNeverSeenHalfDone) {
  // Each batch sets ten keys to one version; a scan is a snapshot, so it must see ten equal values.
  constexpr int kKeys = 10;
  auto batch = [](int version) {
    std::vector<std::pair<std::string, std::string>> kvs;
    for (int i = 0; i < kKeys; ++i) kvs.emplace_back(absl::StrCat("k", i), absl::StrCat(version));
    return kvs;
  };
  ASSERT_TRUE(store_->setBatch("app", batch(0)).ok());
  std::atomic<int> written{0};
  // Stopped and joined by its destructor, also when an assertion below returns early.
  std::jthread writer([&](std::stop_token stop) {
    for (int version = 1; !stop.stop_requested(); ++version) {
      if (!store_->setBatch("app", batch(version)).ok()) return;
      written = version;
    }
  });
  std::set<std::string> versions_seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((versions_seen.size() < 50 || written.load() < 200) &&
         std::chrono::steady_clock::now() < deadline) {
    auto kvs = scan("app", "k", 100);
    ASSERT_EQ(kvs.size(), static_cast<size_t>(kKeys));
    for (const auto& [key, value] : kvs) ASSERT_EQ(value, kvs.front().second) << key;
    versions_seen.insert(kvs.front().second);
  }
  writer.request_stop();
  // The scans really raced the writer.
  EXPECT_GE(versions_seen.size(), 50u);
}

TEST_F(KvStoreTest, DropAppDeletesOnlyThatApp) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store_->set("a", absl::StrCat("k", i), "v").ok());
  ASSERT_TRUE(store_->set("ab", "k1", "kept").ok());
  ASSERT_TRUE(store_->set("b", "k1", "kept").ok());
  ASSERT_TRUE(store_->dropApp("a").ok());
  EXPECT_THAT(scan("a", "", 1000), IsEmpty());
  EXPECT_EQ(get("a", "k1"), std::nullopt);
  EXPECT_EQ(get("ab", "k1"), "kept");
  EXPECT_EQ(get("b", "k1"), "kept");
  // The app can be used again after being dropped.
  ASSERT_TRUE(store_->set("a", "k1", "again").ok());
  EXPECT_EQ(get("a", "k1"), "again");
  EXPECT_TRUE(store_->dropApp("never-existed").ok());
}

TEST(KvStoreLimitsTest, KeysValuesAndAppNamesAreBounded) {
  TempDir dir;
  auto store = mustOpen({.dir = dir.path(), .max_value_bytes = 100, .max_key_bytes = 16});
  ASSERT_NE(store, nullptr);

  EXPECT_TRUE(store->set("app", std::string(16, 'k'), std::string(100, 'v')).ok());

  absl::Status st = store->set("app", "k", std::string(101, 'v'));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(st.message()), HasSubstr("101 bytes"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("limit of 100 bytes"));

  st = store->set("app", std::string(17, 'k'), "v");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("17 bytes"));
  EXPECT_EQ(store->get("app", std::string(17, 'k')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->del("app", std::string(17, 'k')).code(), absl::StatusCode::kInvalidArgument);

  for (std::string_view empty_key_op : {"set", "get", "del"}) {
    absl::Status s = empty_key_op == "set"   ? store->set("app", "", "v")
                     : empty_key_op == "get" ? store->get("app", "").status()
                                             : store->del("app", "");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << empty_key_op;
    EXPECT_THAT(std::string(s.message()), HasSubstr("empty key")) << empty_key_op;
  }

  EXPECT_EQ(store->set("", "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->set(std::string(17, 'a'), "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->scan("", "", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->dropApp("").code(), absl::StatusCode::kInvalidArgument);
  // Nothing rejected was written.
  EXPECT_THAT(*store->scan("app", "", 10),
              ElementsAre(Pair(std::string(16, 'k'), std::string(100, 'v'))));
}

TEST(KvStoreOpenTest, ReopenKeepsData) {
  TempDir dir;
  KvOptions options{.dir = dir.path() / "nested" / "db"};  // created if missing
  {
    auto store = mustOpen(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->set("app", "k", "v").ok());
    ASSERT_TRUE(store->setBatch("app", {{"b1", "1"}, {"b2", "2"}}).ok());
    ASSERT_TRUE(store->set("app", "gone", "x").ok());
    ASSERT_TRUE(store->del("app", "gone").ok());
  }
  auto store = mustOpen(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->get("app", "k"), "v");
  EXPECT_THAT(*store->scan("app", "", 10),
              ElementsAre(Pair("b1", "1"), Pair("b2", "2"), Pair("k", "v")));
  EXPECT_EQ(*store->get("app", "gone"), std::nullopt);
  // Counters are per open, not persisted.
  EXPECT_EQ(store->stats().sets, 0u);
}

TEST(KvStoreOpenTest, PowerLossDurabilityWorks) {
  TempDir dir;
  auto store = mustOpen({.dir = dir.path(), .durability = Durability::kPowerLoss});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->set("app", "k", "v").ok());
  EXPECT_EQ(*store->get("app", "k"), "v");
}

TEST(KvStoreOpenTest, SecondOpenOfSameDirFailsCleanly) {
  TempDir dir;
  auto first = mustOpen({.dir = dir.path()});
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<KvStore>> second = KvStore::open({.dir = dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("lock"));
}

TEST(KvStoreOpenTest, BadOptionsAreRejected) {
  EXPECT_EQ(KvStore::open({}).status().code(), absl::StatusCode::kInvalidArgument);
  TempDir dir;
  EXPECT_EQ(KvStore::open({.dir = dir.path(), .max_key_bytes = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A path under a regular file cannot be created.
  std::filesystem::path file = dir.path() / "file";
  { std::ofstream(file) << "x"; }
  EXPECT_FALSE(KvStore::open({.dir = file / "db"}).ok());
}

TEST_F(KvStoreTest, StatsCountOperationsAndBytes) {
  ASSERT_TRUE(store_->set("app", "k", "12345").ok());                    // 1 + 5 bytes
  ASSERT_TRUE(store_->setBatch("app", {{"a", "1"}, {"b", "22"}}).ok());  // 2 + 3 bytes
  ASSERT_TRUE(get("app", "k").has_value());                              // 5 bytes
  ASSERT_FALSE(get("app", "missing").has_value());
  ASSERT_TRUE(store_->del("app", "a").ok());
  ASSERT_EQ(scan("app", "", 10).size(), 2u);  // "b"+"22" and "k"+"12345": 9 bytes
  KvStats s = store_->stats();
  EXPECT_EQ(s.sets, 3u);
  EXPECT_EQ(s.gets, 2u);
  EXPECT_EQ(s.deletes, 1u);
  EXPECT_EQ(s.scans, 1u);
  EXPECT_EQ(s.bytes_written, 11u);
  EXPECT_EQ(s.bytes_read, 14u);
}

TEST_F(KvStoreTest, ConcurrentSetAndGet) {
  constexpr int kThreads = 4;
  constexpr int kOps = 500;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string app = absl::StrCat("app", t % 2);  // two threads per app
        for (int i = 0; i < kOps; ++i) {
          std::string key = absl::StrCat("t", t, "-", i);
          std::string value = absl::StrCat("value-", t, "-", i);
          if (!store_->set(app, key, value).ok()) ++failures;
          auto got = store_->get(app, key);
          if (!got.ok() || *got != value) ++failures;
          if (!store_->set("shared", "counter", value).ok()) ++failures;
          auto shared = store_->get("shared", "counter");
          if (!shared.ok() || !shared->has_value() || !(*shared)->starts_with("value-")) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(scan("app0", "", 10000).size(), static_cast<size_t>(2 * kOps));
  EXPECT_EQ(scan("app1", "", 10000).size(), static_cast<size_t>(2 * kOps));
  EXPECT_EQ(store_->stats().sets, static_cast<uint64_t>(kThreads * kOps * 2));
  EXPECT_EQ(store_->stats().gets, static_cast<uint64_t>(kThreads * kOps * 2));
}

// --- Crash durability ---------------------------------------------------------------------------
//
// The child is this test binary run again (fork, then exec) with only the disabled child test
// selected. Exec matters: after a bare fork() only the forking thread exists, while RocksDB's
// process-wide background threads, started by earlier tests, would be missing in the child, and a
// mutex one of them held at the fork would deadlock it.

constexpr int kCrashKeys = 1000;
constexpr char kCrashDirEnv[] = "WL_KV_CRASH_DIR";
constexpr char kCrashFdEnv[] = "WL_KV_CRASH_FD";

std::string crashKey(int i) { return absl::StrCat("key-", i); }
std::string crashValue(int i) { return absl::StrCat("value-", i, "-", std::string(i % 50, 'x')); }

// Runs only as the child of SurvivesSigkillAfterAcknowledgedWrites.
TEST(KvStoreCrashChild, DISABLED_WriteKeysThenWaitForKill) {
  const char* dir = std::getenv(kCrashDirEnv);
  const char* fd_text = std::getenv(kCrashFdEnv);
  if (dir == nullptr || fd_text == nullptr) GTEST_SKIP() << "run by the crash test only";
  int fd = std::atoi(fd_text);
  auto report = [fd](std::string_view msg) {
    ssize_t n = write(fd, msg.data(), msg.size());
    (void)n;  // nothing to do if the parent is gone
  };
  absl::StatusOr<std::unique_ptr<KvStore>> store =
      KvStore::open({.dir = dir, .durability = Durability::kProcessCrash});
  if (!store.ok()) {
    report(absl::StrCat("error: ", store.status().ToString()));
    _exit(1);
  }
  for (int i = 0; i < kCrashKeys; ++i) {
    absl::Status st = (*store)->set("crash", crashKey(i), crashValue(i));
    if (!st.ok()) {
      report(absl::StrCat("error: ", st.ToString()));
      _exit(1);
    }
  }
  report("done");
  // Every write is acknowledged; wait to be killed (bounded, in case the parent never does).
  for (int i = 0; i < 120; ++i) sleep(1);
  _exit(2);
}

TEST(KvStoreCrashTest, SurvivesSigkillAfterAcknowledgedWrites) {
  TempDir dir;
  std::string db = (dir.path() / "db").string();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  // Everything the child needs is built before fork(): between fork and exec only
  // async-signal-safe calls are allowed.
  std::string exe = "/proc/self/exe";
  std::vector<std::string> args = {
      "kv_test", "--gtest_filter=KvStoreCrashChild.DISABLED_WriteKeysThenWaitForKill",
      "--gtest_also_run_disabled_tests"};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(absl::StrCat(kCrashDirEnv, "=", db));
  env_strings.push_back(absl::StrCat(kCrashFdEnv, "=", fds[1]));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  // The child's own gtest output would interleave with ours; it reports through the pipe instead.
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed parent
    execve(exe.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  close(devnull);

  std::string msg;
  pollfd pfd{.fd = fds[0], .events = POLLIN};
  while (msg.size() < 4 && poll(&pfd, 1, 60'000) == 1) {
    char buf[256];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_EQ(msg, "done") << "child did not finish its writes";
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << "child status " << wstatus;

  auto store = mustOpen({.dir = db});
  ASSERT_NE(store, nullptr);
  int missing = 0;
  for (int i = 0; i < kCrashKeys; ++i) {
    absl::StatusOr<std::optional<std::string>> v = store->get("crash", crashKey(i));
    ASSERT_TRUE(v.ok()) << v.status();
    if (*v != crashValue(i)) ++missing;
  }
  EXPECT_EQ(missing, 0) << "acknowledged writes lost in a kill -9";
  auto all = store->scan("crash", "", 2 * kCrashKeys);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), static_cast<size_t>(kCrashKeys));
}

// A store from before placement groups had their own column family keeps their keys in the
// default one; the first open moves them, and they read back through the shard API.
TEST(KvStoreFamilies, PlacementGroupKeysOfAnOlderStoreMoveToTheirFamilyOnOpen) {
  TempDir dir;
  const std::string path = (dir.path() / "db").string();
  {
    std::unique_ptr<KvStore> store = mustOpen({.dir = path});
    ASSERT_TRUE(store->shardWrite(7, {{"app", "k1", "v1"}, {"app", "k2", "v2"}}).ok());
    ASSERT_TRUE(store->set("app", "local", "stays").ok());
  }
  {  // Rewrite it into the old layout: the group's keys in the default family, no "shards".
    rocksdb::Options o;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"shards", rocksdb::ColumnFamilyOptions()}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, path, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[1]));
    rocksdb::WriteBatch batch;
    int moved = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++moved)
      ASSERT_TRUE(batch.Put(handles[0], it->key(), it->value()).ok());
    it.reset();
    EXPECT_EQ(moved, 2);
    ASSERT_TRUE(raw->Write(rocksdb::WriteOptions(), &batch).ok());
    ASSERT_TRUE(raw->DropColumnFamily(handles[1]).ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  std::unique_ptr<KvStore> store = mustOpen({.dir = path});
  EXPECT_EQ(store->shardGet(7, "app", "k1").value(), "v1");
  EXPECT_EQ(store->shardGet(7, "app", "k2").value(), "v2");
  EXPECT_EQ(store->get("app", "local").value(), "stays");
  absl::StatusOr<std::string> dump = store->shardDump(7);
  ASSERT_TRUE(dump.ok());
  EXPECT_THAT(*dump, HasSubstr("v2"));
  ASSERT_TRUE(store->shardDrop(7).ok());  // nothing of the group is left behind in the default
  EXPECT_EQ(store->shardGet(7, "app", "k1").value(), std::nullopt);
  store.reset();
  store = mustOpen({.dir = path});
  EXPECT_EQ(store->shardGet(7, "app", "k1").value(), std::nullopt);
}

}  // namespace
}  // namespace waverless::kv
