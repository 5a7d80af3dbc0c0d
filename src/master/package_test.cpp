#include "master/package.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

namespace waverless::master {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("wl-package-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    fs::create_directories(root_ / "out");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string packOf(const std::map<std::string, size_t>& files) {
    for (const auto& [name, size] : files) {
      fs::create_directories((root_ / "src" / name).parent_path());
      std::ofstream(root_ / "src" / name) << std::string(size, 'x');
    }
    auto tar = packTree(root_ / "src");
    EXPECT_TRUE(tar.ok()) << tar.status();
    return tar.ok() ? *tar : "";
  }
  fs::path root_;
};

TEST_F(PackageTest, RoundTrip) {
  std::string tar = packOf({{"app.yaml", 10}, {"files/a.txt", 3}});
  ASSERT_TRUE(extractTar(tar, root_ / "out").ok());
  EXPECT_EQ(fs::file_size(root_ / "out/files/a.txt"), 3u);
}

TEST_F(PackageTest, ContentsPastTheByteLimitAreRefused) {
  std::string tar = packOf({{"app.yaml", 10}, {"files/big", 3 << 20}});
  absl::Status st = extractTar(tar, root_ / "out", UnpackLimits{.max_bytes = 1 << 20});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("expand past 1 MiB (at 'files/big')"));
  EXPECT_LE(fs::exists(root_ / "out/files/big") ? fs::file_size(root_ / "out/files/big") : 0,
            size_t{1} << 20);
}

TEST_F(PackageTest, TooManyEntriesAreRefused) {
  std::map<std::string, size_t> many;
  for (int i = 0; i < 20; ++i) many["files/f" + std::to_string(i)] = 1;
  absl::Status st = extractTar(packOf(many), root_ / "out", UnpackLimits{.max_entries = 10});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("more than 10 entries"));
}

TEST_F(PackageTest, GarbageIsAClearError) {
  absl::Status st = extractTar("not a tar at all", root_ / "out");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("app package"));
}

}  // namespace
}  // namespace waverless::master
