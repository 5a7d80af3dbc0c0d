#include "load/open_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "load/http_wire.h"

namespace waverless::load {

namespace {

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

uint32_t toUs(int64_t ns) {
  return static_cast<uint32_t>(std::clamp<int64_t>(ns / 1000, 0, UINT32_MAX));
}

struct Due {
  int64_t due_ns;
  uint32_t target;
};

struct Conn {
  int fd = -1;
  bool connecting = false;
  bool busy = false;
  const std::string* out = nullptr;
  size_t out_off = 0;
  std::string in;
  ResponseParser parser;
  Due req{};
  int64_t sent_ns = 0;
};

class Engine {
 public:
  explicit Engine(OpenLoopOptions& o) : o_(o) {}
  ~Engine() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (ep_ >= 0) close(ep_);
  }

  OpenLoopResult run();

 private:
  bool open(size_t i);
  void reopen(size_t i);
  void send(size_t i, const Due& d, int64_t now);
  void writeSome(size_t i);
  void onEvent(size_t i, uint32_t events);
  void finish(size_t i, int status);
  bool recorded(const Due& d) const { return d.due_ns >= o_.warmup_ns; }

  OpenLoopOptions& o_;
  OpenLoopResult r_;
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<Conn> conns_;
  std::vector<size_t> idle_;
  int in_flight_ = 0;
  int64_t t0_ = 0;
  int64_t last_done_ns_ = 0;
};

bool Engine::open(size_t i) {
  Conn& c = conns_[i];
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return false;
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) != 0 &&
      errno != EINPROGRESS) {
    close(c.fd);
    c.fd = -1;
    return false;
  }
  c.connecting = true;
  c.in.clear();
  c.parser.reset();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
  ev.data.u64 = i;
  return epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) == 0;
}

// After a failure or Connection: close. The run aborts when the server is
// gone rather than spinning on reconnects.
void Engine::reopen(size_t i) {
  Conn& c = conns_[i];
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  c.connecting = false;
  if (++r_.reconnects > 100000 || !open(i)) r_.error = "cannot reconnect to the server";
}

void Engine::send(size_t i, const Due& d, int64_t now) {
  Conn& c = conns_[i];
  c.busy = true;
  c.req = d;
  c.out = &o_.requests[d.target];
  c.out_off = 0;
  c.sent_ns = now;
  r_.peak_in_flight = std::max(r_.peak_in_flight, ++in_flight_);
  writeSome(i);
}

void Engine::writeSome(size_t i) {
  Conn& c = conns_[i];
  while (c.busy && c.out_off < c.out->size()) {
    ssize_t n = write(c.fd, c.out->data() + c.out_off, c.out->size() - c.out_off);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;  // EPOLLOUT (edge) resumes
    } else {
      finish(i, 0);
      return;
    }
  }
}

// Records the answer (status 0: connection failure) and makes the
// connection available again.
void Engine::finish(size_t i, int status) {
  Conn& c = conns_[i];
  int64_t now = monoNs() - t0_;
  if (recorded(c.req)) {
    r_.samples.push_back(Sample{c.req.due_ns, toUs(now - c.req.due_ns),
                                toUs(c.sent_ns - t0_ - c.req.due_ns), c.req.target,
                                static_cast<uint16_t>(status)});
    last_done_ns_ = std::max(last_done_ns_, now);
  }
  c.busy = false;
  --in_flight_;
  if (status == 0 || c.parser.closeAfter()) {
    reopen(i);  // becomes idle once connected
    return;
  }
  c.in.erase(0, c.parser.consumed());
  c.parser.reset();
  idle_.push_back(i);
}

void Engine::onEvent(size_t i, uint32_t events) {
  Conn& c = conns_[i];
  if (c.connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      reopen(i);
      return;
    }
    c.connecting = false;
    idle_.push_back(i);
    return;
  }
  if (events & EPOLLOUT) writeSome(i);
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  char buf[65536];
  bool eof = false;
  for (;;) {
    ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      eof = n == 0 || errno != EAGAIN;
      break;
    }
  }
  if (c.busy) {
    switch (c.parser.parse(c.in)) {
      case ResponseParser::Result::kDone:
        finish(i, c.parser.status());
        return;
      case ResponseParser::Result::kError:
        finish(i, 0);
        return;
      case ResponseParser::Result::kNeedMore:
        break;
    }
  }
  if (eof) {
    if (c.busy) {
      finish(i, 0);
    } else {
      // The server closed an idle keep-alive connection: drop it from the
      // idle list and connect again.
      idle_.erase(std::remove(idle_.begin(), idle_.end(), i), idle_.end());
      reopen(i);
    }
  }
}

OpenLoopResult Engine::run() {
  addr_.sin_family = AF_INET;
  addr_.sin_port = htons(o_.port);
  if (inet_pton(AF_INET, o_.host.c_str(), &addr_.sin_addr) != 1) {
    r_.error = "bad IPv4 address " + o_.host;
    return std::move(r_);
  }
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  conns_.resize(static_cast<size_t>(std::max(1, o_.connections)));
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (!open(i)) {
      r_.error = "connect: " + std::string(strerror(errno));
      return std::move(r_);
    }
  }
  std::vector<epoll_event> events(1024);
  // All connections up before the clock starts: connecting is not load.
  int64_t setup_deadline = monoNs() + 10'000'000'000;
  while (idle_.size() < conns_.size() && r_.error.empty()) {
    if (monoNs() > setup_deadline) r_.error = "connections not established within 10 s";
    int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) onEvent(events[k].data.u64, events[k].events);
  }
  if (!r_.error.empty()) return std::move(r_);

  std::deque<Due> queue;  // due, waiting for an idle connection
  int64_t next_due = o_.arrivals->next();
  bool schedule_done = next_due >= o_.duration_ns;
  t0_ = monoNs();
  const int64_t end_ns = o_.duration_ns + o_.drain_ns;
  while (r_.error.empty()) {
    int64_t now = monoNs() - t0_;
    while (!schedule_done && next_due <= now) {
      Due d{next_due, static_cast<uint32_t>(o_.picker.pick())};
      if (recorded(d)) ++r_.scheduled;
      queue.push_back(d);
      next_due = o_.arrivals->next();
      schedule_done = next_due >= o_.duration_ns;
    }
    while (!queue.empty() && !idle_.empty()) {
      size_t i = idle_.back();
      idle_.pop_back();
      send(i, queue.front(), monoNs());
      queue.pop_front();
    }
    if (schedule_done && queue.empty() && in_flight_ == 0) break;
    if (now >= end_ns) break;
    if (o_.cancel != nullptr && o_.cancel->load(std::memory_order_relaxed)) break;
    int64_t wait_ns = schedule_done ? end_ns - now : next_due - now;
    if (!schedule_done) wait_ns = wait_ns > o_.spin_ns ? wait_ns - o_.spin_ns : 0;
    if (o_.cancel != nullptr) wait_ns = std::min<int64_t>(wait_ns, 100'000'000);
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                static_cast<long>(wait_ns % 1'000'000'000)};
    int n = epoll_pwait2(ep_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    for (int k = 0; k < n; ++k) onEvent(events[k].data.u64, events[k].events);
  }
  for (const Due& d : queue) r_.unfinished += recorded(d);
  for (const Conn& c : conns_) r_.unfinished += c.busy && recorded(c.req);
  r_.measured_ns = std::max(last_done_ns_, o_.duration_ns) - o_.warmup_ns;
  return std::move(r_);
}

}  // namespace

OpenLoopResult runOpenLoop(OpenLoopOptions options) {
  Engine e(options);
  return e.run();
}

}  // namespace waverless::load
