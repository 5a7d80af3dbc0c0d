#include "http/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace waverless::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body, const std::string& content_type,
                                     std::chrono::milliseconds timeout) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return absl::InvalidArgumentError("only http:// URLs: " + url);
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);

  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return absl::UnavailableError("resolve " + hostport + ": " + ec.message());
  stream.expires_after(timeout);
  stream.connect(endpoints, ec);
  if (ec) return absl::UnavailableError("connect " + hostport + ": " + ec.message());

  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, hostport);
  req.set(bhttp::field::content_type, content_type);
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
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

}  // namespace waverless::http
