#include "http/body_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace waverless::http {

BodyStream::BodyStream(uint64_t length, size_t high_water)
    : length_(length), high_water_(std::max<size_t>(high_water, 1)) {}

std::shared_ptr<BodyStream> BodyStream::ofString(std::string body) {
  auto s = std::make_shared<BodyStream>(body.size(), std::max<size_t>(body.size(), 1));
  if (!body.empty()) {
    s->buffered_ = body.size();
    s->pieces_.push_back(std::move(body));
  }
  s->finished_ = true;
  return s;
}

BodyStream::ReadResult BodyStream::tryRead(char* dst, size_t cap) {
  absl::AnyInvocable<void() &&> writer;
  ReadResult out{ReadResult::kWait};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffered_ == 0) {
      if (!error_.ok()) return {ReadResult::kError, 0, error_};
      return {finished_ ? ReadResult::kEnd : ReadResult::kWait};
    }
    out.kind = ReadResult::kData;
    while (out.bytes < cap && !pieces_.empty()) {
      const std::string& front = pieces_.front();
      size_t n = std::min(cap - out.bytes, front.size() - front_offset_);
      memcpy(dst + out.bytes, front.data() + front_offset_, n);
      out.bytes += n;
      front_offset_ += n;
      if (front_offset_ == front.size()) {
        pieces_.pop_front();
        front_offset_ = 0;
      }
    }
    buffered_ -= out.bytes;
    if (writer_ && buffered_ < high_water_) writer = std::move(writer_);
  }
  if (writer) std::move(writer)();
  return out;
}

void BodyStream::onReadable(absl::AnyInvocable<void() &&> ready) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffered_ == 0 && !finished_ && error_.ok()) {
      reader_ = std::move(ready);
      return;
    }
  }
  std::move(ready)();
}

namespace {

struct Collector : std::enable_shared_from_this<Collector> {
  std::shared_ptr<BodyStream> stream;
  std::string body;
  absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done;

  void pump() {
    for (;;) {
      char buf[65536];
      auto r = stream->tryRead(buf, sizeof buf);
      switch (r.kind) {
        case BodyStream::ReadResult::kData:
          body.append(buf, r.bytes);
          continue;
        case BodyStream::ReadResult::kEnd:
          std::move(done)(std::move(body));
          return;
        case BodyStream::ReadResult::kError:
          std::move(done)(r.error);
          return;
        case BodyStream::ReadResult::kWait:
          stream->onReadable([self = shared_from_this()] { self->pump(); });
          return;
      }
    }
  }
};

}  // namespace

void BodyStream::readAll(std::shared_ptr<BodyStream> stream,
                         absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) {
  auto c = std::make_shared<Collector>();
  c->stream = std::move(stream);
  c->done = std::move(done);
  c->body.reserve(c->stream->length());
  c->pump();
}

void BodyStream::abandon() {
  absl::AnyInvocable<void() &&> writer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned_ = true;
    pieces_.clear();
    front_offset_ = 0;
    buffered_ = 0;
    writer = std::move(writer_);
  }
  if (writer) std::move(writer)();
}

void BodyStream::push(std::string_view piece) {
  if (piece.empty()) return;
  absl::AnyInvocable<void() &&> reader;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abandoned_ || finished_ || !error_.ok()) return;
    pieces_.emplace_back(piece);
    buffered_ += piece.size();
    reader = std::move(reader_);
  }
  if (reader) std::move(reader)();
}

void BodyStream::finish() {
  absl::AnyInvocable<void() &&> reader;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    reader = std::move(reader_);
  }
  if (reader) std::move(reader)();
}

void BodyStream::fail(absl::Status error) {
  absl::AnyInvocable<void() &&> reader;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    error_ = std::move(error);
    reader = std::move(reader_);
  }
  if (reader) std::move(reader)();
}

bool BodyStream::wantsMore(absl::AnyInvocable<void() &&> writable) {
  std::lock_guard<std::mutex> lock(mu_);
  if (abandoned_ || buffered_ < high_water_) return true;
  writer_ = std::move(writable);
  return false;
}

bool BodyStream::complete() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_ || !error_.ok();
}

}  // namespace waverless::http
