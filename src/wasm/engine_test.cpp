#include "wasm/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "wasm/rt/exec_context.h"
#include "wasm/test_support.h"

namespace waverless::wasm {
namespace {

using ::testing::HasSubstr;
using testing::readGuest;
using testing::TestHost;

EngineOptions testOptions() {
  EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  o.executor.threads = 2;
  return o;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    engine_ = new Engine(testOptions());
    ASSERT_TRUE(engine_->start().ok());
    auto app = engine_->load("basic", readGuest("basic.wasm"), AppLimits{});
    ASSERT_TRUE(app.ok()) << app.status();
    basic_ = new std::shared_ptr<App>(*app);
  }
  static void TearDownTestSuite() {
    delete basic_;
    engine_->stop();
    delete engine_;
  }

  InvocationResult call(const std::string& fn, std::vector<std::string> args = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    InvocationRequest req;
    req.function = fn;
    req.args = std::move(args);
    req.host = &host_;
    req.timeout = timeout;
    req.files_dir = files_dir_;
    return engine_->invokeSync(*basic_, std::move(req));
  }

  static Engine* engine_;
  static std::shared_ptr<App>* basic_;
  TestHost host_;
  std::filesystem::path files_dir_;
};
Engine* EngineTest::engine_ = nullptr;
std::shared_ptr<App>* EngineTest::basic_ = nullptr;

TEST_F(EngineTest, HelloReturnsOutput) {
  auto r = call("hello");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "hello world");
}

TEST_F(EngineTest, ArgumentsArriveThroughGuestAllocator) {
  auto r = call("echo", {"a", "bc", "", std::string(100000, 'x')});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "a|bc||" + std::string(100000, 'x'));
}

TEST_F(EngineTest, ExportWithoutArguments) {
  auto r = call("noop");
  EXPECT_TRUE(r.status.ok()) << r.status;
}

TEST_F(EngineTest, WarmInstanceIsReusedAndKeepsState) {
  (*basic_)->evictIdle();
  auto a = call("count");
  auto b = call("count");
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_TRUE(a.cold_start);
  EXPECT_FALSE(b.cold_start);
  EXPECT_EQ(std::stoi(b.output), std::stoi(a.output) + 1);
}

TEST_F(EngineTest, StdoutStderrAndLogAreCapturedPerInvocation) {
  auto r = call("printer");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "printed");
  EXPECT_THAT(r.log, HasSubstr("to stdout 42\n"));
  EXPECT_THAT(r.log, HasSubstr("to stderr\n"));
  EXPECT_THAT(r.log, HasSubstr("[warn] structured"));
  auto again = call("hello");
  EXPECT_EQ(again.log, "");
}

TEST_F(EngineTest, KvMissingIsDistinctFromEmpty) {
  auto r = call("kv_roundtrip", {"key1", "a value longer than two bytes"});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "a value longer than two bytes missing=1 empty=0 len=0 deleted=1");
}

TEST_F(EngineTest, UnknownFunctionIsNotFound) {
  auto r = call("no_such_fn");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("no_such_fn"));
}

struct TrapCase {
  const char* fn;
  const char* message;
};
class TrapTest : public EngineTest, public ::testing::WithParamInterface<TrapCase> {};

TEST_P(TrapTest, TrapFailsOnlyThatInvocation) {
  auto before = engine_->stats();
  auto r = call(GetParam().fn);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(GetParam().message));
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(GetParam().fn));
  // The trapped instance was discarded, not returned to the pool.
  auto after = engine_->stats();
  EXPECT_LE(after.instances_live, before.instances_live);
  auto ok = call("hello");
  EXPECT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(ok.output, "hello world");
}

INSTANTIATE_TEST_SUITE_P(AllTraps, TrapTest,
                         ::testing::Values(TrapCase{"trap_oob", "out of bounds memory access"},
                                           TrapCase{"trap_unreachable", "unreachable executed"},
                                           TrapCase{"trap_div0", "integer divide by zero"},
                                           TrapCase{"trap_stack", "call stack exhausted"}),
                         [](const auto& p) { return std::string(p.param.fn); });

TEST_F(EngineTest, InfiniteLoopStopsAtDeadlineAndThreadIsReused) {
  auto r = call("loop_forever", {}, std::chrono::milliseconds(200));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("timed out"));
  // The deadline counts from invoke(), the duration from the fiber's start,
  // which a loaded machine delays.
  EXPECT_GE(r.duration, std::chrono::milliseconds(150));
  // Both executor threads are free again: several calls in a row succeed.
  for (int i = 0; i < 8; ++i) {
    auto ok = call("hello");
    ASSERT_TRUE(ok.status.ok()) << ok.status;
  }
}

TEST_F(EngineTest, LoopOfHostCallsStopsAtDeadline) {
  auto r = call("loop_in_host_calls", {}, std::chrono::milliseconds(150));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
}

class BadPointerTest : public EngineTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(BadPointerTest, FailsInvocationWithClearError) {
  auto dir = std::filesystem::temp_directory_path() / ("wl-bad-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a.txt") << "abc";
  files_dir_ = dir;
  auto r = call("bad_pointer", {GetParam()});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal) << r.output;
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("outside the guest's"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("survived")));
  EXPECT_TRUE(call("hello").status.ok());
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    EveryHostCall, BadPointerTest,
    ::testing::Values("kv_get_key", "kv_get_buf", "kv_get_len", "kv_set_key", "kv_set_value",
                      "kv_delete", "kv_cas_key", "kv_cas_expected", "kv_cas_value", "kv_incr_key",
                      "kv_incr_result", "invocation_id_buf", "invocation_id_len", "output_write",
                      "log", "file_open_path", "file_open_fd", "file_size", "file_read_at",
                      "file_read_at_len", "fd_write", "fd_write_buf", "wrap"));

TEST_F(EngineTest, CasIncrAndInvocationIdReachTheHost) {
  auto r = call("atomics");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output,
            "cas_new=0 cas_new_again=10 cas_wrong=10 cas_right=0 c=three incr=0:5 incr=0:-2 "
            "incr_text=3 incr_over=3 id_small=5:9 id=0:test-id.0");
  EXPECT_THAT(r.log, HasSubstr("kv_incr: "));  // why incr_text was refused
}

TEST_F(EngineTest, ProcExitEndsInvocationWithItsCode) {
  auto bad = call("exit_code", {"3"});
  EXPECT_FALSE(bad.status.ok());
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_THAT(std::string(bad.status.message()), HasSubstr("exited with code 3"));
  auto good = call("exit_code", {"0"});
  EXPECT_TRUE(good.status.ok()) << good.status;
}

TEST_F(EngineTest, FilesStayInsideTheAppFolder) {
  auto dir = std::filesystem::temp_directory_path() / ("wl-files-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(dir / "a.txt") << "alpha";
  std::ofstream(dir / "sub" / "b.txt") << "beta";
  std::filesystem::create_symlink("/etc/hostname", dir / "out_link");
  std::filesystem::create_symlink("a.txt", dir / "in_link");
  files_dir_ = dir;
  EXPECT_EQ(call("read_file", {"a.txt"}).output, "alpha");
  EXPECT_EQ(call("read_file", {"sub/b.txt"}).output, "beta");
  EXPECT_EQ(call("read_file", {"in_link"}).output, "alpha");
  EXPECT_EQ(call("read_file", {"../a.txt"}).output, "status 2");
  EXPECT_EQ(call("read_file", {"sub/../../x"}).output, "status 2");
  EXPECT_EQ(call("read_file", {"/etc/hostname"}).output, "status 2");
  EXPECT_EQ(call("read_file", {"out_link"}).output, "status 2");
  EXPECT_EQ(call("read_file", {"missing.txt"}).output, "status 1");
  files_dir_.clear();
  EXPECT_EQ(call("read_file", {"a.txt"}).output, "status 2");
  std::filesystem::remove_all(dir);
}

TEST_F(EngineTest, LinearMemoryIsCappedPerApp) {
  AppLimits small;
  small.max_memory_pages = 64;  // 4 MiB
  auto app = engine_->load("small", readGuest("basic.wasm"), small);
  ASSERT_TRUE(app.ok()) << app.status();
  InvocationRequest req;
  req.function = "grow_raw";
  auto r = engine_->invokeSync(*app, req);
  ASSERT_TRUE(r.status.ok()) << r.status << r.log;
  int small_gained = std::stoi(r.output);
  EXPECT_GT(small_gained, 0);
  EXPECT_LT(small_gained, 64);
  auto big = call("grow_raw");
  ASSERT_TRUE(big.status.ok()) << big.status;
  EXPECT_EQ(std::stoi(big.output), 16384 - 64 + small_gained);
  (*basic_)->evictIdle();  // give the memory back
}

TEST_F(EngineTest, ConcurrentInvocationsWithTrapsMixedIn) {
  std::atomic<int> wrong{0}, traps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        if (i % 5 == 0) {
          auto r = call(i % 10 == 0 ? "trap_div0" : "trap_oob");
          traps += !r.status.ok();
        } else {
          std::string arg = std::to_string(t) + ":" + std::to_string(i);
          auto r = call("echo", {arg});
          wrong += !(r.status.ok() && r.output == arg);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(traps.load(), 4 * 30);
}

TEST_F(EngineTest, TwentyThousandInstantiateFreeCyclesDoNotGrowAddressSpace) {
  // proc_exit(0) makes each instance unusable, so every call instantiates a
  // new one and frees the old.
  auto vmSize = [] {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.starts_with("VmSize:")) return std::stol(line.substr(7));
    }
    return 0L;
  };
  for (int i = 0; i < 200; ++i) call("exit_code", {"0"});
  long before = vmSize();
  auto res_before = rt::reservationStats();
  for (int i = 0; i < 20000; ++i) {
    auto r = call("exit_code", {"0"});
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_TRUE(r.cold_start);
  }
  long after = vmSize();
  auto res_after = rt::reservationStats();
  EXPECT_LT(after - before, 64 * 1024) << "VmSize grew by " << (after - before) << " kB";
  EXPECT_LE(res_after.mapped, res_before.mapped + 2);
}

TEST_F(EngineTest, ThousandSuspendedInvocationsResumeCorrectly) {
  constexpr int kN = 1000;
  std::atomic<int> done{0}, wrong{0};
  for (int i = 0; i < kN; ++i) {
    InvocationRequest req;
    req.function = "slow_get";
    std::string key = "slow" + std::to_string(i);
    req.args = {key};
    req.host = &host_;
    engine_->invoke(*basic_, std::move(req), [&, key](InvocationResult r) {
      wrong += !(r.status.ok() && r.output == "v:" + key);
      done++;
    });
  }
  for (int i = 0; i < 3000 && host_.parked() < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(host_.parked(), static_cast<size_t>(kN));
  EXPECT_LT(testing::threadCount(), 16);  // bounded, not one per invocation
  EXPECT_EQ(engine_->stats().executor.parked_fibers, static_cast<uint64_t>(kN));
  host_.resumeAll();
  for (int i = 0; i < 3000 && done < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(done.load(), kN);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(EngineTest, SleepParksWithoutThreadsAndWakes) {
  constexpr int kN = 300;
  std::atomic<int> done{0}, wrong{0};
  for (int i = 0; i < kN; ++i) {
    InvocationRequest req;
    req.function = "nap";
    req.args = {"50"};
    engine_->invoke(*basic_, std::move(req), [&](InvocationResult r) {
      if (!(r.status.ok() && r.output == "nap=0")) {
        wrong++;
        ADD_FAILURE() << r.status << " " << r.output;
      }
      done++;
    });
  }
  EXPECT_LT(testing::threadCount(), 16);
  for (int i = 0; i < 2000 && done < kN; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(done.load(), kN);
  EXPECT_EQ(wrong.load(), 0);
  // A sleep past the deadline ends the invocation as a timeout.
  auto late = call("nap", {"5000"}, std::chrono::milliseconds(100));
  EXPECT_EQ(late.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(EngineTest, SuspendedInvocationTimesOut) {
  auto r = call("slow_get", {"slow-never"}, std::chrono::milliseconds(100));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded) << r.status;
  EXPECT_EQ(r.output, "");
  host_.resumeAll();  // late resume is ignored
}

TEST(EnginePool, InstancesAreBoundedPerAppAndWaitersProceed) {
  Engine engine(testOptions());
  ASSERT_TRUE(engine.start().ok());
  AppLimits limits;
  limits.max_instances = 2;
  auto app = engine.load("pooled", readGuest("basic.wasm"), limits);
  ASSERT_TRUE(app.ok());
  TestHost host;
  std::atomic<int> done{0}, ok{0};
  for (int i = 0; i < 10; ++i) {
    InvocationRequest req;
    req.function = "slow_get";
    req.args = {"slow" + std::to_string(i)};
    req.host = &host;
    engine.invoke(*app, std::move(req), [&](InvocationResult r) {
      ok += r.status.ok();
      done++;
    });
  }
  for (int round = 0; round < 200 && done < 10; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_LE(engine.stats().instances_live, 2u);
    host.resumeAll();
  }
  EXPECT_EQ(done.load(), 10);
  EXPECT_EQ(ok.load(), 10);
  engine.stop();
}

TEST(EnginePool, MemoryBudgetEvictsLeastRecentlyUsedAcrossApps) {
  EngineOptions o = testOptions();
  o.memory_budget_bytes = 300 << 10;  // room for two 2-page instances
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto a = engine.load("a", readGuest("version_a.wasm"), AppLimits{});
  auto b = engine.load("b", readGuest("version_b.wasm"), AppLimits{});
  auto c = engine.load("c", readGuest("basic.wasm"), AppLimits{});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  InvocationRequest which;
  which.function = "which";
  InvocationRequest hello;
  hello.function = "hello";
  EXPECT_TRUE(engine.invokeSync(*a, which).status.ok());
  EXPECT_TRUE(engine.invokeSync(*b, which).status.ok());
  EXPECT_TRUE(engine.invokeSync(*c, hello).status.ok());
  auto s = engine.stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_LE(s.instance_bytes, o.memory_budget_bytes);
  // The least recently used app (a) was evicted; b and c are still warm.
  EXPECT_FALSE(engine.invokeSync(*c, hello).cold_start);
  EXPECT_FALSE(engine.invokeSync(*b, which).cold_start);
  EXPECT_TRUE(engine.invokeSync(*a, which).cold_start);
  engine.stop();
}

TEST(EnginePool, IdleInstancesAreFreedAfterTtl) {
  EngineOptions o = testOptions();
  o.idle_ttl = std::chrono::seconds(1);
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto a = engine.load("a", readGuest("version_a.wasm"), AppLimits{});
  ASSERT_TRUE(a.ok());
  InvocationRequest which;
  which.function = "which";
  EXPECT_TRUE(engine.invokeSync(*a, which).status.ok());
  EXPECT_EQ(engine.stats().instances_idle, 1u);
  for (int i = 0; i < 40 && engine.stats().instances_idle > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(engine.stats().instances_idle, 0u);
  engine.stop();
}

TEST(EngineModules, TwoModulesAndTwoVersionsCoexist) {
  Engine engine(testOptions());
  ASSERT_TRUE(engine.start().ok());
  auto a = engine.load("app", readGuest("version_a.wasm"), AppLimits{});
  auto b = engine.load("app", readGuest("version_b.wasm"), AppLimits{});
  auto basic = engine.load("basic", readGuest("basic.wasm"), AppLimits{});
  auto a2 = engine.load("app-again", readGuest("version_a.wasm"), AppLimits{});
  ASSERT_TRUE(a.ok() && b.ok() && basic.ok() && a2.ok());
  InvocationRequest which;
  which.function = "which";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(engine.invokeSync(*a, which).output, "version A");
    EXPECT_EQ(engine.invokeSync(*b, which).output, "version B");
    EXPECT_EQ(engine.invokeSync(*a2, which).output, "version A");
    InvocationRequest hello;
    hello.function = "hello";
    EXPECT_EQ(engine.invokeSync(*basic, hello).output, "hello world");
  }
  engine.stop();
}

// A fault in host code (here: a host service dereferencing null) is a host
// bug: the process dies from the signal instead of reporting a guest trap.
class CrashingHost : public TestHost {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(Fiber&, std::string_view) override {
    volatile int* p = nullptr;
    return std::optional<std::string>(std::to_string(*p));
  }
};

TEST(EngineDeathTest, HostFaultOutsideGuestCodeCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Engine engine(testOptions());
        (void)engine.start();
        auto app = engine.load("basic", readGuest("basic.wasm"), AppLimits{});
        CrashingHost host;
        InvocationRequest req;
        req.function = "slow_get";
        req.args = {"k"};
        req.host = &host;
        auto r = engine.invokeSync(*app, req);
        fprintf(stderr, "reported as: %s\n", r.status.ToString().c_str());
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
}  // namespace waverless::wasm
