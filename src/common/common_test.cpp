#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "common/cancel_scope.h"
#include "common/json_text.h"
#include "common/timer_queue.h"

namespace waverless::common {
namespace {

using namespace std::chrono_literals;

TEST(JsonText, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(jsonEscape("a\"b\\c\nd\re\tf"), "a\\\"b\\\\c\\nd\\re\\tf");
  EXPECT_EQ(jsonEscape(std::string_view("\x01\x1f", 2)), "\\u0001\\u001f");
  EXPECT_EQ(jsonEscape("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 passes through
}

TEST(CancelScope, FirstReasonWins) {
  CancelScope s;
  EXPECT_FALSE(s.cancelled());
  EXPECT_TRUE(s.reason().ok());
  EXPECT_TRUE(s.cancel(absl::DeadlineExceededError("late")));
  EXPECT_FALSE(s.cancel(absl::CancelledError("gone")));
  EXPECT_TRUE(s.cancelled());
  EXPECT_TRUE(s.flag().load());
  EXPECT_EQ(s.reason().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(s.reason().message(), "late");
}

TEST(CancelScope, ResetMakesItNewAgain) {
  CancelScope s;
  s.cancel(absl::AbortedError("x"));
  s.reset();
  EXPECT_FALSE(s.cancelled());
  EXPECT_TRUE(s.reason().ok());
  EXPECT_TRUE(s.cancel(absl::CancelledError("y")));
  EXPECT_EQ(s.reason().message(), "y");
}

TEST(CancelScope, LongHookRunsOncePerUseAndOutlivesReset) {
  CancelScope s;
  int runs = 0;
  s.onLong([&] { runs++; });
  s.markLong();
  s.markLong();
  EXPECT_EQ(runs, 1);
  s.reset();  // the next request of the same owner: the hook stays
  s.markLong();
  s.markLong();
  EXPECT_EQ(runs, 2);
  s.onLong([&] { runs += 10; });
  s.markLong();
  EXPECT_EQ(runs, 12);
}

TEST(CancelScope, ResetOfAnUncancelledScopeKeepsItUsable) {
  CancelScope s;
  s.reset();
  EXPECT_FALSE(s.cancelled());
  EXPECT_TRUE(s.reason().ok());
  EXPECT_TRUE(s.cancel(absl::DeadlineExceededError("late")));
  EXPECT_TRUE(s.flag().load());
  EXPECT_EQ(s.reason().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(CancelScope, OkReasonBecomesCancelled) {
  CancelScope s;
  s.cancel(absl::OkStatus());
  EXPECT_EQ(s.reason().code(), absl::StatusCode::kCancelled);
}

TEST(TimerQueue, FiresInDeadlineOrder) {
  TimerQueue q;
  q.start();
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> all;
  auto now = TimerQueue::Clock::now();
  auto add = [&](int n, auto at) {
    q.schedule(at, [&, n] {
      std::lock_guard lock(mu);
      order.push_back(n);
      if (order.size() == 3) all.set_value();
    });
  };
  add(3, now + 60ms);
  add(1, now + 10ms);
  add(2, now + 30ms);
  ASSERT_EQ(all.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(q.pending(), 0u);
}

TEST(TimerQueue, CancelledTimerNeverFires) {
  TimerQueue q;
  q.start();
  std::atomic<int> fired{0};
  auto id = q.schedule(TimerQueue::Clock::now() + 30ms, [&] { fired++; });
  EXPECT_TRUE(q.cancel(id));
  EXPECT_FALSE(q.cancel(id));
  std::promise<void> later;
  q.schedule(TimerQueue::Clock::now() + 60ms, [&] { later.set_value(); });
  ASSERT_EQ(later.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(fired.load(), 0);
}

TEST(TimerQueue, PastDeadlineFiresAtOnceAndStopDropsTheRest) {
  TimerQueue q;
  q.start();
  std::promise<void> now;
  q.schedule(TimerQueue::Clock::now() - 1s, [&] { now.set_value(); });
  ASSERT_EQ(now.get_future().wait_for(5s), std::future_status::ready);
  std::atomic<int> fired{0};
  q.schedule(TimerQueue::Clock::now() + 1h, [&] { fired++; });
  q.stop();
  q.stop();
  EXPECT_EQ(fired.load(), 0);
  EXPECT_EQ(q.pending(), 0u);
}

}  // namespace
}  // namespace waverless::common
