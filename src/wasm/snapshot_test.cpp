// Instance snapshots: wl_init runs once at load, every instance starts from
// its state, `instance: fresh` resets to it, and a misbehaving wl_init
// fails the load with its message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "wasm/engine.h"
#include "wasm/test_support.h"

namespace waverless::wasm {
namespace {

using ::testing::HasSubstr;
using testing::readGuest;
using testing::TestHost;

constexpr uint32_t kTableBytes = 4u << 20;  // TABLE_BYTES in tests/guests/snapshot.c

// What the guest's `state` reports for the table wl_init built.
uint64_t initialSum() {
  uint64_t s = 0;
  for (uint32_t i = 0; i < kTableBytes; i += 4096) s += static_cast<uint8_t>(i * 7 + 1);
  return s;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.cache_dir = WL_TEST_CACHE;
    o.executor.threads = 2;
    engine_ = std::make_unique<Engine>(o);
    ASSERT_TRUE(engine_->start().ok());
    files_ = std::filesystem::temp_directory_path() /
             absl::StrCat("wl-snapshot-test-", getpid(), "-",
                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(files_);
  }
  void TearDown() override {
    engine_->stop();
    std::filesystem::remove_all(files_);
  }

  void writeWord(const std::string& w) { std::ofstream(files_ / "word.txt") << w << "\n"; }

  absl::StatusOr<std::shared_ptr<App>> load(const std::string& guest,
                                            const std::filesystem::path& files = {}) {
    return engine_->load(guest, readGuest(guest + ".wasm"), AppLimits{}, nullptr, files);
  }

  InvocationResult call(const std::shared_ptr<App>& app, const std::string& fn, bool fresh) {
    InvocationRequest req;
    req.function = fn;
    req.host = &host_;
    req.fresh_instance = fresh;
    return engine_->invokeSync(app, std::move(req));
  }

  std::string expected(const std::string& word, int calls) {
    return absl::StrCat("inits=1 sum=", initialSum(), " word=", word, " calls=", calls);
  }

  std::unique_ptr<Engine> engine_;
  std::filesystem::path files_;
  TestHost host_;
};

TEST_F(SnapshotTest, StateWrittenByWlInitIsVisibleToEveryInstance) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_FALSE((*app)->hasExport("wl_init"));  // ran at load; not callable
  for (int i = 0; i < 3; ++i) {
    (*app)->evictIdle();  // the next call gets a new instance
    auto r = call(*app, "state", false);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_TRUE(r.cold_start);
    // inits=1: the instance was restored, wl_init did not run in it again.
    EXPECT_EQ(r.output, expected("none", 1));
  }
}

TEST_F(SnapshotTest, ReusedInstancesKeepTheirStateBetweenCalls) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  auto s = call(*app, "scribble", false);
  ASSERT_TRUE(s.status.ok()) << s.status;
  auto r = call(*app, "state", false);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_FALSE(r.cold_start);
  EXPECT_THAT(r.output, HasSubstr("word=scribbled calls=2"));
}

TEST_F(SnapshotTest, FreshInvocationsDoNotSeeEachOthersWrites) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  auto before = engine_->stats();
  for (int i = 0; i < 3; ++i) {
    auto s = call(*app, "scribble", true);
    ASSERT_TRUE(s.status.ok()) << s.status;
    EXPECT_EQ(s.output, absl::StrCat("scribbled sum=", uint64_t{0xAB} * (kTableBytes / 4096)));
    auto r = call(*app, "state", true);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output, expected("none", 1));
  }
  auto after = engine_->stats();
  // One instance, reset after each call rather than freed; the 8 MiB the
  // scribbles grew by were given back each time.
  EXPECT_EQ(after.instances_live, 1u);
  EXPECT_EQ(after.discarded, before.discarded);
  EXPECT_LT(after.instance_bytes, before.instance_bytes + (size_t{1} << 20));
}

TEST_F(SnapshotTest, FreshCallNeverTakesAnInstanceAReuseCallLeft) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  ASSERT_TRUE(call(*app, "scribble", false).status.ok());  // leaves a used instance idle
  EXPECT_EQ(call(*app, "state", true).output, expected("none", 1));
  // Without a snapshot too: basic's counter lives in a global.
  auto basic = load("basic");
  ASSERT_TRUE(basic.ok()) << basic.status();
  EXPECT_EQ(call(*basic, "count", false).output, "1");
  EXPECT_EQ(call(*basic, "count", false).output, "2");
  EXPECT_EQ(call(*basic, "count", true).output, "1");
  EXPECT_EQ(call(*basic, "count", false).output, "3");  // the used one is still pooled
}

TEST_F(SnapshotTest, FreshCallsOfAModuleWithoutWlInitResetTheirInstanceToo) {
  auto app = load("basic");
  ASSERT_TRUE(app.ok()) << app.status();
  auto before = engine_->stats();
  for (int i = 0; i < 4; ++i) {
    auto r = call(*app, "count", true);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output, "1");  // data segments, globals and _initialize as new
  }
  auto after = engine_->stats();
  EXPECT_EQ(after.discarded, before.discarded);  // reset to its image, not freed
  EXPECT_EQ(after.instances_live, before.instances_live + 1);
  // The demo app too.
  auto hello = load("../../apps/hello/app");
  ASSERT_TRUE(hello.ok()) << hello.status();
  for (int i = 0; i < 3; ++i) {
    auto r = call(*hello, "fn2", true);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output, "hello world");
  }
  EXPECT_EQ(engine_->stats().discarded, before.discarded);
}

TEST_F(SnapshotTest, FreshCallAtTheInstanceCapFreesAUsedInstanceInsteadOfWaiting) {
  AppLimits one;
  one.max_instances = 1;
  auto app = engine_->load("capped", readGuest("basic.wasm"), one);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(call(*app, "count", false).output, "1");
  auto r = call(*app, "count", true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "1");
}

TEST_F(SnapshotTest, WlInitReadsTheAppsFilesAndRedeployRebuildsTheSnapshot) {
  writeWord("alpha");
  auto first = load("snapshot", files_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(call(*first, "state", false).output, expected("alpha", 1));
  writeWord("beta");
  auto second = load("snapshot", files_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(call(*second, "state", true).output, expected("beta", 1));
  // The first version keeps its own snapshot while it is still in use.
  (*first)->evictIdle();
  EXPECT_EQ(call(*first, "state", false).output, expected("alpha", 1));
}

TEST_F(SnapshotTest, SharedImagePagesAreChargedOnce) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  size_t with_snapshot = engine_->stats().instance_bytes;
  EXPECT_GE(with_snapshot, kTableBytes);  // the image, charged at load
  constexpr int kN = 4;
  std::atomic<int> done{0};
  for (int i = 0; i < kN; ++i) {
    InvocationRequest req;
    req.function = "park";
    req.host = &host_;
    engine_->invoke(*app, std::move(req), [&done](InvocationResult r) {
      EXPECT_TRUE(r.status.ok()) << r.status;
      done++;
    });
  }
  for (int i = 0; i < 500 && host_.parked() < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(host_.parked(), static_cast<size_t>(kN));
  auto busy = engine_->stats();
  EXPECT_EQ(busy.instances_live, static_cast<uint64_t>(kN));
  // Four live instances map one image: they add far less than one image.
  EXPECT_LT(busy.instance_bytes - with_snapshot, kTableBytes / 2);
  host_.resumeAll();
  for (int i = 0; i < 500 && done.load() < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(done.load(), kN);
}

TEST_F(SnapshotTest, RestoredTablesCallTheRestoredInstanceAndItsImports) {
  auto app = load("snapshot_table");
  ASSERT_TRUE(app.ok()) << app.status();
  for (int i = 0; i < 3; ++i) {
    // g starts at wl_init's 40 in every fresh call: bumped in this instance.
    auto r = call(*app, "run", true);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output, "1");
  }
  EXPECT_EQ(call(*app, "run", false).output, "1");
  EXPECT_EQ(call(*app, "run", false).output, "2");
}

TEST_F(SnapshotTest, TrapInWlInitFailsTheLoadWithItsMessage) {
  auto app = load("snapshot_trap");
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.status().message(), HasSubstr("wl_init: trap: out of bounds memory access"));
}

TEST_F(SnapshotTest, WlFailInWlInitFailsTheLoadWithItsMessage) {
  auto app = load("snapshot_fail");
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(std::string(app.status().message()),
              HasSubstr("wl_init: failed: dictionary missing"));
}

TEST_F(SnapshotTest, KvFromWlInitFailsTheLoadClearly) {
  auto app = load("snapshot_kv");
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.status().message(), HasSubstr("wl_init called wl_kv_get"));
  EXPECT_THAT(app.status().message(), HasSubstr("must not depend on data that changes"));
}

TEST_F(SnapshotTest, AnInstanceThatTrapsIsFreedAndTheNextStartsFromTheSnapshot) {
  auto app = load("snapshot");
  ASSERT_TRUE(app.ok()) << app.status();
  ASSERT_TRUE(call(*app, "scribble", false).status.ok());
  auto t = call(*app, "trap", false);
  EXPECT_THAT(t.status.message(), HasSubstr("unreachable"));
  auto r = call(*app, "state", false);
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(r.output, expected("none", 1));
}

}  // namespace
}  // namespace waverless::wasm
