#include "meta/raft_command.h"

#include <gtest/gtest.h>

namespace waverless::meta {
namespace {

TEST(RaftCommandTest, ChangesRoundTripPaddedToEightBytes) {
  for (size_t n : {0, 1, 7, 8, 9, 300}) {
    std::string key(n, 'k'), value(n * 3 + 1, '\0');
    std::string put = encodeChange(key, value);
    EXPECT_EQ(put.size() % 8, 0u) << n;
    auto c = decodeChange(put);
    ASSERT_TRUE(c.has_value()) << n;
    EXPECT_EQ(c->key, key);
    EXPECT_EQ(c->value, value);
    auto erase = decodeChange(encodeChange(key, std::nullopt));
    ASSERT_TRUE(erase.has_value());
    EXPECT_EQ(erase->key, key);
    EXPECT_FALSE(erase->value.has_value());
  }
}

TEST(RaftCommandTest, MalformedEntriesAreRefused) {
  std::string good = encodeChange("app/x", std::string("v12"));  // 17 bytes + 7 of padding
  EXPECT_FALSE(decodeChange(good.substr(0, 5)).has_value());     // cut short
  std::string bad_op = good;
  bad_op[0] = 9;
  EXPECT_FALSE(decodeChange(bad_op).has_value());
  std::string trailing = good;
  trailing.back() = 'x';  // padding must be zeros
  EXPECT_FALSE(decodeChange(trailing).has_value());
  EXPECT_FALSE(decodeChange(good + std::string(8, '\0')).has_value());  // more than padding
}

TEST(RaftCommandTest, SnapshotRoundTripsAndRejectsDamage) {
  std::map<std::string, std::string> m = {{"app/a", "v1"}, {"app/b", ""}, {"", "x"}};
  std::string snap = encodeMap(m);
  auto back = decodeMap(snap);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(decodeMap(snap.substr(0, snap.size() - 1)).has_value());
  EXPECT_FALSE(decodeMap(snap + "z").has_value());
  std::string wrong_magic = snap;
  wrong_magic[0] ^= 1;
  EXPECT_FALSE(decodeMap(wrong_magic).has_value());
}

}  // namespace
}  // namespace waverless::meta
