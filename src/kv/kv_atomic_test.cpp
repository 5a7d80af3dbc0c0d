// KvStore's read-modify-writes: cas() and incr(), alone and under contention.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"

namespace waverless::kv {
namespace {

using ::testing::HasSubstr;

class KvAtomicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/wl-kv-atomic-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto opened = KvStore::open({.dir = dir_ / "db"});
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::optional<std::string> value(std::string_view key) {
    auto got = store_->get("app", key);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::nullopt;
  }

  std::filesystem::path dir_;
  std::unique_ptr<KvStore> store_;
};

TEST_F(KvAtomicTest, CasCreateOnlyWhenAbsent) {
  auto first = store_->cas("app", "k", std::nullopt, "one");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  EXPECT_EQ(value("k"), "one");
  auto second = store_->cas("app", "k", std::nullopt, "two");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(value("k"), "one");
}

TEST_F(KvAtomicTest, CasReplacesOnlyTheExpectedValue) {
  ASSERT_TRUE(store_->set("app", "k", "a").ok());
  EXPECT_FALSE(*store_->cas("app", "k", "b", "c"));
  EXPECT_EQ(value("k"), "a");
  EXPECT_TRUE(*store_->cas("app", "k", "a", "c"));
  EXPECT_EQ(value("k"), "c");
  // An empty value is a value: it is not "absent", and absent does not match "".
  EXPECT_FALSE(*store_->cas("app", "missing", "", "x"));
  EXPECT_EQ(value("missing"), std::nullopt);
  ASSERT_TRUE(store_->set("app", "empty", "").ok());
  EXPECT_FALSE(*store_->cas("app", "empty", std::nullopt, "x"));
  EXPECT_TRUE(*store_->cas("app", "empty", "", "x"));
  EXPECT_EQ(value("empty"), "x");
}

TEST_F(KvAtomicTest, CasChecksKeysValuesAndApps) {
  EXPECT_EQ(store_->cas("app", "", std::nullopt, "v").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->cas("", "k", std::nullopt, "v").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string big(store_->options().max_value_bytes + 1, 'x');
  EXPECT_EQ(store_->cas("app", "k", std::nullopt, big).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Apps are isolated for cas too.
  ASSERT_TRUE(store_->set("other", "k", "v").ok());
  EXPECT_TRUE(*store_->cas("app", "k", std::nullopt, "mine"));
  EXPECT_EQ(*store_->get("other", "k"), "v");
}

TEST_F(KvAtomicTest, IncrStartsAtZeroAndStoresDecimalText) {
  EXPECT_EQ(*store_->incr("app", "n", 5), 5);
  EXPECT_EQ(*store_->incr("app", "n", -7), -2);
  EXPECT_EQ(value("n"), "-2");
  EXPECT_EQ(*store_->incr("app", "n", 0), -2);
  ASSERT_TRUE(store_->set("app", "n", "40").ok());
  EXPECT_EQ(*store_->incr("app", "n", 2), 42);
}

TEST_F(KvAtomicTest, IncrRefusesNonIntegersAndOverflow) {
  for (std::string bad : {"abc", "", " 1", "1 ", "+1", "1.5", "0x10", "99999999999999999999"}) {
    ASSERT_TRUE(store_->set("app", "n", bad).ok());
    auto r = store_->incr("app", "n", 1);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "value '" << bad << "'";
    EXPECT_THAT(r.status().message(), HasSubstr("not a decimal 64-bit integer"));
    EXPECT_EQ(value("n"), bad);  // untouched
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  ASSERT_TRUE(store_->set("app", "n", absl::StrCat(kMax)).ok());
  auto over = store_->incr("app", "n", 1);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(over.status().message(), HasSubstr("overflows"));
  EXPECT_EQ(value("n"), absl::StrCat(kMax));
  ASSERT_TRUE(store_->set("app", "n", absl::StrCat(kMin)).ok());
  EXPECT_EQ(store_->incr("app", "n", -1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*store_->incr("app", "n", kMax), -1);
}

TEST_F(KvAtomicTest, ConcurrentIncrFromEightThreadsSumsExactly) {
  constexpr int kThreads = 8;
  constexpr int kEach = 500;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Plain sets of a neighbouring key in the same loop: they take stripes too.
        if (!store_->incr("app", "counter", t + 1).ok()) errors++;
        if (!store_->set("app", absl::StrCat("side", t), absl::StrCat(i)).ok()) errors++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  // sum over t of (t + 1) * kEach
  EXPECT_EQ(value("counter"), absl::StrCat(kEach * kThreads * (kThreads + 1) / 2));
}

TEST_F(KvAtomicTest, CasRacesElectExactlyOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    std::string key = absl::StrCat("slot", round);
    std::atomic<int> winners{0};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = store_->cas("app", key, std::nullopt, absl::StrCat("t", t));
        if (!r.ok())
          errors++;
        else if (*r)
          winners++;
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(errors.load(), 0);
    ASSERT_EQ(winners.load(), 1) << "round " << round;
  }
}

// A cas loop (read, then cas from what was read) is a correct increment only if cas is atomic
// against plain sets of the same key too; set/cas interleavings would otherwise lose updates.
TEST_F(KvAtomicTest, CasLoopsCountExactlyAgainstConcurrentSetsOfTheSameStripe) {
  ASSERT_TRUE(store_->set("app", "c", "0").ok());
  constexpr int kThreads = 4;
  constexpr int kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        for (;;) {
          auto cur = store_->get("app", "c");
          ASSERT_TRUE(cur.ok() && cur->has_value());
          std::string next = absl::StrCat(std::stoll(**cur) + 1);
          auto r = store_->cas("app", "c", **cur, next);
          ASSERT_TRUE(r.ok());
          if (*r) break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(value("c"), absl::StrCat(kThreads * kEach));
}

TEST_F(KvAtomicTest, StatsCountStoredCasAndIncrAsSets) {
  KvStats before = store_->stats();
  ASSERT_TRUE(*store_->cas("app", "k", std::nullopt, "v"));
  ASSERT_FALSE(*store_->cas("app", "k", std::nullopt, "w"));
  ASSERT_TRUE(store_->incr("app", "n", 1).ok());
  KvStats after = store_->stats();
  EXPECT_EQ(after.sets - before.sets, 2u);
}

}  // namespace
}  // namespace waverless::kv
