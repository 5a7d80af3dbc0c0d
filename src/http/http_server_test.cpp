#include "http/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/body_stream_testing.h"
#include "http/http_client.h"

namespace waverless::http {
namespace {

using ::testing::HasSubstr;

// Echoes method, path and body; answers from a separate thread to prove a
// response may come from anywhere.
class EchoHandler : public Handler {
 public:
  bool streamBody(const Request& head) override { return head.path.starts_with("/stream"); }

  void handle(Request req, Responder respond) override {
    std::thread([this, req = std::move(req), respond = std::move(respond)]() mutable {
      if (req.body_stream && req.path != "/stream-early") {
        req.body = testing::drainBlocking(*req.body_stream, &stream_errors);
      }
      if (req.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(900));
      if (req.path == "/long") {
        // Work that turned out long, as the executor reports it; then it
        // waits to be cancelled (the client going away) for up to 5 s.
        req.cancel->markLong();
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!req.cancel->cancelled() && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        long_cancelled = req.cancel->cancelled();
        long_done = true;
      }
      Response r;
      r.body = req.method + " " + req.path + " q=" + req.query + " " + req.body;
      if (req.path == "/headers") {
        r.status = 201;
        r.headers = {{"X-Ok", "yes"}, {"X-Bad", "a\r\nSet-Cookie: stolen=1"}};
      }
      std::move(respond)(std::move(r));
    }).detach();
  }
  std::atomic<int> stream_errors{0};
  std::atomic<bool> long_done{false};
  std::atomic<bool> long_cancelled{false};
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    o.max_body_bytes = maxBody();
    o.idle_check_interval = std::chrono::milliseconds(300);
    server_ = std::make_unique<HttpServer>(o, handler_);
    ASSERT_TRUE(server_->start().ok());
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->stop(); }
  virtual size_t maxBody() const { return 1024; }

  int connectToServer() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }

  static void writeAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = write(fd, bytes.data(), bytes.size());
      ASSERT_GT(n, 0);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Sends raw bytes and returns whatever comes back before the server closes.
  std::string raw(const std::string& bytes) {
    int fd = connectToServer();
    writeAll(fd, bytes);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  }

  EchoHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::string base_;
};

TEST_F(HttpServerTest, AnswersAsynchronously) {
  auto r = fetch("POST", base_ + "/app/fn?x=1", "body");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /app/fn q=x=1 body");
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  auto r = fetch("POST", base_ + "/app", std::string(2000, 'x'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  std::string out = raw("THIS IS NOT HTTP\r\n\r\n");
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 400"));
  // The server keeps serving.
  auto r = fetch("GET", base_ + "/ok");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ExpectContinueGetsTheGoAheadBeforeTheBody) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server_->port());
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string head =
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n"
      "Connection: close\r\n\r\n";
  ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);  // before we send any body
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(buf, static_cast<size_t>(n)), HasSubstr("100 Continue"));
  ASSERT_EQ(write(fd, "body", 4), 4);
  std::string out;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_THAT(out, HasSubstr("POST /x q= body"));
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequests) {
  std::string two =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::string out = raw(two);
  EXPECT_THAT(out, HasSubstr("GET /a"));
  EXPECT_THAT(out, HasSubstr("GET /b"));
}

// The connection's cancel scope is reused by its next request once nobody
// holds it; the client going away must still cancel a long request then.
TEST_F(HttpServerTest, ClientGoneCancelsALongRequestAfterAShortOneOnTheConnection) {
  int fd = connectToServer();
  writeAll(fd, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string first;
  char buf[4096];
  while (first.find("GET /short") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0);
    first.append(buf, static_cast<size_t>(n));
  }
  // Time for the short request's handler to let go of the scope.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  writeAll(fd, "GET /long HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(handler_.long_done);
  close(fd);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!handler_.long_done && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(handler_.long_done) << "the long request was not cancelled within 3 s";
  EXPECT_TRUE(handler_.long_cancelled);
}

// Bodies of 256 KiB and more bypass the parser (read straight into the
// request's string); these check that path keeps HTTP's framing.
class HttpServerLargeBodyTest : public HttpServerTest {
 protected:
  size_t maxBody() const override { return size_t{8} << 20; }

  // Sends a POST of body to path; stops quietly if the server closes first.
  static void sendPost(int fd, const std::string& path, const std::string& body) {
    std::string bytes = "POST " + path +
                        " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n\r\n" + body;
    std::string_view rest(bytes);
    while (!rest.empty()) {
      ssize_t n = send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }

  static std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
    return s;
  }
};

TEST_F(HttpServerLargeBodyTest, LargeBodyArrivesWholeAndInOrder) {
  std::string body = pattern(size_t{5} << 20);
  auto r = fetch("POST", base_ + "/big", body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == "POST /big q= " + body) << "echoed " << r->body.size() << " bytes";
}

TEST_F(HttpServerLargeBodyTest, KeepAliveRequestAfterALargeBodyIsParsed) {
  // Both requests in one write: the second one's bytes follow the first
  // body directly and must not be swallowed by the direct read.
  std::string body = pattern(300 * 1024);
  std::string bytes =
      "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body + "GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::string out = raw(bytes);
  EXPECT_THAT(out, HasSubstr("POST /one q= " + body.substr(0, 100)));
  // The echo is the whole response body: nothing of the first body leaks into the second request.
  EXPECT_THAT(out, HasSubstr("\r\n\r\nGET /two q= "));
}

TEST_F(HttpServerLargeBodyTest, BodyOverTheLimitGets413) {
  auto r = fetch("POST", base_ + "/big", pattern(maxBody() + 1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
}

TEST_F(HttpServerLargeBodyTest, ClientGoneMidBodyLeavesTheServerServing) {
  int fd = connectToServer();
  writeAll(
      fd, "POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + pattern(400 * 1024));
  close(fd);
  auto r = fetch("GET", base_ + "/after");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /after q= ");
}

TEST_F(HttpServerTest, SilentConnectionIsClosedAfterOneToTwoIdleIntervals) {
  int fd = connectToServer();
  writeAll(fd, "GET /a HTTP/1.1\r\nHo");  // then nothing: a stalled client
  auto t0 = std::chrono::steady_clock::now();
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);  // returns when the server closes
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  EXPECT_LE(n, 0);
  EXPECT_GE(waited, 0.25);
  EXPECT_LE(waited, 3.0);
}

TEST_F(HttpServerLargeBodyTest, ClientThatStopsReadingTheAnswerIsCut) {
  // A 7 MB answer (the echo) to a client that does not read: the write
  // stalls once the socket buffers (4 MiB at most here) are full, and the
  // idle timer ends it.
  int fd = connectToServer();
  // Small, but over loopback's 64 KiB segment size: a window below one
  // segment would make the final read crawl on zero-window probes.
  int small = 128 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string body = pattern(size_t{7} << 20);
  std::thread sender([&] { sendPost(fd, "/big", body); });
  sender.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // > 2 idle intervals
  // Now read: the server has given up, so the answer ends early (or resets).
  size_t got = 0;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) got += static_cast<size_t>(n);
  close(fd);
  EXPECT_LT(got, body.size());
}

TEST_F(HttpServerTest, FunctionRunningLongerThanTheIdleIntervalIsNotCut) {
  // The handler takes three idle intervals; the connection waits for it.
  auto r = fetch("GET", base_ + "/slow");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /slow q= ");
}

TEST_F(HttpServerTest, ResponseHeadIsWellFormedAndRefusesInjectedLines) {
  std::string out = raw("GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(out, ::testing::StartsWith("HTTP/1.1 201 Created\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nX-Ok: yes\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nContent-Length: 16\r\n"));
  EXPECT_THAT(out, ::testing::EndsWith("\r\nConnection: close\r\n\r\nGET /headers q= "));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("Set-Cookie")));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("X-Bad")));
}

TEST_F(HttpServerLargeBodyTest, StreamedBodyReachesTheHandlerWhole) {
  std::string body = pattern(size_t{6} << 20);  // over the stream's 4 MiB high-water mark
  auto r = fetch("POST", base_ + "/stream", body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->body == "POST /stream q= " + body) << "echoed " << r->body.size() << " bytes";
  // Keep-alive after a fully read stream: the next request on the same
  // connection is parsed normally.
  std::string two =
      "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body + "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::string out = raw(two);
  EXPECT_THAT(out, HasSubstr("\r\n\r\nGET /next q= "));
}

TEST_F(HttpServerLargeBodyTest, AnswerBeforeTheBodyIsReadClosesTheConnection) {
  int fd = connectToServer();
  std::string body = pattern(size_t{6} << 20);
  std::thread sender([&] { sendPost(fd, "/stream-early", body); });
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  sender.join();
  close(fd);
  EXPECT_THAT(out, HasSubstr("Connection: close\r\n\r\nPOST /stream-early q= "));
  auto r = fetch("GET", base_ + "/after");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /after q= ");
}

TEST_F(HttpServerLargeBodyTest, StreamCutShortReportsAnError) {
  int fd = connectToServer();
  writeAll(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                   pattern(300 * 1024));
  close(fd);
  for (int i = 0; i < 200 && handler_.stream_errors == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(handler_.stream_errors, 1);
  auto r = fetch("GET", base_ + "/after");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /after q= ");
}

}  // namespace
}  // namespace waverless::http
