// A request body that arrives while its function already runs: the HTTP
// session pushes pieces as they come off the socket, the function's host
// calls take them out. Bounded: the session stops reading while a few MiB
// wait unread, so a slow function holds back a fast client (TCP flow
// control) instead of buffering the whole upload.
//
// Thread-safe: producer and consumer may be on different threads. Wake-ups
// are callbacks run outside the lock, on the thread that made progress.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace waverless::http {

class BodyStream {
 public:
  static constexpr size_t kDefaultHighWater = size_t{4} << 20;

  explicit BodyStream(uint64_t length, size_t high_water = kDefaultHighWater);
  // A body that is already complete (a small or forwarded one).
  static std::shared_ptr<BodyStream> ofString(std::string body);

  uint64_t length() const { return length_; }  // as announced by Content-Length

  // --- consumer ---
  // Copies up to cap bytes into dst (kData), or says the body is over
  // (kEnd), was cut short (kError), or has nothing unread yet (kWait: call
  // onReadable). Never blocks.
  struct ReadResult {
    enum Kind { kData, kEnd, kWait, kError } kind;
    size_t bytes = 0;
    absl::Status error;
  };
  ReadResult tryRead(char* dst, size_t cap);
  // Calls ready (once) when tryRead would not return kWait: at once if that
  // is already so.
  void onReadable(absl::AnyInvocable<void() &&> ready);
  // The consumer is done (its function finished): later pieces are dropped
  // and the producer is never held back again.
  void abandon();

  // Reads the whole body, then calls done with it or with the error that
  // cut it short; done runs on whichever thread delivers the last piece.
  static void readAll(std::shared_ptr<BodyStream> stream,
                      absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done);

  // --- producer ---
  void push(std::string_view piece);
  void finish();                  // all length() bytes were pushed
  void fail(absl::Status error);  // the client went away or timed out
  // True while less than the high-water mark waits unread; otherwise
  // calls writable (once) when the consumer has drained below it.
  bool wantsMore(absl::AnyInvocable<void() &&> writable);
  bool complete() const;  // finish() or fail() was called

 private:
  const uint64_t length_;
  const size_t high_water_;
  mutable std::mutex mu_;
  std::deque<std::string> pieces_;  // guarded by mu_
  size_t front_offset_ = 0;         // bytes of pieces_.front() already read
  size_t buffered_ = 0;             // unread bytes
  bool finished_ = false;
  bool abandoned_ = false;
  absl::Status error_;
  absl::AnyInvocable<void() &&> reader_;  // waiting consumer
  absl::AnyInvocable<void() &&> writer_;  // waiting producer
};

}  // namespace waverless::http
