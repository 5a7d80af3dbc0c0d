#include "linearizability.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace waverless::faults {
namespace {

using Verdict = CheckResult::Verdict;
using ::testing::HasSubstr;

RegisterOp set(int client, std::string key, std::string v, int64_t call, int64_t ret) {
  RegisterOp op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kSet;
  op.value = std::move(v);
  op.call_ns = call;
  op.return_ns = ret;
  return op;
}

RegisterOp get(int client, std::string key, std::optional<std::string> got, int64_t call,
               int64_t ret) {
  RegisterOp op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kGet;
  op.got = std::move(got);
  op.call_ns = call;
  op.return_ns = ret;
  return op;
}

RegisterOp cas(int client, std::string key, std::optional<std::string> expected, std::string v,
               bool stored, int64_t call, int64_t ret) {
  RegisterOp op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kCas;
  op.expected = std::move(expected);
  op.value = std::move(v);
  op.cas_stored = stored;
  op.call_ns = call;
  op.return_ns = ret;
  return op;
}

RegisterOp incr(int client, std::string key, int64_t delta, int64_t sum, int64_t call,
                int64_t ret) {
  RegisterOp op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kIncr;
  op.delta = delta;
  op.sum = sum;
  op.call_ns = call;
  op.return_ns = ret;
  return op;
}

RegisterOp maybe(RegisterOp op) {
  op.indeterminate = true;
  op.return_ns = 0;
  return op;
}

TEST(Linearizability, OperationsRoundTripThroughTsv) {
  std::vector<RegisterOp> ops = {get(1, "k", std::nullopt, 5, 9),
                                 get(1, "k", "", 5, 9),
                                 set(2, "k", "v", 1, 2),
                                 cas(3, "k", std::nullopt, "n", true, 3, 4),
                                 cas(3, "k", "old", "n", false, 3, 4),
                                 incr(4, "c", -3, 42, 7, 8),
                                 maybe(set(5, "k", "w", 10, 0))};
  for (const RegisterOp& op : ops) {
    std::optional<RegisterOp> back = fromTsv(toTsv(op));
    ASSERT_TRUE(back.has_value()) << toTsv(op);
    EXPECT_EQ(toTsv(*back), toTsv(op));
    EXPECT_EQ(describe(*back), describe(op));
  }
  // An absent value is a control byte then a word: no harness token looks like it.
  EXPECT_THAT(toTsv(ops[0]), HasSubstr(std::string("\x01") + "absent"));
  EXPECT_FALSE(fromTsv("not\ta\tline").has_value());
  EXPECT_FALSE(fromTsv("1\tk\tfrob\tv\tx\t0\tx\t0\t0\t0\t1\t2").has_value());
}

TEST(Linearizability, EmptyHistoryIsLinearizable) {
  EXPECT_EQ(checkLinearizable({}).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, AcceptsConcurrentHistoryThatNeedsReordering) {
  // Client 1's set overlaps both reads; the reads see old then new, which is fine as long as the
  // set takes effect between them. Client 2's cas wins, client 3's loses.
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10),
      set(1, "x", "b", 20, 100),
      get(2, "x", "a", 25, 30),
      get(3, "x", "b", 40, 50),
      cas(2, "x", "b", "c", true, 110, 130),
      cas(3, "x", "b", "d", false, 115, 140),
      get(0, "x", "c", 150, 160),
  };
  CheckResult r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_EQ(r.keys, 1u);
  EXPECT_EQ(r.ops, h.size());
}

TEST(Linearizability, RejectsStaleReadAfterCompletedWrite) {
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10), set(1, "x", "b", 20, 30),
      get(2, "x", "a", 40, 50),  // b was acknowledged before this read began
  };
  CheckResult r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "x");
  EXPECT_THAT(r.explanation, HasSubstr("no order"));
}

TEST(Linearizability, RejectsReadsThatGoBackInTime) {
  // The set is concurrent with both reads, but once one read saw "new" a later read may not see
  // "old" again.
  std::vector<RegisterOp> h = {
      set(0, "x", "old", 0, 5),
      set(1, "x", "new", 10, 100),
      get(2, "x", "new", 20, 30),
      get(3, "x", "old", 40, 50),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, RejectsTwoCasWinnersFromTheSameValue) {
  std::vector<RegisterOp> h = {
      cas(0, "x", std::nullopt, "a", true, 0, 10),
      cas(1, "x", std::nullopt, "b", true, 5, 15),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, RejectsLostIncrement) {
  std::vector<RegisterOp> h = {
      incr(0, "n", 1, 1, 0, 10), incr(1, "n", 1, 1, 5, 15),  // both saw 1: one increment was lost
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kNotLinearizable);
  std::vector<RegisterOp> ok = {
      incr(0, "n", 1, 2, 0, 10),
      incr(1, "n", 1, 1, 5, 15),
      get(2, "n", "2", 20, 30),
  };
  EXPECT_EQ(checkLinearizable(ok).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, KeysAreCheckedApart) {
  // Fine per key; a checker that mixed keys into one register would reject this.
  std::vector<RegisterOp> h = {
      set(0, "x", "1", 0, 10),  set(1, "y", "2", 0, 10),           get(2, "x", "1", 20, 30),
      get(3, "y", "2", 20, 30), get(3, "z", std::nullopt, 20, 30),
  };
  CheckResult r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable);
  EXPECT_EQ(r.keys, 3u);
  h.push_back(get(0, "y", "1", 40, 50));  // the value of x, read from y
  r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "y");
}

TEST(Linearizability, IndeterminateWriteMayHaveHappened) {
  // The set timed out, yet a later read saw it: it took effect.
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10),
      maybe(set(1, "x", "b", 20, 0)),
      get(2, "x", "b", 1000, 1010),
      get(2, "x", "b", 2000, 2010),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, IndeterminateWriteMayNotHaveHappened) {
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10),
      maybe(set(1, "x", "b", 20, 0)),
      get(2, "x", "a", 1000, 1010),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, IndeterminateWriteCannotHappenBeforeItsCall) {
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10),
      get(2, "x", "b", 20, 30),  // reads b before anyone asked to write it
      maybe(set(1, "x", "b", 40, 0)),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, IndeterminateWriteHappensAtMostOnce) {
  // The timed-out set of b may take effect once; b then a then b again needs two.
  std::vector<RegisterOp> h = {
      maybe(set(1, "x", "b", 0, 0)),
      get(2, "x", "b", 10, 20),
      set(0, "x", "a", 30, 40),
      get(2, "x", "b", 50, 60),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, IndeterminateCasAndIncrAcceptAnyOutcome) {
  std::vector<RegisterOp> h = {
      set(0, "x", "a", 0, 10),
      maybe(cas(1, "x", "a", "b", false, 20, 0)),  // its "false" is not what the client saw
      get(2, "x", "b", 100, 110),
      maybe(incr(1, "n", 5, 0, 20, 0)),
      incr(2, "n", 1, 6, 100, 110),
  };
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kLinearizable);
}

// A register implemented under a mutex, driven by several threads with random delays around
// each operation: its history is linearizable by construction, and large enough to show the
// checker's speed. The same history with one read's answer corrupted must be rejected.
std::vector<RegisterOp> recordedHistory(int clients, int ops_per_client, unsigned seed) {
  std::mutex mu;
  std::map<std::string, std::string> store;
  std::vector<RegisterOp> history;
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(seed + c);
      std::vector<RegisterOp> mine;
      for (int i = 0; i < ops_per_client; ++i) {
        RegisterOp op;
        op.client = c;
        op.key = absl::StrCat("k", rng() % 3);
        int kind = rng() % 4;
        op.kind = kind == 0 ? OpKind::kGet : kind == 1 ? OpKind::kSet : OpKind::kCas;
        op.value = absl::StrCat(c, "-", i);
        op.call_ns = now();
        if (rng() % 4 == 0) std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          auto it = store.find(op.key);
          std::optional<std::string> cur;
          if (it != store.end()) cur = it->second;
          if (op.kind == OpKind::kGet) {
            op.got = cur;
          } else if (op.kind == OpKind::kSet) {
            store[op.key] = op.value;
          } else {
            // Half expect what is there (often wins), half something stale (often loses).
            op.expected = rng() % 2 ? cur : std::optional<std::string>(absl::StrCat(c, "-", i - 1));
            op.cas_stored = op.expected == cur;
            if (op.cas_stored) store[op.key] = op.value;
          }
        }
        if (rng() % 4 == 0) std::this_thread::yield();
        op.return_ns = now();
        mine.push_back(std::move(op));
      }
      std::lock_guard lock(mu);
      for (auto& op : mine) history.push_back(std::move(op));
    });
  }
  for (auto& t : threads) t.join();
  return history;
}

TEST(Linearizability, FewThousandOpHistoryChecksWithinSeconds) {
  std::vector<RegisterOp> h = recordedHistory(8, 500, 42);
  ASSERT_EQ(h.size(), 4000u);
  auto start = std::chrono::steady_clock::now();
  CheckResult r = checkLinearizable(h);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_LT(took, std::chrono::seconds(5)) << r.states_explored << " states";

  // Corrupt one read that saw a value: claim it saw a value nobody ever wrote.
  for (auto& op : h) {
    if (op.kind == OpKind::kGet && op.got) {
      op.got = "never-written";
      break;
    }
  }
  r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
}

// A counter under faults: many increments time out (maybe happened), and later answers show
// which did. Exploring every subset of the timed-out ones would take forever.
TEST(Linearizability, ManyTimedOutIncrementsCheckQuickly) {
  std::mt19937 rng(3);
  std::vector<RegisterOp> h;
  int64_t value = 0, t = 0;
  for (int i = 0; i < 600; ++i) {
    int64_t delta = 1 + rng() % 5;
    bool timed_out = rng() % 5 == 0;
    bool took_effect = rng() % 2 == 0;
    if (timed_out) {
      if (took_effect) value += delta;
      h.push_back(maybe(incr(i % 4, "n", delta, 0, t, 0)));
    } else {
      value += delta;
      h.push_back(incr(i % 4, "n", delta, value, t, t + 5));
    }
    t += 10;
  }
  h.push_back(get(9, "n", absl::StrCat(value), t, t + 1));
  CheckOptions quick;  // a short exact search before the fallback, to keep this test fast
  quick.max_time_per_key = std::chrono::milliseconds(1000);
  auto start = std::chrono::steady_clock::now();
  CheckResult r = checkLinearizable(h, quick);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_EQ(r.counters_bounds_only, std::vector<std::string>{"n"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << r.states_explored << " states";
  // More than every increment ever asked for: no subset of the timed-out ones explains it.
  h.back().got = absl::StrCat(value + 5000);
  r = checkLinearizable(h, quick);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_THAT(r.explanation, HasSubstr("outside ["));
  // An acknowledged increment lost: a later read below what was surely done.
  h.back().got = absl::StrCat(value - 200);
  EXPECT_EQ(checkLinearizable(h, quick).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, SmallCounterHistoriesGetTheExactSearch) {
  // Within every bound, yet not linearizable: the second read went back in time.
  std::vector<RegisterOp> h = {
      incr(0, "n", 1, 1, 0, 10),
      maybe(incr(1, "n", 5, 0, 20, 0)),
      get(2, "n", "6", 30, 40),
      get(2, "n", "1", 50, 60),
  };
  CheckResult r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_TRUE(r.counters_bounds_only.empty());
}

// A register under faults: many writes time out, and reads later show which of them took
// effect. Trying every subset of the timed-out writes before each read would never end.
TEST(Linearizability, ManyTimedOutWritesCheckQuickly) {
  std::mt19937 rng(5);
  std::vector<RegisterOp> h;
  std::string value;
  int64_t t = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string v = absl::StrCat("v", i);
    int dice = rng() % 10;
    if (dice < 3) {
      // Timed out; took effect (a later read may see it) or not.
      if (rng() % 2) value = v;
      h.push_back(maybe(set(i % 5, "x", v, t, 0)));
    } else if (dice < 6) {
      value = v;
      h.push_back(set(i % 5, "x", v, t, t + 5));
    } else {
      h.push_back(get(i % 5, "x", value.empty() ? std::nullopt : std::optional(value), t, t + 5));
    }
    t += 10;
  }
  auto start = std::chrono::steady_clock::now();
  CheckResult r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << r.states_explored << " states";
  // A timed-out write may still land at the very end, so reading it last is fine; reading an
  // acknowledged write that a later acknowledged write replaced is not.
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].kind == OpKind::kSet && h[i].indeterminate) {
      h.push_back(get(9, "x", h[i].value, t + 100, t + 110));
      break;
    }
  }
  EXPECT_EQ(checkLinearizable(h).verdict, Verdict::kLinearizable);
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].kind == OpKind::kSet && !h[i].indeterminate) {
      h.push_back(get(9, "x", h[i].value, t + 200, t + 210));
      break;
    }
  }
  r = checkLinearizable(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable) << r.explanation;
}

TEST(Linearizability, GivesUpAtTheBudgetInsteadOfRunningForever) {
  std::vector<RegisterOp> h = recordedHistory(4, 200, 7);
  CheckOptions tiny;
  tiny.max_states_per_key = 10;
  CheckResult r = checkLinearizable(h, tiny);
  EXPECT_EQ(r.verdict, Verdict::kGaveUp);
  EXPECT_THAT(r.explanation, HasSubstr("gave up"));
}

}  // namespace
}  // namespace waverless::faults
