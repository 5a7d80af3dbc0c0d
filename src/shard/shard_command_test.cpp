// The entry format and the state machine step, against a real RocksDB store in a temp dir.
#include "shard/shard_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "kv/kv_store.h"

namespace waverless::shard {
namespace {

namespace fs = std::filesystem;

class ShardStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("shard_state_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = kv::KvStore::open({.dir = dir_});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::vector<ProposalResult> apply(uint64_t index, std::vector<Proposal> proposals,
                                    uint32_t group = 7) {
    std::vector<ProposalResult> results;
    Entry e{1, std::move(proposals)};
    EXPECT_TRUE(applyEntry(*store_, group, index, e, results).ok());
    return results;
  }
  std::optional<std::string> get(const std::string& key, uint32_t group = 7) {
    auto v = store_->shardGet(group, "app", key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }

  fs::path dir_;
  std::unique_ptr<kv::KvStore> store_;
};

KvOp set(std::string key, std::string value) { return {OpKind::kSet, "app", key, value}; }
KvOp cas(std::string key, std::optional<std::string> expected, std::string value) {
  KvOp op{OpKind::kCas, "app", key, value};
  op.expected = std::move(expected);
  return op;
}
KvOp incr(std::string key, int64_t delta) {
  KvOp op{OpKind::kIncr, "app", key};
  op.delta = delta;
  return op;
}

TEST(ShardCommand, RoundTripsEveryOpKind) {
  Entry e{42,
          {{1, {set("a", "1"), {OpKind::kDelete, "app", "b"}}},
           {2, {cas("c", std::nullopt, "x"), cas("c", "x", "y"), incr("n", -5)}}}};
  std::optional<Entry> back = decodeEntry(encodeEntry(e));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, e);
}

TEST(ShardCommand, RefusesMalformedBytes) {
  std::string good = encodeEntry(Entry{1, {{1, {set("k", "v")}}}});
  EXPECT_FALSE(decodeEntry("").has_value());
  EXPECT_FALSE(decodeEntry(good.substr(0, good.size() - 9)).has_value());
  EXPECT_EQ(good.size() % 8, 0u) << "libraft needs 8-byte multiples";
  EXPECT_FALSE(decodeEntry(good + "x").has_value());
  std::string bad_kind = good;
  bad_kind[1 + 8 + 8 + 8 + 8] = 9;  // the op kind byte
  EXPECT_FALSE(decodeEntry(bad_kind).has_value());
  // A huge count must not allocate.
  std::string huge = good;
  for (int i = 0; i < 8; ++i) huge[1 + 8 + i] = static_cast<char>(0xff);
  EXPECT_FALSE(decodeEntry(huge).has_value());
}

TEST_F(ShardStateTest, CasAndIncrDecideOnTheCurrentValue) {
  auto r = apply(1, {{1, {cas("k", std::nullopt, "a")}},  // absent: swaps
                     {2, {cas("k", std::nullopt, "b")}},  // now present: refused
                     {3, {cas("k", "a", "c")}},           // sees proposal 1's write
                     {4, {incr("n", 5)}},
                     {5, {incr("n", -7)}}});
  ASSERT_EQ(r.size(), 5u);
  EXPECT_TRUE(r[0].status.ok());
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r[1].value, "a");
  EXPECT_TRUE(r[2].status.ok()) << r[2].status;
  EXPECT_EQ(r[3].value, "5");
  EXPECT_EQ(r[4].value, "-2");
  EXPECT_EQ(get("k"), "c");
  EXPECT_EQ(get("n"), "-2");
  EXPECT_EQ(*appliedIndex(*store_, 7), 1u);
}

TEST_F(ShardStateTest, AFailedOpUndoesItsWholeProposalOnly) {
  apply(1, {{1, {set("text", "hello"), set("max", "9223372036854775807")}}});
  auto r = apply(2, {{1, {set("x", "1"), incr("text", 1)}},  // not a number: nothing of it
                     {2, {incr("max", 1)}},                  // overflow
                     {3, {set("y", "2")}}});
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(r[2].status.ok());
  EXPECT_EQ(get("x"), std::nullopt);
  EXPECT_EQ(get("max"), "9223372036854775807");
  EXPECT_EQ(get("y"), "2");
}

TEST_F(ShardStateTest, GroupsAreSeparateRangesThatDumpAndLoad) {
  apply(1, {{1, {set("a", "1"), set("b", "2")}}}, 7);
  apply(1, {{1, {set("a", "other")}}}, 8);
  ASSERT_TRUE(store_->set("app", "a", "local").ok());
  absl::StatusOr<std::string> dump = store_->shardDump(7);
  ASSERT_TRUE(dump.ok());
  ASSERT_TRUE(store_->shardDrop(7).ok());
  EXPECT_EQ(get("a", 7), std::nullopt);
  EXPECT_EQ(get("a", 8), "other");
  EXPECT_EQ(*store_->get("app", "a"), "local");
  ASSERT_TRUE(store_->shardLoad(7, *dump).ok());
  EXPECT_EQ(get("b", 7), "2");
  EXPECT_EQ(*appliedIndex(*store_, 7), 1u);
  // A truncated dump changes nothing.
  EXPECT_EQ(store_->shardLoad(7, dump->substr(0, dump->size() - 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(get("b", 7), "2");
  auto scan = store_->shardScan(7, "app", "", 10);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->size(), 2u);
}

TriggerRecord record(std::string id, std::string key) {
  return TriggerRecord{id, "app", "mark", key, 3, "r1", 2500, 2};
}

TEST(ShardCommand, TriggerRecordsRoundTripInEntries) {
  TriggerRecord t = record("3-1a-r00000001.2", "ev_x");
  std::optional<TriggerRecord> back = decodeTrigger(encodeTrigger(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, t);
  EXPECT_FALSE(decodeTrigger(encodeTrigger(t) + "x").has_value());
  EXPECT_FALSE(decodeTrigger(encodeTrigger(t).substr(1)).has_value());
  Entry e{1, {{1, {set("ev_x", "v"), triggerOp(t)}}, {2, {triggerDoneOp(t)}}}};
  std::optional<Entry> decoded = decodeEntry(encodeEntry(e));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, e);
  EXPECT_EQ(decoded->proposals[0].ops[1].kind, OpKind::kTrigger);
  EXPECT_EQ(decoded->proposals[1].ops[0].value, t.id);
}

TEST_F(ShardStateTest, ATriggerRecordCommitsWithItsWriteAndDoneRetiresIt) {
  TriggerRecord a = record("n1.a", "ev_a"), b = record("n1.b", "ev_b");
  apply(1, {{1, {set("ev_a", "1"), triggerOp(a)}}, {2, {set("ev_b", "2"), triggerOp(b)}}});
  EXPECT_EQ(get("ev_a"), "1");
  auto pending = pendingTriggers(*store_, 7, 10);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_THAT(*pending, ::testing::ElementsAre(a, b));
  // Records are internal: the app's own scan does not list them.
  EXPECT_EQ(store_->shardScan(7, "app", "", 10)->size(), 2u);
  EXPECT_EQ(pendingTriggers(*store_, 7, 1)->size(), 1u);

  apply(2, {{1, {triggerDoneOp(a)}}, {2, {triggerDoneOp(a)}}});  // twice: harmless
  EXPECT_THAT(*pendingTriggers(*store_, 7, 10), ::testing::ElementsAre(b));
  EXPECT_TRUE(pendingTriggers(*store_, 8, 10)->empty());
}

TEST_F(ShardStateTest, ACasThatFailsCommitsNoTriggerRecord) {
  apply(1, {{1, {set("k", "now")}}});
  auto r = apply(2, {{1, {cas("k", "before", "after"), triggerOp(record("id1", "k"))}},
                     {2, {incr("k", 1), triggerOp(record("id2", "k"))}}});
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(pendingTriggers(*store_, 7, 10)->empty());
}

TEST_F(ShardStateTest, AMalformedTriggerRecordFailsItsProposal) {
  KvOp bad = triggerOp(record("id", "k"));
  bad.value = "garbage";
  KvOp other_key = triggerOp(record("id", "elsewhere"));
  other_key.key = "k";  // the record names a key of another group
  auto r = apply(1, {{1, {set("k", "v"), bad}}, {2, {set("k", "w"), other_key}}});
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(get("k"), std::nullopt);
  EXPECT_TRUE(pendingTriggers(*store_, 7, 10)->empty());
}

TEST_F(ShardStateTest, ARaftSnapshotCarriesPendingTriggerRecords) {
  TriggerRecord t = record("n2.x", "ev");
  apply(1, {{1, {set("ev", "1"), triggerOp(t)}}});
  absl::StatusOr<std::string> dump = store_->shardDump(7);
  ASSERT_TRUE(dump.ok());
  ASSERT_TRUE(store_->shardDrop(7).ok());
  EXPECT_TRUE(pendingTriggers(*store_, 7, 10)->empty());
  ASSERT_TRUE(store_->shardLoad(7, *dump).ok());
  EXPECT_THAT(*pendingTriggers(*store_, 7, 10), ::testing::ElementsAre(t));
}

}  // namespace
}  // namespace waverless::shard
