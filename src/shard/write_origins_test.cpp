#include "shard/write_origins.h"

#include <gtest/gtest.h>

namespace waverless::shard {
namespace {

TEST(WriteOrigins, NamesTheNodeMostWritesEnteredAtOnceTheWindowCloses) {
  WriteOrigins o;
  o.roll(0, 2000);
  for (int i = 0; i < 90; ++i) o.note(2);
  for (int i = 0; i < 10; ++i) o.note(3);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), std::nullopt) << "the window is still open";
  o.roll(1999, 2000);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), std::nullopt);
  o.roll(2000, 2000);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), 2u);
  EXPECT_EQ(o.dominant(40, 0.95), std::nullopt);
  EXPECT_EQ(o.dominant(101, 0.5), std::nullopt) << "too few writes to judge";
}

TEST(WriteOrigins, WritesSpreadOverNodesHaveNoDominantOne) {
  WriteOrigins o;
  o.roll(0, 1000);
  for (int i = 0; i < 300; ++i) o.note(1 + i % 3);
  o.roll(1000, 1000);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), std::nullopt);
  EXPECT_EQ(o.dominant(40, 1.0 / 3), 1u);
}

TEST(WriteOrigins, AQuietWindowForgetsTheLastOne) {
  WriteOrigins o;
  o.roll(0, 1000);
  for (int i = 0; i < 100; ++i) o.note(4);
  o.roll(1000, 1000);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), 4u);
  o.roll(2000, 1000);
  EXPECT_EQ(o.dominant(40, 2.0 / 3), std::nullopt) << "no writes since: nothing to follow";
}

TEST(WriteOrigins, ARestartForgetsWhatWasCountedBefore) {
  WriteOrigins o;
  o.roll(0, 1000);
  EXPECT_FALSE(o.judged());
  for (int i = 0; i < 100; ++i) o.note(4);
  o.roll(1000, 1000);
  EXPECT_TRUE(o.judged());
  o.restart(1500);
  EXPECT_FALSE(o.judged());
  EXPECT_EQ(o.dominant(40, 2.0 / 3), std::nullopt);
  for (int i = 0; i < 100; ++i) o.note(5);
  o.roll(2000, 1000);
  EXPECT_FALSE(o.judged()) << "the window started at the restart";
  o.roll(2500, 1000);
  EXPECT_TRUE(o.judged());
  EXPECT_EQ(o.dominant(40, 2.0 / 3), 5u);
}

}  // namespace
}  // namespace waverless::shard
