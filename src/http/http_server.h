// HTTP/1.1 server (Boost.Beast) for the gateway: parses requests, enforces
// the body limit (413) and well-formedness (400), and hands each request to
// a Handler that answers asynchronously, from any thread.
//
// Owns: sockets and the I/O threads. Must not: route or run functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/cancel_scope.h"
#include "http/body_stream.h"

namespace boost::asio {
class io_context;
}

namespace waverless::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::string body;
  // Set instead of body when the handler asked for the body as a stream
  // (Handler::streamBody): it is still arriving.
  std::shared_ptr<BodyStream> body_stream;
  // Cancelled by the server when the client closes the connection before
  // the answer (seen while the handler runs; not behind pipelined requests,
  // nor through TLS, whose close alert arrives as data).
  std::shared_ptr<common::CancelScope> cancel;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  // case-insensitive, "" if absent
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using Responder = absl::AnyInvocable<void(Response) &&>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request request, Responder respond) = 0;
  // Asked once the header of a large body (>= 256 KiB, with Content-Length)
  // is in: true to get the request at once with its body as a stream.
  virtual bool streamBody(const Request& /*head*/) { return false; }
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 2501;  // 0: pick a free port
  size_t max_body_bytes = size_t{64} << 20;
  int io_threads = 1;
  // A connection that makes no progress (no new request, header or body
  // piece) and runs no function for a whole interval is closed: idle
  // keep-alive connections and stalled clients go after 1-2 intervals.
  std::chrono::milliseconds idle_check_interval{60000};
  // When set, connections are served on these (the executor's threads, so a
  // request is parsed, run and answered without changing threads) and
  // io_threads is ignored. Their owner runs and stops them.
  std::vector<boost::asio::io_context*> shared_contexts;
  // HTTPS: both set (PEM files) serves every connection over TLS 1.2+.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler& handler);
  ~HttpServer();
  absl::Status start();
  void stop();            // idempotent
  uint16_t port() const;  // the bound port, after start()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::http
