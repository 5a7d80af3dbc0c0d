#include "load/http_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace waverless::load {

std::string buildRequest(std::string_view method, std::string_view path, std::string_view host,
                         std::string_view body, std::string_view extra_headers) {
  std::string r;
  r.reserve(128 + body.size());
  r.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nUser-Agent: wl-loadgen\r\n").append(extra_headers);
  if (!body.empty() || method == "POST") {
    r.append("Content-Type: application/octet-stream\r\nContent-Length: ");
    r.append(std::to_string(body.size())).append("\r\n");
  }
  r.append("\r\n").append(body);
  return r;
}

namespace {

bool headerIs(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  if (strncasecmp(line.data(), name.data(), name.size()) != 0) return false;
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  *value = v;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

void ResponseParser::reset() {
  head_done_ = false;
  status_ = 0;
  head_bytes_ = 0;
  chunked_ = false;
  close_ = false;
  content_length_ = 0;
  chunk_pos_ = 0;
  consumed_ = 0;
  body_.clear();
}

ResponseParser::Result ResponseParser::parse(std::string_view buf) {
  if (!head_done_) {
    Result r = parseHead(buf);
    if (r != Result::kDone) return r;
  }
  if (chunked_) return parseChunks(buf);
  if (buf.size() - head_bytes_ < content_length_) return Result::kNeedMore;
  consumed_ = head_bytes_ + content_length_;
  if (keep_body_) body_.assign(buf.substr(head_bytes_, content_length_));
  return Result::kDone;
}

ResponseParser::Result ResponseParser::parseHead(std::string_view buf) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return buf.size() > 64 * 1024 ? fail("response head over 64 KiB") : Result::kNeedMore;
  }
  std::string_view head = buf.substr(0, end + 2);
  // "HTTP/1.1 200 OK"
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return fail("not an HTTP response");
  auto [p, ec] = std::from_chars(head.data() + 9, head.data() + 12, status_);
  if (ec != std::errc()) return fail("bad status line");
  bool http10 = head.substr(5, 3) == "1.0";
  close_ = http10;
  size_t pos = head.find("\r\n") + 2;
  bool have_length = false;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    std::string_view v;
    if (headerIs(line, "Content-Length", &v)) {
      if (std::from_chars(v.data(), v.data() + v.size(), content_length_).ec != std::errc()) {
        return fail("bad Content-Length");
      }
      have_length = true;
    } else if (headerIs(line, "Transfer-Encoding", &v)) {
      chunked_ = iequals(v, "chunked");
    } else if (headerIs(line, "Connection", &v)) {
      if (iequals(v, "close")) close_ = true;
      if (iequals(v, "keep-alive")) close_ = false;
    }
  }
  // Without a length the body runs to EOF: this client does not support
  // that (our servers always frame their bodies).
  if (!have_length && !chunked_ && status_ != 204 && status_ != 304) {
    return fail("response without Content-Length or chunked body");
  }
  head_bytes_ = end + 4;
  head_done_ = true;
  chunk_pos_ = head_bytes_;
  return Result::kDone;
}

ResponseParser::Result ResponseParser::parseChunks(std::string_view buf) {
  for (;;) {
    size_t eol = buf.find("\r\n", chunk_pos_);
    if (eol == std::string_view::npos) return Result::kNeedMore;
    size_t size = 0;
    auto [p, ec] = std::from_chars(buf.data() + chunk_pos_, buf.data() + eol, size, 16);
    if (ec != std::errc()) return fail("bad chunk size");
    if (size == 0) {
      // Last chunk; no trailers expected, so it ends with one more CRLF.
      if (buf.size() < eol + 4) return Result::kNeedMore;
      consumed_ = eol + 4;
      return Result::kDone;
    }
    if (buf.size() < eol + 2 + size + 2) return Result::kNeedMore;
    if (keep_body_) body_.append(buf.substr(eol + 2, size));
    chunk_pos_ = eol + 2 + size + 2;
  }
}

BlockingConnection::BlockingConnection(const std::string& host, uint16_t port)
    : host_(host), port_(port) {}

bool BlockingConnection::connectNow() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  if (inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "bad IPv4 address %s\n", host_.c_str());
    return false;
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fprintf(stderr, "connect %s:%u: %s\n", host_.c_str(), port_, strerror(errno));
    drop();
    return false;
  }
  return true;
}

void BlockingConnection::drop() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  in_.clear();
}

int BlockingConnection::exchange(const std::string& request, ResponseParser& parser) {
  if (fd_ < 0 && !connectNow()) return 0;
  for (size_t off = 0; off < request.size();) {
    ssize_t n = write(fd_, request.data() + off, request.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failed();
    off += static_cast<size_t>(n);
  }
  char buf[1 << 16];
  for (;;) {
    auto r = parser.parse(in_);
    if (r == ResponseParser::Result::kDone) break;
    if (r == ResponseParser::Result::kError) {
      fprintf(stderr, "bad response: %s\n", parser.error());
      return failed();
    }
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failed();
    in_.append(buf, static_cast<size_t>(n));
  }
  in_.erase(0, parser.consumed());
  if (parser.closeAfter()) drop();
  return parser.status();
}

}  // namespace waverless::load
