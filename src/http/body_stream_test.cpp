#include "http/body_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/body_stream_testing.h"

namespace waverless::http {
namespace {

std::string readAll(BodyStream& s, size_t cap) {
  std::string out;
  std::string buf(cap, '\0');
  for (;;) {
    auto r = s.tryRead(buf.data(), cap);
    if (r.kind != BodyStream::ReadResult::kData) {
      EXPECT_EQ(r.kind, BodyStream::ReadResult::kEnd);
      return out;
    }
    out.append(buf.data(), r.bytes);
  }
}

TEST(BodyStreamTest, CompleteBodyReadsInPiecesThenEnds) {
  auto s = BodyStream::ofString("hello, world");
  EXPECT_TRUE(s->complete());
  EXPECT_EQ(readAll(*s, 5), "hello, world");
  bool called = false;
  s->onReadable([&] { called = true; });  // at the end: at once
  EXPECT_TRUE(called);
}

TEST(BodyStreamTest, ReaderIsWokenByTheNextPieceAndByTheEnd) {
  BodyStream s(6);
  char buf[8];
  EXPECT_EQ(s.tryRead(buf, sizeof buf).kind, BodyStream::ReadResult::kWait);
  int wakes = 0;
  s.onReadable([&] { ++wakes; });
  EXPECT_EQ(wakes, 0);
  s.push("abc");
  EXPECT_EQ(wakes, 1);
  auto r = s.tryRead(buf, sizeof buf);
  ASSERT_EQ(r.kind, BodyStream::ReadResult::kData);
  EXPECT_EQ(std::string(buf, r.bytes), "abc");
  s.onReadable([&] { ++wakes; });
  s.push("def");
  s.finish();
  EXPECT_EQ(wakes, 2);
  EXPECT_EQ(readAll(s, 2), "def");
}

TEST(BodyStreamTest, ProducerIsHeldAtTheHighWaterMarkUntilTheReaderDrains) {
  BodyStream s(100, /*high_water=*/10);
  bool writable = false;
  EXPECT_TRUE(s.wantsMore([&] { writable = true; }));
  s.push(std::string(12, 'x'));
  EXPECT_FALSE(s.wantsMore([&] { writable = true; }));
  char buf[4];
  s.tryRead(buf, 2);  // 10 left: still at the mark
  EXPECT_FALSE(writable);
  s.tryRead(buf, 4);  // 6 left
  EXPECT_TRUE(writable);
}

TEST(BodyStreamTest, AbandonedStreamDropsPiecesAndReleasesTheProducer) {
  BodyStream s(100, 4);
  bool writable = false;
  s.push("12345");
  EXPECT_FALSE(s.wantsMore([&] { writable = true; }));
  s.abandon();
  EXPECT_TRUE(writable);
  s.push("more");
  EXPECT_TRUE(s.wantsMore([] {}));
}

TEST(BodyStreamTest, FailureComesAfterTheBytesThatDidArrive) {
  BodyStream s(100);
  s.push("part");
  bool woke = false;
  s.fail(absl::UnavailableError("client went away"));
  char buf[16];
  auto r = s.tryRead(buf, sizeof buf);
  ASSERT_EQ(r.kind, BodyStream::ReadResult::kData);
  EXPECT_EQ(r.bytes, 4u);
  r = s.tryRead(buf, sizeof buf);
  EXPECT_EQ(r.kind, BodyStream::ReadResult::kError);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kUnavailable);
  s.onReadable([&] { woke = true; });
  EXPECT_TRUE(woke);
}

// A producer thread and a consumer thread, the consumer waiting through
// onReadable as a parked fiber would: every byte arrives once, in order.
TEST(BodyStreamTest, ConcurrentProducerAndConsumerAgreeOnEveryByte) {
  std::string body(3 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131 + i / 7);
  BodyStream s(body.size(), 64 * 1024);
  std::thread producer([&] {
    size_t at = 0, step = 1;
    while (at < body.size()) {
      testing::OneShot writable;
      if (!s.wantsMore(writable.callback())) writable.wait();
      size_t n = std::min(body.size() - at, step);
      s.push(std::string_view(body).substr(at, n));
      at += n;
      step = step * 3 % 70001 + 1;
    }
    s.finish();
  });
  std::string got = testing::drainBlocking(s);
  producer.join();
  EXPECT_TRUE(got == body) << got.size() << " of " << body.size() << " bytes";
}

TEST(BodyStreamTest, ReadAllCollectsPiecesArrivingLaterOrTheError) {
  auto s = std::make_shared<BodyStream>(200000);
  absl::StatusOr<std::string> got = absl::UnknownError("not called");
  BodyStream::readAll(s, [&](absl::StatusOr<std::string> r) { got = std::move(r); });
  s->push(std::string(150000, 'a'));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnknown);  // not yet
  s->push(std::string(50000, 'b'));
  s->finish();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::string(150000, 'a') + std::string(50000, 'b'));

  auto cut = std::make_shared<BodyStream>(10);
  BodyStream::readAll(cut, [&](absl::StatusOr<std::string> r) { got = std::move(r); });
  cut->push("abc");
  cut->fail(absl::UnavailableError("gone"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace waverless::http
