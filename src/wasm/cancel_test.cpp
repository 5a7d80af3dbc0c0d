// Cancelling an invocation through its request's CancelScope, and which
// instances go back to the pool (engine.cpp, executor.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/cancel_scope.h"
#include "wasm/engine.h"
#include "wasm/test_support.h"

namespace waverless::wasm {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::readGuest;
using testing::TestHost;

class CancelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.cache_dir = WL_TEST_CACHE;
    o.executor.threads = 2;
    o.max_pooled_instance_bytes = size_t{32} << 20;
    engine_ = new Engine(o);
    ASSERT_TRUE(engine_->start().ok());
    AppLimits limits;
    limits.max_memory_pages = 1024;  // 64 MiB
    auto app = engine_->load("basic", readGuest("basic.wasm"), limits);
    ASSERT_TRUE(app.ok()) << app.status();
    basic_ = new std::shared_ptr<App>(*app);
  }
  static void TearDownTestSuite() {
    delete basic_;
    engine_->stop();
    delete engine_;
  }

  InvocationRequest request(const std::string& fn, std::shared_ptr<common::CancelScope> scope) {
    InvocationRequest req;
    req.function = fn;
    req.host = &host_;
    req.cancel = std::move(scope);
    return req;
  }
  std::future<InvocationResult> start(InvocationRequest req) {
    auto p = std::make_shared<std::promise<InvocationResult>>();
    auto fut = p->get_future();
    engine_->invoke(*basic_, std::move(req), [p](InvocationResult r) { p->set_value(r); });
    return fut;
  }
  // Cancels after `after` and returns how long the invocation took to stop.
  std::chrono::milliseconds cancelAfter(InvocationRequest req, std::chrono::milliseconds after,
                                        InvocationResult* out) {
    auto scope = req.cancel;
    auto fut = start(std::move(req));
    std::this_thread::sleep_for(after);
    auto t0 = std::chrono::steady_clock::now();
    scope->cancel(absl::DeadlineExceededError("request r1 passed its deadline"));
    EXPECT_EQ(fut.wait_for(5s), std::future_status::ready);
    *out = fut.get();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }

  static Engine* engine_;
  static std::shared_ptr<App>* basic_;
  TestHost host_;
};
Engine* CancelTest::engine_ = nullptr;
std::shared_ptr<App>* CancelTest::basic_ = nullptr;

TEST_F(CancelTest, ComputingGuestStopsWithTheScopesReason) {
  InvocationResult r;
  auto took =
      cancelAfter(request("loop_forever", std::make_shared<common::CancelScope>()), 50ms, &r);
  EXPECT_LT(took, 100ms);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status.message(), "request r1 passed its deadline");
}

TEST_F(CancelTest, GuestLoopingInHostCallsStops) {
  InvocationResult r;
  auto took =
      cancelAfter(request("loop_in_host_calls", std::make_shared<common::CancelScope>()), 30ms, &r);
  EXPECT_LT(took, 100ms);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CancelTest, ParkedGuestIsWokenAndStops) {
  auto req = request("nap", std::make_shared<common::CancelScope>());
  req.args = {"20000"};
  InvocationResult r;
  auto took = cancelAfter(std::move(req), 30ms, &r);
  EXPECT_LT(took, 100ms);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CancelTest, InvocationOfACancelledRequestNeverStarts) {
  auto scope = std::make_shared<common::CancelScope>();
  scope->cancel(absl::ResourceExhaustedError("limit"));
  for (bool background : {false, true}) {
    auto req = request("count", scope);
    req.background = background;
    InvocationResult r = start(std::move(req)).get();
    EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(r.output.empty());
  }
  // The guest's counter never moved: the next call is its first.
  auto fresh = request("count", nullptr);
  fresh.fresh_instance = true;
  EXPECT_EQ(start(std::move(fresh)).get().output, "1");
}

TEST_F(CancelTest, BackgroundInvocationRuns) {
  auto req = request("hello", nullptr);
  req.background = true;
  InvocationResult r = start(std::move(req)).get();
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "hello world");
}

TEST_F(CancelTest, InstanceWhoseAllocatorFailedIsNotReused) {
  (*basic_)->evictIdle();
  uint64_t discarded = engine_->stats().discarded;
  InvocationResult full = start(request("malloc_until_null", nullptr)).get();
  ASSERT_TRUE(full.status.ok()) << full.status;
  EXPECT_GT(std::stol(full.output), 10);
  EXPECT_EQ(engine_->stats().discarded, discarded + 1);
  // Its heap is full; a reused instance would fail every allocation. The
  // next call gets a new instance, which can allocate again.
  InvocationResult again = start(request("malloc_until_null", nullptr)).get();
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(again.output, full.output);
  EXPECT_EQ(engine_->stats().instances_idle, 0u);
}

TEST_F(CancelTest, InstanceThatGrewLargeIsNotPooled) {
  (*basic_)->evictIdle();
  // grow_raw grows until the 64 MiB cap refuses: past the 32 MiB threshold.
  InvocationResult r = start(request("grow_raw", nullptr)).get();
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(engine_->stats().instances_idle, 0u);
}

TEST_F(CancelTest, FreshInstanceKeepsNoStateBetweenCalls) {
  for (int i = 0; i < 3; ++i) {
    auto req = request("count", nullptr);
    req.fresh_instance = true;
    InvocationResult r = start(std::move(req)).get();
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output, "1");
  }
  // Reuse (the default) keeps the counter.
  (*basic_)->evictIdle();
  EXPECT_EQ(start(request("count", nullptr)).get().output, "1");
  EXPECT_EQ(start(request("count", nullptr)).get().output, "2");
}

// The node-wide budget counts running instances: a guest that allocates
// without end gets NULL from malloc once the budget is used up, even though
// its own cap (1 GiB) is far away; idle instances are evicted to make room.
TEST(MemoryBudget, GrowFailsInTheGuestWhenTheBudgetIsUsedUp) {
  EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  o.executor.threads = 2;
  o.memory_budget_bytes = size_t{48} << 20;
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto app = engine.load("basic", readGuest("basic.wasm"), AppLimits{});
  ASSERT_TRUE(app.ok()) << app.status();
  auto other = engine.load("other", readGuest("basic.wasm"), AppLimits{});
  ASSERT_TRUE(other.ok()) << other.status();
  TestHost host;
  auto call = [&](const char* fn, std::shared_ptr<App> on = nullptr) {
    InvocationRequest req;
    req.function = fn;
    req.host = &host;
    return engine.invokeSync(on ? on : *app, std::move(req));
  };
  ASSERT_TRUE(call("count", *other).status.ok());
  EXPECT_EQ(engine.stats().instances_idle, 1u);
  uint64_t evictions = engine.stats().evictions;
  InvocationResult r = call("malloc_until_null");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(std::stol(r.output), 30);
  EXPECT_LT(std::stol(r.output), 48);
  EXPECT_GT(engine.stats().evictions, evictions) << "the idle instance was not evicted for room";
  // The full instance was freed after its call: the budget is free again.
  EXPECT_LT(engine.stats().instance_bytes, size_t{1} << 20);
  EXPECT_EQ(call("malloc_until_null").output, r.output);
  engine.stop();
}

}  // namespace
}  // namespace waverless::wasm
