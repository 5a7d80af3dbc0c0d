// `durability:` in app.yaml (durability_spec.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "app/app_manifest.h"

namespace waverless::app {
namespace {

constexpr std::string_view kFns = "fns:\n  f:\n    event: [http_app]\n";

TEST(AppManifestDurability, ReplicatedUnlessARuleSaysLocal) {
  auto m = parseManifest(std::string(kFns) + R"(durability:
  scratch_{}: local
  "{}_keep": replicated
  any_{}: local
)",
                         "a");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->durability.size(), 3u);
  EXPECT_EQ(m->durabilityOf("scratch_1"), KeyDurability::kLocal);
  EXPECT_EQ(m->durabilityOf("x_keep"), KeyDurability::kReplicated);
  EXPECT_EQ(m->durabilityOf("other"), KeyDurability::kReplicated);
  EXPECT_EQ(m->durability[2].line, 7);
  auto none = parseManifest(kFns, "a");
  EXPECT_EQ(none->durabilityOf("scratch_1"), KeyDurability::kReplicated);
}

TEST(AppManifestDurability, BadRulesNameTheirLine) {
  auto bad = parseManifest(std::string(kFns) + "durability:\n  k_{}: fast\n", "a");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith(
                  "app.yaml:5: durability.k_{}: \"fast\" is not one of: replicated, local"));
  auto pattern = parseManifest(std::string(kFns) + "durability:\n  \"k_{\": local\n", "a");
  ASSERT_FALSE(pattern.ok());
  EXPECT_THAT(std::string(pattern.status().message()),
              ::testing::HasSubstr("app.yaml:5: durability.k_{"));
  auto list = parseManifest(std::string(kFns) + "durability: [local]\n", "a");
  EXPECT_FALSE(list.ok());
}

}  // namespace
}  // namespace waverless::app
