#include "http/http_client.h"

#include <openssl/ssl.h>
#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace waverless::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return "";
}

namespace {

// Sends the request and reads the answer on a connected stream (TCP or TLS).
template <class Stream>
absl::StatusOr<ClientResponse> exchange(Stream& stream, const std::string& method,
                                        const std::string& hostport, const std::string& target,
                                        const std::string& body, const FetchOptions& o) {
  beast::error_code ec;
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, hostport);
  req.set(bhttp::field::content_type, o.content_type);
  for (const auto& [k, v] : o.headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  // A server may answer before reading the whole body (413): read anyway.
  beast::error_code write_ec = ec;

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(size_t{1} << 30);
  bhttp::read(stream, buffer, parser, ec);
  if (ec) {
    if (write_ec) return absl::UnavailableError("send to " + hostport + ": " + write_ec.message());
    return absl::UnavailableError("read from " + hostport + ": " + ec.message());
  }
  auto res = parser.release();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  out.content_type = std::string(res[bhttp::field::content_type]);
  for (const auto& f : res) {
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  return out;
}

}  // namespace

absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body, const FetchOptions& o) {
  bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://")) {
    return absl::InvalidArgumentError("only http:// and https:// URLs: " + url);
  }
  std::string rest = url.substr(tls ? 8 : 7);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? (tls ? "443" : "80") : hostport.substr(colon + 1);

  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return absl::UnavailableError("resolve " + hostport + ": " + ec.message());
  stream.expires_after(o.timeout);
  stream.connect(endpoints, ec);
  if (ec) return absl::UnavailableError("connect " + hostport + ": " + ec.message());
  if (!tls) {
    auto out = exchange(stream, method, hostport, target, body, o);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
  }

  ssl::context ctx(ssl::context::tls_client);
  if (o.insecure) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!o.ca_file.empty()) {
      ctx.load_verify_file(o.ca_file, ec);
      if (ec) return absl::InvalidArgumentError("--ca " + o.ca_file + ": " + ec.message());
    } else {
      ctx.set_default_verify_paths(ec);
    }
  }
  beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(stream), ctx);
  if (!o.insecure) {
    // Checks the certificate names this host (DNS name or IP address).
    tls_stream.set_verify_callback(ssl::host_name_verification(host));
  }
  SSL_set_tlsext_host_name(tls_stream.native_handle(), host.c_str());
  tls_stream.handshake(ssl::stream_base::client, ec);
  if (ec) return absl::UnavailableError("TLS handshake with " + hostport + ": " + ec.message());
  auto out = exchange(tls_stream, method, hostport, target, body, o);
  beast::get_lowest_layer(tls_stream).socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body, const std::string& content_type,
                                     std::chrono::milliseconds timeout) {
  FetchOptions o;
  o.content_type = content_type;
  o.timeout = timeout;
  return fetch(method, url, body, o);
}

}  // namespace waverless::http
