#include "meta/app_record.h"

#include <gtest/gtest.h>

namespace waverless::meta {
namespace {

TEST(AppRecord, KeyRoundTrips) {
  EXPECT_EQ(appRecordKey("word_count"), "app/word_count");
  EXPECT_EQ(appOfRecordKey(appRecordKey("word_count")), "word_count");
}

TEST(AppRecord, OtherKeysAreNotAppRecords) {
  EXPECT_EQ(appOfRecordKey("app/"), std::nullopt);
  EXPECT_EQ(appOfRecordKey("apps/x"), std::nullopt);
  EXPECT_EQ(appOfRecordKey("shard/3"), std::nullopt);
  EXPECT_EQ(appOfRecordKey(""), std::nullopt);
}

TEST(AppRecord, RecordedAppsTakesOnlyAppRecords) {
  std::map<std::string, std::string> map = {{"a", "1"},       {"app/", "junk"}, {"app/hello", "v1"},
                                            {"app/wc", "v2"}, {"apq", "3"},     {"shard/1", "x"}};
  auto apps = recordedApps(map);
  EXPECT_EQ(apps, (std::map<std::string, std::string>{{"hello", "v1"}, {"wc", "v2"}}));
  EXPECT_TRUE(recordedApps({}).empty());
}

}  // namespace
}  // namespace waverless::meta
