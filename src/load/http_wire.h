// The HTTP/1.1 client wire format the load generator needs: building
// requests once up front, and parsing keep-alive responses incrementally
// (Content-Length or chunked bodies). Nothing else of HTTP: the servers
// under test are ours and answer plainly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace waverless::load {

// A complete request; body may be empty (then no Content-Type is sent).
// extra_headers: whole header lines ("Name: value\r\n"), sent as given.
std::string buildRequest(std::string_view method, std::string_view path, std::string_view host,
                         std::string_view body, std::string_view extra_headers = {});

// Parses one response at the front of a buffer that grows as bytes arrive.
// Offsets refer to the buffer passed in, so the caller must not consume
// bytes until kDone; then it erases consumed() bytes and calls reset().
class ResponseParser {
 public:
  enum class Result { kNeedMore, kDone, kError };

  // keep_body: collect the (de-chunked) body, else only frame it.
  explicit ResponseParser(bool keep_body = false) : keep_body_(keep_body) {}

  Result parse(std::string_view buf);
  void reset();

  int status() const { return status_; }
  size_t consumed() const { return consumed_; }
  bool closeAfter() const { return close_; }  // server sent Connection: close
  const std::string& body() const { return body_; }
  const char* error() const { return error_; }

 private:
  Result parseHead(std::string_view buf);
  Result parseChunks(std::string_view buf);
  Result fail(const char* why) {
    error_ = why;
    return Result::kError;
  }

  bool keep_body_;
  bool head_done_ = false;
  int status_ = 0;
  size_t head_bytes_ = 0;
  bool chunked_ = false;
  bool close_ = false;
  size_t content_length_ = 0;
  size_t chunk_pos_ = 0;  // next chunk-size line, for chunked bodies
  size_t consumed_ = 0;
  std::string body_;
  const char* error_ = "";
};

// A blocking keep-alive client connection (TCP_NODELAY); reconnects on the
// next exchange after the server closed it.
class BlockingConnection {
 public:
  BlockingConnection(const std::string& host, uint16_t port);
  ~BlockingConnection() { drop(); }
  BlockingConnection(const BlockingConnection&) = delete;
  BlockingConnection& operator=(const BlockingConnection&) = delete;

  // Sends one request and reads its response into parser; returns the
  // HTTP status, or 0 when the connection failed.
  int exchange(const std::string& request, ResponseParser& parser);

 private:
  bool connectNow();
  int failed() {
    drop();
    return 0;
  }
  void drop();

  std::string host_;
  uint16_t port_;
  int fd_ = -1;
  std::string in_;
};

}  // namespace waverless::load
