#include "auth/auth.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace waverless::auth {
namespace {

namespace fs = std::filesystem;

fs::path tempDir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("wl-auth-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(AuthDigest, HexRoundTripsAndRejectsJunk) {
  Digest d = digestOf("secret");
  EXPECT_EQ(hexOf(d), "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
  EXPECT_EQ(digestFromHex(hexOf(d)), d);
  EXPECT_EQ(digestFromHex(hexOf(d) + "\n"), d);
  EXPECT_FALSE(digestFromHex("abc"));
  EXPECT_FALSE(digestFromHex(std::string(64, 'g')));
}

TEST(AuthCompare, MatchesOnlyTheSecret) {
  Digest d = digestOf("correct horse");
  EXPECT_TRUE(matches("correct horse", d));
  EXPECT_FALSE(matches("correct hors", d));
  EXPECT_FALSE(matches("correct horse ", d));
  EXPECT_FALSE(matches("", d));
  EXPECT_FALSE(matches(std::string(1 << 16, 'x'), d));
  EXPECT_TRUE(digestsEqual(d, digestOf("correct horse")));
  Digest other = d;
  other[31] ^= 1;
  EXPECT_FALSE(digestsEqual(d, other));
}

TEST(AuthSecret, IsFreshHex) {
  auto a = newSecret(), b = newSecret();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(*a, *b);
}

TEST(AuthBearer, ParsesTheHeader) {
  EXPECT_EQ(bearerCredential("Bearer abc"), "abc");
  EXPECT_EQ(bearerCredential("bearer  abc "), "abc");
  EXPECT_EQ(bearerCredential("BEARER\tabc"), "abc");
  EXPECT_FALSE(bearerCredential(""));
  EXPECT_FALSE(bearerCredential("Basic abc"));
  EXPECT_FALSE(bearerCredential("Bearerabc"));
  Digest d = digestOf("tok");
  EXPECT_EQ(checkBearer("", d), Check::kMissing);
  EXPECT_EQ(checkBearer("Bearer ", d), Check::kMissing);
  EXPECT_EQ(checkBearer("Basic dG9r", d), Check::kMissing);
  EXPECT_EQ(checkBearer("Bearer tok", d), Check::kOk);
  EXPECT_EQ(checkBearer("Bearer tok2", d), Check::kWrong);
}

TEST(AdminTokenFile, CreatedOnceWithMode0600ThenRead) {
  fs::path dir = tempDir("create");
  fs::path path = dir / "sub" / "admin.token";
  ::umask(0);  // even with a permissive umask the file is private
  bool created = false;
  auto first = AdminToken::loadOrCreate(path, &created);
  ::umask(022);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(created);
  EXPECT_EQ(first->secret().size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  auto second = AdminToken::loadOrCreate(path, &created);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(created);
  EXPECT_EQ(second->secret(), first->secret());
  EXPECT_TRUE(digestsEqual(second->digest(), digestOf(first->secret())));
  EXPECT_EQ(AdminToken::read(path).value_or(""), first->secret());
  fs::remove_all(dir);
}

TEST(AdminTokenFile, UsesAGivenFileAndRejectsABadOne) {
  fs::path dir = tempDir("given");
  { std::ofstream(dir / "shared.token") << "  cluster-wide-token\n"; }
  bool created = true;
  auto t = AdminToken::loadOrCreate(dir / "shared.token", &created);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(created);
  EXPECT_EQ(t->secret(), "cluster-wide-token");

  { std::ofstream(dir / "empty.token") << "\n"; }
  auto empty = AdminToken::loadOrCreate(dir / "empty.token");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("empty.token"), std::string::npos);

  EXPECT_EQ(AdminToken::read(dir / "absent.token").status().code(), absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace waverless::auth
