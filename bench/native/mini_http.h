// The smallest reasonable Boost.Beast HTTP/1.1 server: keep-alive sessions
// on an io_context run by N threads, a handler that answers now or later.
// It is the baseline the benchmark compares servers against, so it does the
// same per-request work any HTTP server must (parse, route, frame) and
// nothing more. Header-only: shared by native_server and wc_functions.
#pragma once

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace wlbench::mini {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Request {
  std::string target;
  std::string body;
  net::any_io_executor executor;  // the session's strand, for timers
};

// Must be called exactly once, on any thread.
using Reply = std::function<void(int status, std::string body)>;
using Handler = std::function<void(Request&, Reply)>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& s, const Handler& h, size_t max_body)
      : stream_(std::move(s)), handler_(h), max_body_(max_body) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->onRequest();
                      });
  }

 private:
  void onRequest() {
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    Request req{std::string(msg.target()), std::move(msg.body()), stream_.get_executor()};
    handler_(req, [self = shared_from_this()](int status, std::string body) {
      net::dispatch(self->stream_.get_executor(), [self, status, b = std::move(body)]() mutable {
        self->write(status, std::move(b));
      });
    });
  }

  void write(int status, std::string body) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(status));
    res->set(bhttp::field::content_type, "application/octet-stream");
    res->body() = std::move(body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, size_t) {
                         if (!ec && self->keep_alive_) self->read();
                       });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const Handler& handler_;
  size_t max_body_;
  bool keep_alive_ = true;
};

// Serves until SIGINT/SIGTERM. Returns a process exit code.
inline int serve(const std::string& address, uint16_t port, int threads, Handler handler,
                 size_t max_body = size_t{512} << 20) {
  net::io_context ioc(threads);
  tcp::acceptor acceptor(ioc);
  beast::error_code ec;
  tcp::endpoint ep(net::ip::make_address(address), port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    fprintf(stderr, "cannot listen on %s:%u: %s\n", address.c_str(), port, ec.message().c_str());
    return 1;
  }
  std::function<void()> accept = [&] {
    acceptor.async_accept(net::make_strand(ioc), [&](beast::error_code e, tcp::socket s) {
      if (!e) {
        s.set_option(tcp::no_delay(true), e);
        std::make_shared<Session>(std::move(s), handler, max_body)->read();
      }
      accept();
    });
  };
  accept();
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}

}  // namespace wlbench::mini
