// Fuzzes the HTTP/1.1 server (http::HttpServer, Boost.Beast parsing) with
// arbitrary bytes as one connection's worth of request(s). The real server
// runs in-process on a loopback port; each input is written to a fresh
// connection whose write side is then shut down, and the answer is read
// until the server closes. The server must close every connection within a
// deadline, answer only well-formed HTTP, and keep serving a good request.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "http/http_server.h"

namespace {

namespace bhttp = boost::beast::http;
using waverless::http::Request;
using waverless::http::Responder;
using waverless::http::Response;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "http_server_fuzz: %s\n", what.c_str());
    std::abort();
  }
}

// Answers at once with what it was given; echoes X-Echo back (the server
// must drop a value that would inject header lines). Paths under /stream
// take their body as a stream, read to its end or its error first.
class EchoHandler final : public waverless::http::Handler {
 public:
  void handle(Request req, Responder respond) override {
    if (req.body_stream) {
      auto stream = req.body_stream;
      waverless::http::BodyStream::readAll(
          stream, [req = std::move(req),
                   respond = std::move(respond)](absl::StatusOr<std::string> body) mutable {
            Response r;
            r.body = body.ok() ? "streamed " + std::to_string(body->size())
                               : std::string(body.status().message());
            std::move(respond)(std::move(r));
          });
      return;
    }
    Response r;
    r.body = req.method + " " + req.path + " " + std::to_string(req.body.size());
    if (auto echo = req.header("X-Echo"); !echo.empty()) r.headers.emplace_back("X-Echo", echo);
    if (req.path == "/teapot") r.status = 418;
    std::move(respond)(std::move(r));
  }
  bool streamBody(const Request& head) override { return head.path.starts_with("/stream"); }
};

EchoHandler* g_handler;
waverless::http::HttpServer* g_server;
uint16_t g_port;
uint64_t g_inputs = 0;

// Sends bytes on a new connection, half-closes, and returns everything read
// until the server closes. Aborts if it does not close within the deadline.
std::string exchange(std::string_view bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  check(fd >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(g_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Each connection leaves a TIME_WAIT entry for ~60 s: from one source
  // address the ~28k ephemeral ports would run out within a minute, so the
  // source rotates through 127.0.0.0/8.
  static uint32_t next_source = 0;
  sockaddr_in source{};
  source.sin_family = AF_INET;
  source.sin_addr.s_addr = htonl((127u << 24) | (1 + next_source++ % 0xfffffe));
  check(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) == 0, "bind");
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno == EINTR) {
    // libFuzzer's timer signal: the connect goes on in the background.
    pollfd p{fd, POLLOUT, 0};
    while (poll(&p, 1, 10000) < 0 && errno == EINTR) {
    }
    socklen_t n = sizeof errno;
    rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &errno, &n) == 0 && errno == 0 ? 0 : -1;
  }
  check(rc == 0, std::string("the server stopped accepting connections: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string got;
  char buf[16384];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t sent = 0;
  bool write_open = true;
  for (;;) {
    if (write_open && sent == bytes.size()) {
      shutdown(fd, SHUT_WR);
      write_open = false;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    check(left.count() > 0, "the server did not close a half-closed connection within 10 s");
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    if (p.revents & POLLIN) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;  // closed (or reset after answering)
      got.append(buf, static_cast<size_t>(n));
    } else if (write_open && (p.revents & POLLOUT)) {
      ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        write_open = false;  // the server stopped reading: fine, read its answer
      } else {
        sent += static_cast<size_t>(n);
      }
    } else if (p.revents & (POLLERR | POLLHUP)) {
      break;
    }
  }
  close(fd);
  return got;
}

// Everything the server sent must be a sequence of well-formed responses,
// each with at most one X-Echo line.
void checkResponses(const std::string& got) {
  boost::beast::flat_buffer buffer;
  auto n = boost::asio::buffer_copy(buffer.prepare(got.size()), boost::asio::buffer(got));
  buffer.commit(n);
  while (buffer.size() > 0) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.body_limit(1 << 20);
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        if (buffer.size() == 0) break;
        continue;
      }
      if (ec || used == 0) break;
    }
    check(!ec && parser.is_done(), "a malformed response: " + ec.message() + "\n" + got);
    const auto& res = parser.get();
    check(res.count("X-Echo") <= 1, "a response with injected header lines:\n" + got);
    // Interim 100 Continue comes from Beast; answers are formatted by the server.
    check(res.result_int() == 100 || res.count("Server") == 1,
          "a response without its own header:\n" + got);
  }
}

void checkAlive() {
  std::string got = exchange("GET /health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n");
  check(got.starts_with("HTTP/1.1 200 ") && got.ends_with("GET /health 0"),
        "the server no longer answers a good request: " + got);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);
  g_handler = new EchoHandler;
  waverless::http::ServerOptions options;
  options.port = 0;
  options.max_body_bytes = 1 << 20;  // bodies from 256 KiB take the direct/stream paths
  g_server = new waverless::http::HttpServer(options, *g_handler);
  auto st = g_server->start();
  check(st.ok(), "start: " + st.ToString());
  g_port = g_server->port();
  checkAlive();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string got = exchange(std::string_view(reinterpret_cast<const char*>(data), size));
  checkResponses(got);
  if (++g_inputs % 64 == 0) checkAlive();
  return 0;
}
