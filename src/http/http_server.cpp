#include "http/http_server.h"

#include <strings.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <future>
#include <optional>
#include <thread>
#include <type_traits>

namespace waverless::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
namespace ssl = net::ssl;

std::string Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return "";
}

namespace {

const char* reason(int status) {
  switch (status) {
    case 400:
      return "malformed request";
    case 413:
      return "request body too large";
    default:
      return "error";
  }
}

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection, over plain TCP or TLS. The two differ only in the TLS
// handshake at the start and in what the raw body reads and answer writes
// go through (io()); for plain TCP that is the socket itself, as before.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  using std::enable_shared_from_this<Session>::shared_from_this;

  // stream_args: the TLS context, for a TLS stream.
  template <class... StreamArgs>
  Session(tcp::socket&& socket, Handler& handler, size_t max_body,
          std::chrono::milliseconds idle_tick, StreamArgs&... stream_args)
      : stream_(std::move(socket), stream_args...),
        handler_(handler),
        max_body_(max_body),
        idle_tick_(idle_tick) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->armIdleTimer(self->idle_tick_);
      if constexpr (kTls) {
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            // Not TLS (plain HTTP sent to an HTTPS port) or a failed handshake.
            self->closeNow();
            return;
          }
          self->read();
        });
      } else {
        self->read();
      }
    });
  }

 private:
  // What body reads and answer writes go through: for plain TCP the
  // socket, bypassing tcp_stream's per-operation timer bookkeeping.
  auto& io() {
    if constexpr (kTls) {
      return stream_;
    } else {
      return stream_.socket();
    }
  }
  tcp::socket& socket() { return beast::get_lowest_layer(stream_).socket(); }
  void closeNow() {
    beast::error_code ignored;
    socket().close(ignored);
    idle_timer_.cancel();
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    parser_->header_limit(64 * 1024);
    ++progress_;
    // Header first: a client that sent "Expect: 100-continue" (curl does for
    // bodies over 1 KiB) waits for our go-ahead before sending the body.
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    ++progress_;
    if (ec) {
      onRead(ec);
      return;
    }
    const auto& h = parser_->get();
    auto readBody = [self = shared_from_this()] {
      if (self->directBodyLength()) {
        Request head = headOf(self->parser_->get());
        if (self->handler_.streamBody(head)) {
          self->streamBody(std::move(head));
        } else {
          self->readBodyDirect();
        }
        return;
      }
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code e, size_t) { self->onRead(e); });
    };
    if (beast::iequals(h[bhttp::field::expect], "100-continue")) {
      auto cont =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(), cont, readBody](beast::error_code e, size_t) {
                           if (e) {
                             self->close();
                             return;
                           }
                           readBody();
                         });
      return;
    }
    readBody();
  }

  // A large body of known length is read straight into its final string:
  // through the parser it would be copied twice (socket → flat_buffer →
  // body) in 64 KiB reads, each re-arming the stream's timer (one timerfd
  // syscall per read: 5% of the CPU of a 100 MB upload).
  static constexpr uint64_t kDirectBodyMin = 256 * 1024;

  std::optional<uint64_t> directBodyLength() const {
    if (parser_->chunked()) return std::nullopt;
    auto n = parser_->content_length();
    if (!n || *n < kDirectBodyMin || *n > max_body_) return std::nullopt;
    return *n;
  }

  void readBodyDirect() {
    uint64_t length = *directBodyLength();
    body_.clear();
    body_.resize(length);
    // Bytes that arrived with the header are already in buffer_.
    size_t have = net::buffer_copy(net::buffer(body_), buffer_.data());
    buffer_.consume(have);
    readBodyPiece(have);
  }

  // In pieces of at most 16 MiB, each one progress for the idle timer: a
  // large upload on a slow link is not idle.
  void readBodyPiece(size_t offset) {
    if (offset == body_.size()) {
      auto msg = parser_->release();
      Request req = headOf(msg);
      req.body = std::move(body_);
      dispatchRequest(std::move(req), msg.keep_alive());
      return;
    }
    ++progress_;
    size_t n = std::min<size_t>(body_.size() - offset, size_t{16} << 20);
    net::async_read(io(), net::buffer(body_.data() + offset, n),
                    [self = shared_from_this(), offset](beast::error_code ec, size_t got) {
                      if (ec) {
                        // Cut short (peer gone or too slow): nothing to answer.
                        self->close();
                        return;
                      }
                      self->readBodyPiece(offset + got);
                    });
  }

  // The function starts now and takes the body from a BodyStream while the
  // rest arrives, read here piece by piece (held back while the function
  // has a few MiB unread).
  void streamBody(Request req) {
    uint64_t length = *directBodyLength();
    stream_body_ = std::make_shared<BodyStream>(length);
    // Bytes that arrived with the header are already in buffer_ (contiguous).
    size_t have = std::min<size_t>(buffer_.size(), length);
    stream_body_->push(std::string_view(static_cast<const char*>(buffer_.data().data()), have));
    buffer_.consume(have);
    stream_received_ = have;
    req.body_stream = stream_body_;
    pumping_ = true;
    dispatchRequest(std::move(req), parser_->get().keep_alive());
    pumpBody();
  }

  void pumpBody() {
    if (stream_received_ == stream_body_->length()) {
      stream_body_->finish();
      pumping_ = false;
      if (closing_) drain();
      return;
    }
    auto resume = [self = shared_from_this()] {
      net::post(self->stream_.get_executor(), [self] { self->pumpBody(); });
    };
    if (!stream_body_->wantsMore(std::move(resume))) return;
    ++progress_;
    if (pump_buffer_.empty()) pump_buffer_.resize(size_t{1} << 20);
    size_t n = std::min<uint64_t>(pump_buffer_.size(), stream_body_->length() - stream_received_);
    io().async_read_some(
        net::buffer(pump_buffer_.data(), n),
        [self = shared_from_this()](beast::error_code ec, size_t got) {
          if (ec) {
            self->stream_body_->fail(absl::UnavailableError(
                "the client closed the connection before the request body was complete"));
            self->pumping_ = false;
            self->close();
            return;
          }
          self->stream_received_ += got;
          self->stream_body_->push(std::string_view(self->pump_buffer_.data(), got));
          self->pumpBody();
        });
  }

  void onRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      // A request we cannot parse gets an answer, then the connection closes
      // (its framing can no longer be trusted).
      Response r;
      r.status = ec == bhttp::error::body_limit ? 413 : 400;
      r.body = std::string(reason(r.status)) + ": " + ec.message() + "\n";
      write(std::move(r), /*keep_alive=*/false);
      return;
    }
    auto msg = parser_->release();
    Request req = headOf(msg);
    req.body = std::move(msg.body());
    dispatchRequest(std::move(req), msg.keep_alive());
  }

  template <class Header>
  static Request headOf(const Header& msg) {
    Request req;
    req.method = std::string(msg.method_string());
    std::string target(msg.target());
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    for (const auto& f : msg) {
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    return req;
  }

  void dispatchRequest(Request req, bool keep_alive) {
    in_handler_ = true;  // the function may run for long: not idle
    keep_alive_ = keep_alive;
    // The last request's scope, if nothing holds it any more: most
    // keep-alive requests then allocate none, and keep its hook.
    if (cancel_ && cancel_.use_count() == 1) {
      cancel_->reset();
    } else {
      cancel_ = std::make_shared<common::CancelScope>();
      // Work that turns out to be long has the client watched from then
      // on: a warm call answers within its first slice and never pays for
      // it. The hook may come late, from an earlier request of this
      // connection; it then has the current one watched, which is harmless.
      cancel_->onLong([weak = this->weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        net::post(self->stream_.get_executor(), [self] { self->watchRunning(); });
      });
    }
    ++requests_;
    req.cancel = cancel_;
    // Captures nothing but the session: the responder fits in its inline
    // storage (no allocation); keep_alive_ holds until the answer is written.
    handler_.handle(std::move(req), [self = shared_from_this()](Response r) mutable {
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable {
        self->write(std::move(r), self->keep_alive_);
      });
    });
  }

  // The request in the handler is long: watch for its client going away.
  // A streamed body's pump reads the socket itself and sees the client go.
  void watchRunning() {
    if (!in_handler_ || stream_body_ || watched_ == requests_) return;
    watched_ = requests_;
    watchPeer(cancel_, requests_);
  }

  // While the handler runs nothing reads the socket; a wait for readability
  // tells when the client closes it (recv then sees end of stream), so that
  // the work done for this request can be cancelled.
  void watchPeer(std::shared_ptr<common::CancelScope> cancel, uint64_t seq) {
    socket().async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this(), cancel = std::move(cancel), seq](beast::error_code ec) {
          if (ec || !self->in_handler_ || seq != self->requests_) return;
          char c;
          ssize_t n = ::recv(self->socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            cancel->cancel(absl::CancelledError("the client closed the connection"));
          }
          // n > 0: it sent more (a pipelined request), so it is still there.
        });
  }

  // The head is formatted here and sent with the body in one gathered
  // write: Beast's generic serializer cost ~8% of a small request.
  void write(Response r, bool keep_alive) {
    if (stream_body_) {
      // The function is done with its body. Unread rest: the connection
      // cannot carry another request (its bytes would be taken as one).
      if (!stream_body_->complete()) keep_alive = false;
      stream_body_->abandon();
    }
    // Kept in the session until the write completes (it holds the session):
    // one answer is in flight at a time, and the head's buffer is reused.
    formatHead(r, keep_alive, out_head_);
    out_body_ = std::move(r.body);
    std::array<net::const_buffer, 2> buffers{net::buffer(out_head_), net::buffer(out_body_)};
    // The function is done; the answer must now go out within one to two
    // idle intervals, or a client that stops reading would hold us forever.
    in_handler_ = false;
    ++progress_;
    net::async_write(io(), buffers,
                     [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                       if (ec || !keep_alive) {
                         self->close();
                         return;
                       }
                       self->stream_body_.reset();
                       self->read();
                     });
  }

  static void formatHead(const Response& r, bool keep_alive, std::string& head) {
    auto status = bhttp::int_to_status(static_cast<unsigned>(r.status));
    head.clear();
    head.reserve(160);
    head += "HTTP/1.1 ";
    head += std::to_string(r.status);
    head += ' ';
    auto reason = bhttp::obsolete_reason(status);
    head.append(reason.data(), reason.size());
    head += "\r\nServer: waverless\r\n";
    auto field = [&head](std::string_view name, std::string_view value) {
      // A line break would smuggle in header lines: such a field is dropped.
      if (name.find_first_of("\r\n:") != std::string_view::npos ||
          value.find_first_of("\r\n") != std::string_view::npos) {
        return;
      }
      head += name;
      head += ": ";
      head += value;
      head += "\r\n";
    };
    field("Content-Type", r.content_type);
    for (const auto& [k, v] : r.headers) field(k, v);
    head += "Content-Length: ";
    head += std::to_string(r.body.size());
    head += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  }

  // Half-closes, then reads and discards what the client is still sending
  // (e.g. the rest of an oversized body) so that closing does not reset the
  // connection before the client has read our answer.
  void close() {
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    closing_ = true;
    armIdleTimer(std::chrono::seconds(5));
    if (!pumping_) drain();  // else the pump reads (and drops) the rest, then drains
  }

  void drain() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) {
                                self->drain();
                                return;
                              }
                              // The connection is over: release the timer's hold on us.
                              self->idle_timer_.cancel();
                            });
  }

  // Idle connections and stalled reads are cut by one coarse timer per
  // connection that checks for progress once a tick, instead of a deadline
  // re-armed on every read and write (two timer-queue updates and a
  // cancelled wait per request: ~5% of a small request's cost). A
  // connection with no progress for a whole tick (and no function running
  // for it) is closed: after one to two ticks of silence.
  void armIdleTimer(std::chrono::steady_clock::duration after) {
    idle_timer_.expires_after(after);  // cancels a pending wait
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // re-armed, or the connection is over
      if (self->closing_ || (self->progress_ == self->progress_seen_ && !self->in_handler_)) {
        beast::error_code ignored;
        self->socket().close(ignored);  // pending operations end with an error
        return;
      }
      self->progress_seen_ = self->progress_;
      self->armIdleTimer(self->idle_tick_);
    });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::array<char, 16384> scratch_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string body_;                         // a direct read's destination
  std::string out_head_;                     // the answer being written: head
  std::string out_body_;                     // and body
  std::shared_ptr<BodyStream> stream_body_;  // the current request's, when streamed
  uint64_t stream_received_ = 0;
  std::vector<char> pump_buffer_;
  bool pumping_ = false;
  net::steady_timer idle_timer_{stream_.get_executor()};
  uint64_t progress_ = 0;                        // bumped when a read starts or a header arrives
  uint64_t requests_ = 0;                        // dispatched so far; tells a stale peer watch
  uint64_t watched_ = 0;                         // the last request whose peer was watched
  bool keep_alive_ = false;                      // of the request in the handler
  std::shared_ptr<common::CancelScope> cancel_;  // the current request's
  uint64_t progress_seen_ = 0;
  bool in_handler_ = false;
  bool closing_ = false;
  Handler& handler_;
  size_t max_body_;
  std::chrono::milliseconds idle_tick_;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Handler& handler;
  net::io_context own_ioc;                 // when not sharing the executor's
  std::vector<net::io_context*> contexts;  // where connections are served
  std::unique_ptr<tcp::acceptor> acceptor;
  std::optional<ssl::context> tls;  // set: connections are TLS
  std::vector<std::thread> threads;
  size_t next = 0;  // used on the acceptor's context only
  uint16_t port = 0;
  bool running = false;

  Impl(ServerOptions o, Handler& h) : options(std::move(o)), handler(h) {
    if (options.shared_contexts.empty()) {
      contexts.push_back(&own_ioc);
    } else {
      contexts = options.shared_contexts;
    }
  }

  void accept() {
    net::io_context& target = *contexts[next++ % contexts.size()];
    // A strand only where several threads run one io_context; a shared
    // executor context is run by one thread, and a strand would be overhead.
    bool one_thread = !options.shared_contexts.empty() || options.io_threads <= 1;
    auto accepted = [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
      } else {
        s.set_option(tcp::no_delay(true), ec);
        if (tls) {
          std::make_shared<Session<TlsStream>>(std::move(s), handler, options.max_body_bytes,
                                               options.idle_check_interval, *tls)
              ->start();
        } else {
          std::make_shared<Session<PlainStream>>(std::move(s), handler, options.max_body_bytes,
                                                 options.idle_check_interval)
              ->start();
        }
      }
      accept();
    };
    if (one_thread) {
      acceptor->async_accept(target, std::move(accepted));
    } else {
      acceptor->async_accept(net::make_strand(target), std::move(accepted));
    }
  }
};

HttpServer::HttpServer(ServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() { stop(); }

absl::Status HttpServer::start() {
  beast::error_code ec;
  const std::string& cert = impl_->options.tls_cert_file;
  const std::string& key = impl_->options.tls_key_file;
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate and a key (--tls-cert, --tls-key)");
  }
  if (!cert.empty()) {
    auto& tls = impl_->tls.emplace(ssl::context::tls_server);
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                    ssl::context::single_dh_use);
    tls.use_certificate_chain_file(cert, ec);
    if (ec) return absl::InvalidArgumentError("--tls-cert " + cert + ": " + ec.message());
    tls.use_private_key_file(key, ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError("--tls-key " + key + ": " + ec.message());
  }
  auto addr = net::ip::make_address(impl_->options.address, ec);
  if (ec) return absl::InvalidArgumentError("bad listen address " + impl_->options.address);
  tcp::endpoint ep(addr, impl_->options.port);
  impl_->acceptor = std::make_unique<tcp::acceptor>(*impl_->contexts[0]);
  tcp::acceptor& acc = *impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError("cannot listen on " + impl_->options.address + ":" +
                                  std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->port = acc.local_endpoint().port();
  // The first accept is started on the acceptor's own context.
  net::post(*impl_->contexts[0], [this] { impl_->accept(); });
  if (impl_->options.shared_contexts.empty()) {
    for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i) {
      impl_->threads.emplace_back([this] { impl_->own_ioc.run(); });
    }
  }
  impl_->running = true;
  return absl::OkStatus();
}

void HttpServer::stop() {
  if (!impl_->running) return;
  impl_->running = false;
  // The acceptor belongs to its context's thread: close it there.
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  net::post(*impl_->contexts[0], [acc = impl_->acceptor.get(), closed] {
    beast::error_code ec;
    acc->close(ec);
    closed->set_value();
  });
  if (impl_->options.shared_contexts.empty()) {
    done.wait_for(std::chrono::seconds(2));
    impl_->own_ioc.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
  } else {
    done.wait_for(std::chrono::seconds(5));
  }
}

uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace waverless::http
