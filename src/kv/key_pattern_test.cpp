#include "kv/key_pattern.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace waverless::kv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

KeyPattern mustParse(std::string_view text) {
  absl::StatusOr<KeyPattern> p = KeyPattern::parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status();
  return *std::move(p);
}

TEST(KeyPatternTest, LiteralMatchesOnlyItself) {
  KeyPattern p = mustParse("config/main");
  EXPECT_EQ(p.placeholders(), 0u);
  EXPECT_EQ(p.text(), "config/main");
  EXPECT_TRUE(p.matches("config/main"));
  EXPECT_FALSE(p.matches("config/main2"));
  EXPECT_FALSE(p.matches("config/mai"));
  EXPECT_FALSE(p.matches(""));
  ASSERT_TRUE(p.bind("config/main").has_value());
  EXPECT_TRUE(p.bind("config/main")->empty());
  EXPECT_FALSE(p.bind("other").has_value());
}

TEST(KeyPatternTest, OnePlaceholder) {
  KeyPattern p = mustParse("img/{}.png");
  EXPECT_EQ(p.placeholders(), 1u);
  EXPECT_TRUE(p.matches("img/cat.png"));
  // '.' is a segment character, so the segment may contain it.
  EXPECT_THAT(*p.bind("img/cat.small.png"), ElementsAre("cat.small"));
  EXPECT_FALSE(p.matches("img/cat.jpg"));
  EXPECT_FALSE(p.matches("img/.png"));  // empty segment
  EXPECT_FALSE(p.matches("img/a/b.png"));
  EXPECT_FALSE(p.matches("xmg/cat.png"));
}

TEST(KeyPatternTest, PlaceholderAtEitherEnd) {
  KeyPattern lead = mustParse("{}:count");
  EXPECT_THAT(*lead.bind("user-42:count"), ElementsAre("user-42"));
  EXPECT_FALSE(lead.matches(":count"));
  KeyPattern whole = mustParse("{}");
  EXPECT_THAT(*whole.bind("A.b_c-9"), ElementsAre("A.b_c-9"));
  EXPECT_FALSE(whole.matches(""));
  EXPECT_FALSE(whole.matches("a b"));
}

TEST(KeyPatternTest, SeveralPlaceholders) {
  KeyPattern p = mustParse("job/{}/part/{}/out");
  EXPECT_EQ(p.placeholders(), 2u);
  EXPECT_THAT(*p.bind("job/j1/part/007/out"), ElementsAre("j1", "007"));
  EXPECT_FALSE(p.matches("job/j1/part//out"));
  EXPECT_FALSE(p.matches("job/j1/part/007/out/"));
  EXPECT_FALSE(p.matches("job/j/1/part/007/out"));
}

TEST(KeyPatternTest, UnderscoreInsideSegmentsBacktracks) {
  KeyPattern p = mustParse("wordcount_slice_{}_{}");
  EXPECT_TRUE(p.matches("wordcount_slice_ab_3"));
  EXPECT_THAT(*p.bind("wordcount_slice_ab_3"), ElementsAre("ab", "3"));
  // Several splits match; the earlier placeholder takes the shortest segment.
  EXPECT_TRUE(p.matches("wordcount_slice_a_b_c"));
  EXPECT_THAT(*p.bind("wordcount_slice_a_b_c"), ElementsAre("a", "b_c"));
  // The only split needs the first segment to swallow an '_'.
  KeyPattern q = mustParse("{}_x");
  EXPECT_THAT(*q.bind("a_b_x"), ElementsAre("a_b"));
  EXPECT_FALSE(p.matches("wordcount_slice_ab"));
  EXPECT_FALSE(p.matches("wordcount_slice_ab_"));
  EXPECT_FALSE(p.matches("wordcount_slice__3"));
}

TEST(KeyPatternTest, GreedyFirstSplitWouldFail) {
  // A greedy first segment ("a_b_c_d") leaves nothing for "_{}_end"; only backtracking finds it.
  KeyPattern p = mustParse("{}_{}_end");
  EXPECT_THAT(*p.bind("a_b_c_d_end"), ElementsAre("a", "b_c_d"));
  EXPECT_FALSE(p.matches("a_end"));
}

TEST(KeyPatternTest, ManyPlaceholdersOnLongKeyIsFast) {
  // Without memoisation this is exponential in the number of placeholders.
  KeyPattern p = mustParse("{}_{}_{}_{}_{}_{}_{}_{}_{}_{}/");
  std::string key;
  for (int i = 0; i < 400; ++i) key += "a_";
  key += "a";  // no trailing '/': every split must be rejected
  EXPECT_FALSE(p.matches(key));
  EXPECT_TRUE(p.matches(key + "/"));
}

TEST(KeyPatternTest, CharactersOutsideSegmentSetAreRejected) {
  KeyPattern p = mustParse("k/{}");
  for (const std::string& bad :
       std::vector<std::string>{"k/a b", "k/a/b", "k/a:b", "k/a+b", "k/a\xc3\xa9",
                                std::string("k/a\0b", 5), "k/a{", "k/a}"}) {
    EXPECT_FALSE(p.matches(bad)) << bad;
  }
  for (const char* good : {"k/Az09", "k/a.b", "k/a_b", "k/a-b", "k/..."}) {
    EXPECT_TRUE(p.matches(good)) << good;
  }
  EXPECT_TRUE(isSegmentChar('_'));
  EXPECT_FALSE(isSegmentChar('/'));
}

TEST(KeyPatternTest, ParseErrors) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {"a{", "unbalanced '{'"},
                                         {"a}", "unbalanced '}'"},
                                         {"a}{", "unbalanced '}'"},
                                         {"a{x}", "followed directly by '}'"},
                                         {"a{{}}", "followed directly by '}'"},
                                         {"{}{}", "adjacent"},
                                         {"a{}{}b", "adjacent"},
                                         {"a\tb", "printable"},
                                         {"a\xc3\xa9", "printable"}}) {
    absl::StatusOr<KeyPattern> p = KeyPattern::parse(c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.message)) << c.text;
  }
  // Literals may hold any printable ASCII but braces.
  EXPECT_TRUE(KeyPattern::parse("a b/c:d+{}~!").ok());
}

TEST(KeyPatternTest, OverlapsWhenSomeKeyMatchesBoth) {
  auto overlaps = [](std::string_view a, std::string_view b) {
    bool ab = mustParse(a).overlaps(mustParse(b));
    EXPECT_EQ(ab, mustParse(b).overlaps(mustParse(a))) << "not symmetric: " << a << " vs " << b;
    return ab;
  };
  EXPECT_TRUE(overlaps("a_{}", "{}_b"));  // "a_x_b"
  EXPECT_TRUE(overlaps("a{}c", "ab{}"));  // "abc"
  EXPECT_TRUE(overlaps("{}", "abc"));
  EXPECT_TRUE(overlaps("{}/x", "{}/{}"));
  EXPECT_TRUE(overlaps("k", "k"));
  EXPECT_TRUE(overlaps("wordcount_slice_{}_{}", "wordcount_{}"));
  EXPECT_TRUE(overlaps("{}_{}_{}", "{}"));  // "a_b_c"

  EXPECT_FALSE(overlaps("x{}", "y{}"));
  EXPECT_FALSE(overlaps("{}", "a/b"));  // '/' is never in a segment
  EXPECT_FALSE(overlaps("a{}", "a"));   // the segment cannot be empty
  EXPECT_FALSE(overlaps("img/{}.png", "img/{}.jpg"));
  EXPECT_FALSE(overlaps("{}", "{}/{}"));
  EXPECT_FALSE(overlaps("k", "K"));
  EXPECT_FALSE(overlaps("{}.txt", "{}.{}.bin"));
  EXPECT_FALSE(overlaps("a/{}", "{}/b/{}"));  // one '/' against two
}

// Checks matches(), bind() and overlaps() against brute force over every short key.
TEST(KeyPatternTest, AgreesWithBruteForceOnShortKeys) {
  const std::vector<std::string> texts = {"a_{}", "{}_b",  "{}",   "{}/{}", "a{}",  "{}_{}",
                                          "_",    "{}a",   "b{}_", "a/{}",  "{}/a", "{}_{}_{}",
                                          "ab",   "{}b{}", "/{}/", "a_b"};
  std::vector<KeyPattern> patterns;
  for (const std::string& t : texts) patterns.push_back(mustParse(t));
  std::vector<std::string> keys = {""};
  for (size_t begin = 0, len = 1; len <= 6; ++len) {
    size_t end = keys.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : std::string("ab_/")) keys.push_back(keys[i] + c);
    }
    begin = end;
  }
  std::vector<std::vector<bool>> hit(patterns.size(), std::vector<bool>(keys.size()));
  for (size_t p = 0; p < patterns.size(); ++p) {
    for (size_t k = 0; k < keys.size(); ++k) {
      hit[p][k] = patterns[p].matches(keys[k]);
      std::optional<std::vector<std::string>> b = patterns[p].bind(keys[k]);
      ASSERT_EQ(b.has_value(), hit[p][k]) << texts[p] << " vs " << keys[k];
      if (!b) continue;
      // Substituting the bound segments back into the pattern gives the key.
      std::string rebuilt = texts[p];
      for (const std::string& seg : *b) rebuilt.replace(rebuilt.find("{}"), 2, seg);
      EXPECT_EQ(rebuilt, keys[k]) << texts[p];
    }
  }
  for (size_t p = 0; p < patterns.size(); ++p) {
    for (size_t q = 0; q < patterns.size(); ++q) {
      bool witnessed = false;
      for (size_t k = 0; k < keys.size() && !witnessed; ++k) witnessed = hit[p][k] && hit[q][k];
      // Every pattern pair here that overlaps at all does so on a key of at most 6 characters.
      EXPECT_EQ(patterns[p].overlaps(patterns[q]), witnessed) << texts[p] << " vs " << texts[q];
    }
  }
}

}  // namespace
}  // namespace waverless::kv
