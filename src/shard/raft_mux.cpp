#include "shard/raft_mux.h"

// libraft 0.15's headers have no extern "C" guards of their own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <uv.h>

#include <array>
#include <cassert>
#include <cstring>
#include <map>
#include <set>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace waverless::shard {

namespace {

constexpr char kMagic[4] = {'W', 'L', 'R', 'F'};
constexpr uint8_t kVersion = 1;
constexpr size_t kNonce = 16;
constexpr size_t kMac = 32;
constexpr size_t kHelloFixed = 4 + 1 + 4 + 8 + 8 + 2;  // magic, version, group, from, to, addr len
constexpr size_t kMaxAddress = 255;
constexpr uint64_t kHandshakeTimeoutMs = 5000;

using Mac = std::array<unsigned char, kMac>;

void putBe(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t getBe(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

Mac hmac(const std::string& secret, const std::string& data) {
  Mac out{};
  unsigned int len = kMac;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

// What each side's MAC covers: the other side's fresh nonce and everything the HELLO claimed.
std::string macInput(char role, const unsigned char* nonce, uint32_t group, uint64_t from,
                     uint64_t to, std::string_view from_address) {
  std::string in(1, role);
  in.append(reinterpret_cast<const char*>(nonce), kNonce);
  putBe(in, group, 4);
  putBe(in, from, 8);
  putBe(in, to, 8);
  if (role == 'C') in.append(from_address);
  return in;
}

absl::StatusOr<sockaddr_in> parseAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  uint32_t port = 0;
  sockaddr_in addr{};
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port > 65535 ||
      uv_ip4_addr(address.substr(0, colon).c_str(), static_cast<int>(port), &addr) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft mux: address \"", address, "\" is not IPv4 \"host:port\""));
  }
  return addr;
}

struct Write {
  uv_write_t req;
  std::string data;
};

// Writes are self-contained: their callback may run after the stream changed hands.
int send(uv_tcp_t* tcp, std::string data) {
  auto* w = new Write{};
  w->data = std::move(data);
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rv = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp), &buf, 1,
                    [](uv_write_t* req, int) { delete static_cast<Write*>(req->data); });
  if (rv != 0) delete w;
  return rv;
}

}  // namespace

struct Handshake;

struct MuxGroup {
  RaftMux::Impl* mux = nullptr;
  uint32_t id = 0;
  raft_uv_transport transport{};
  raft_uv_accept_cb accept_cb = nullptr;
  bool closing = false;
  bool timer_closed = false;
  raft_uv_transport_close_cb close_cb = nullptr;
  uv_timer_t close_defer;  // closed in close(): its callback makes close_cb asynchronous
  std::set<Handshake*> connecting;
};

struct Handshake {
  RaftMux::Impl* mux = nullptr;
  bool outgoing = false;
  uv_tcp_t* tcp = nullptr;  // raft_malloc'd: raft frees it (raft_free) when it closes the stream
  uv_connect_t connect_req;
  uint64_t started_ms = 0;
  MuxGroup* group = nullptr;  // outgoing only
  raft_uv_connect* req = nullptr;
  raft_uv_connect_cb cb = nullptr;
  std::function<void(uv_tcp_t*)> channel_cb;  // outgoing channel
  uint32_t group_id = 0;
  uint64_t from = 0, to = 0;
  std::string from_address;
  sockaddr_in addr{};  // outgoing: where to connect
  unsigned char client_nonce[kNonce];
  unsigned char server_nonce[kNonce];
  enum Phase { kConnecting, kHelloHead, kHelloRest, kChallenge, kProof } phase = kConnecting;
  unsigned char buf[kHelloFixed + kMaxAddress + kNonce];
  size_t have = 0, want = 0;
  bool closing = false;
};

struct RaftMux::Impl {
  uv_loop_t* loop;
  uint64_t self_id;
  std::string secret;
  uint16_t port = 0;
  uv_tcp_t listener;
  uv_timer_t sweeper;
  bool listening = false;
  bool closing = false;
  int open_handles = 0;  // listener + sweeper while listening
  std::function<void()> closed;
  std::map<uint32_t, std::unique_ptr<MuxGroup>> groups;
  std::set<Handshake*> handshakes;  // owned
  RaftMux::ChannelAccept channel_accept;
  Stats stats;

  // ---- Both directions ----

  void readExactly(Handshake* h, size_t n) {
    h->have = 0;
    h->want = n;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(h->tcp),
        [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
          auto* hs = static_cast<Handshake*>(handle->data);
          *buf = uv_buf_init(reinterpret_cast<char*>(hs->buf + hs->have),
                             static_cast<unsigned>(hs->want - hs->have));
        },
        [](uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
          auto* hs = static_cast<Handshake*>(stream->data);
          if (nread == 0) return;
          if (nread < 0) {
            hs->mux->fail(hs);
            return;
          }
          hs->have += static_cast<size_t>(nread);
          if (hs->have == hs->want) hs->mux->onMessage(hs);
        });
  }

  void onMessage(Handshake* h) {
    switch (h->phase) {
      case Handshake::kHelloHead:
        return onHelloHead(h);
      case Handshake::kHelloRest:
        return onHelloRest(h);
      case Handshake::kChallenge:
        return onChallenge(h);
      case Handshake::kProof:
        return onProof(h);
      case Handshake::kConnecting:
        break;
    }
    fail(h);
  }

  // Closes the connection; an outgoing one reports `status` to raft first.
  void fail(Handshake* h, int status = RAFT_NOCONNECTION) {
    if (h->closing) return;
    h->closing = true;
    ++stats.refused;
    if (h->outgoing && h->cb != nullptr) {
      raft_uv_connect_cb cb = h->cb;
      h->cb = nullptr;
      cb(h->req, nullptr, status);
    }
    if (h->channel_cb) {
      auto cb = std::move(h->channel_cb);
      h->channel_cb = nullptr;
      cb(nullptr);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(h->tcp), [](uv_handle_t* handle) {
      auto* hs = static_cast<Handshake*>(handle->data);
      raft_free(hs->tcp);
      hs->mux->forget(hs);
    });
  }

  // Drops the handshake object; the stream is closed or belongs to raft now.
  void forget(Handshake* h) {
    MuxGroup* g = h->group;
    handshakes.erase(h);
    if (g != nullptr) g->connecting.erase(h);
    delete h;
    if (g != nullptr) maybeClosed(g);
    maybeDone();
  }

  // ---- Server side ----

  void onConnection() {
    auto* tcp = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
    if (tcp == nullptr) return;
    uv_tcp_init(loop, tcp);
    auto* h = new Handshake{};
    h->mux = this;
    h->tcp = tcp;
    tcp->data = h;
    h->started_ms = uv_now(loop);
    handshakes.insert(h);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener), reinterpret_cast<uv_stream_t*>(tcp)) !=
        0) {
      fail(h);
      return;
    }
    h->phase = Handshake::kHelloHead;
    readExactly(h, kHelloFixed);
  }

  void onHelloHead(Handshake* h) {
    const unsigned char* p = h->buf;
    if (std::memcmp(p, kMagic, 4) != 0 || p[4] != kVersion) return fail(h);
    h->group_id = static_cast<uint32_t>(getBe(p + 5, 4));
    h->from = getBe(p + 9, 8);
    h->to = getBe(p + 17, 8);
    size_t addr_len = getBe(p + 25, 2);
    if (h->to != self_id || addr_len == 0 || addr_len > kMaxAddress) return fail(h);
    h->phase = Handshake::kHelloRest;
    // The rest lands after the fixed part, so the buffer holds the whole HELLO.
    h->want = kHelloFixed + addr_len + kNonce;
  }

  void onHelloRest(Handshake* h) {
    size_t addr_len = h->want - kHelloFixed - kNonce;
    h->from_address.assign(reinterpret_cast<const char*>(h->buf + kHelloFixed), addr_len);
    std::memcpy(h->client_nonce, h->buf + kHelloFixed + addr_len, kNonce);
    if (RAND_bytes(h->server_nonce, kNonce) != 1) return fail(h);
    std::string challenge(reinterpret_cast<const char*>(h->server_nonce), kNonce);
    Mac mac = hmac(secret, macInput('S', h->client_nonce, h->group_id, h->from, h->to, {}));
    challenge.append(reinterpret_cast<const char*>(mac.data()), kMac);
    if (send(h->tcp, std::move(challenge)) != 0) return fail(h);
    h->phase = Handshake::kProof;
    h->have = 0;
    h->want = kMac;
  }

  void onProof(Handshake* h) {
    Mac expected =
        hmac(secret, macInput('C', h->server_nonce, h->group_id, h->from, h->to, h->from_address));
    if (CRYPTO_memcmp(expected.data(), h->buf, kMac) != 0) return fail(h);
    if (h->group_id == RaftMux::kChannel) {
      if (!channel_accept || closing) return fail(h);
      uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
      ++stats.accepted;
      uv_tcp_t* tcp = h->tcp;
      uint64_t from = h->from;
      std::string address = h->from_address;
      forget(h);
      channel_accept(from, address, tcp);
      return;
    }
    auto it = groups.find(h->group_id);
    if (it == groups.end() || it->second->accept_cb == nullptr || it->second->closing) {
      return fail(h);
    }
    uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
    ++stats.accepted;
    MuxGroup* g = it->second.get();
    uv_tcp_t* tcp = h->tcp;
    uint64_t from = h->from;
    std::string address = h->from_address;
    forget(h);
    g->accept_cb(&g->transport, from, address.c_str(), reinterpret_cast<uv_stream_t*>(tcp));
  }

  // ---- Client side ----

  int connect(MuxGroup* g, raft_uv_connect* req, raft_id id, const char* address,
              raft_uv_connect_cb cb) {
    if (g->closing) return RAFT_CANCELED;
    Handshake* h = nullptr;
    int rv = dial(id, address, g->id, &h);
    if (rv != 0) return rv;
    h->group = g;
    h->req = req;
    h->cb = cb;
    g->connecting.insert(h);
    return startConnect(h);
  }

  // An outgoing handshake for group_id, not yet connecting.
  int dial(uint64_t to, const char* address, uint32_t group_id, Handshake** out) {
    absl::StatusOr<sockaddr_in> addr = parseAddress(address);
    if (!addr.ok()) return RAFT_NOCONNECTION;
    auto* tcp = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
    if (tcp == nullptr) return RAFT_NOMEM;
    uv_tcp_init(loop, tcp);
    auto* h = new Handshake{};
    h->mux = this;
    h->outgoing = true;
    h->tcp = tcp;
    tcp->data = h;
    h->started_ms = uv_now(loop);
    h->group_id = group_id;
    h->from = self_id;
    h->to = to;
    h->from_address = self_address;
    h->connect_req.data = h;
    h->addr = *addr;
    handshakes.insert(h);
    *out = h;
    return 0;
  }

  int startConnect(Handshake* h) {
    const sockaddr_in addr = h->addr;
    uv_tcp_t* tcp = h->tcp;
    int rv = uv_tcp_connect(&h->connect_req, tcp, reinterpret_cast<const sockaddr*>(&addr),
                            [](uv_connect_t* connect, int status) {
                              auto* hs = static_cast<Handshake*>(connect->data);
                              if (hs->closing) return;
                              if (status != 0) return hs->mux->fail(hs);
                              hs->mux->sendHello(hs);
                            });
    if (rv != 0) {
      h->cb = nullptr;  // reported by the return value instead (a channel's done runs in fail)
      fail(h);
      return RAFT_NOCONNECTION;
    }
    return 0;
  }

  void sendHello(Handshake* h) {
    if (RAND_bytes(h->client_nonce, kNonce) != 1) return fail(h);
    std::string hello(kMagic, 4);
    hello.push_back(static_cast<char>(kVersion));
    putBe(hello, h->group_id, 4);
    putBe(hello, h->from, 8);
    putBe(hello, h->to, 8);
    putBe(hello, h->from_address.size(), 2);
    hello.append(h->from_address);
    hello.append(reinterpret_cast<const char*>(h->client_nonce), kNonce);
    if (send(h->tcp, std::move(hello)) != 0) return fail(h);
    h->phase = Handshake::kChallenge;
    readExactly(h, kNonce + kMac);
  }

  void onChallenge(Handshake* h) {
    std::memcpy(h->server_nonce, h->buf, kNonce);
    Mac expected = hmac(secret, macInput('S', h->client_nonce, h->group_id, h->from, h->to, {}));
    if (CRYPTO_memcmp(expected.data(), h->buf + kNonce, kMac) != 0) return fail(h);
    Mac proof =
        hmac(secret, macInput('C', h->server_nonce, h->group_id, h->from, h->to, h->from_address));
    if (send(h->tcp, std::string(reinterpret_cast<const char*>(proof.data()), kMac)) != 0) {
      return fail(h);
    }
    uv_read_stop(reinterpret_cast<uv_stream_t*>(h->tcp));
    ++stats.accepted;
    if (h->channel_cb) {
      auto done = std::move(h->channel_cb);
      h->channel_cb = nullptr;
      uv_tcp_t* tcp = h->tcp;
      forget(h);
      done(tcp);  // its frames queue behind PROOF on the same stream
      return;
    }
    raft_uv_connect_cb cb = h->cb;
    raft_uv_connect* req = h->req;
    uv_tcp_t* tcp = h->tcp;
    h->cb = nullptr;
    forget(h);
    // raft's messages queue behind PROOF on the same stream.
    cb(req, reinterpret_cast<uv_stream_t*>(tcp), 0);
  }

  // ---- Closing ----

  void closeGroup(MuxGroup* g, raft_uv_transport_close_cb cb) {
    g->closing = true;
    g->close_cb = cb;
    std::set<Handshake*> pending = g->connecting;
    for (Handshake* h : pending) fail(h, RAFT_CANCELED);
    uv_close(reinterpret_cast<uv_handle_t*>(&g->close_defer), [](uv_handle_t* handle) {
      auto* group = static_cast<MuxGroup*>(handle->data);
      group->timer_closed = true;
      group->mux->maybeClosed(group);
    });
  }

  void maybeClosed(MuxGroup* g) {
    if (!g->closing || !g->timer_closed || !g->connecting.empty() || g->close_cb == nullptr) return;
    raft_uv_transport_close_cb cb = g->close_cb;
    g->close_cb = nullptr;
    cb(&g->transport);
  }

  void sweep() {
    uint64_t now = uv_now(loop);
    std::vector<Handshake*> late;
    for (Handshake* h : handshakes) {
      if (!h->closing && now - h->started_ms > kHandshakeTimeoutMs) late.push_back(h);
    }
    for (Handshake* h : late) fail(h);
  }

  void maybeDone() {
    if (closing && open_handles == 0 && handshakes.empty() && closed) {
      auto done = std::move(closed);
      closed = nullptr;
      done();
    }
  }

  std::string self_address;  // what outgoing HELLOs claim; set by listen()
};

// ---- raft_uv_transport, one per group ----

namespace {

MuxGroup* groupOf(raft_uv_transport* t) { return static_cast<MuxGroup*>(t->impl); }

int muxInit(raft_uv_transport*, raft_id, const char*) { return 0; }

int muxListen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  groupOf(t)->accept_cb = cb;
  return 0;
}

int muxConnect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
               raft_uv_connect_cb cb) {
  MuxGroup* g = groupOf(t);
  return g->mux->connect(g, req, id, address, cb);
}

void muxClose(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  MuxGroup* g = groupOf(t);
  g->mux->closeGroup(g, cb);
}

}  // namespace

RaftMux::RaftMux(uv_loop_s* loop, uint64_t self_id, std::string secret)
    : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->self_id = self_id;
  impl_->secret = std::move(secret);
}

RaftMux::~RaftMux() {
  assert(impl_->handshakes.empty());
  assert(!impl_->listening || impl_->open_handles == 0);
}

absl::Status RaftMux::listen(const std::string& address) {
  Impl& m = *impl_;
  absl::StatusOr<sockaddr_in> addr = parseAddress(address);
  if (!addr.ok()) return addr.status();
  uv_tcp_init(m.loop, &m.listener);
  uv_timer_init(m.loop, &m.sweeper);
  m.listener.data = &m;
  m.sweeper.data = &m;
  m.listening = true;
  m.open_handles = 2;
  int rv = uv_tcp_bind(&m.listener, reinterpret_cast<const sockaddr*>(&*addr), 0);
  if (rv == 0) {
    rv = uv_listen(reinterpret_cast<uv_stream_t*>(&m.listener), 128,
                   [](uv_stream_t* server, int status) {
                     auto* mux = static_cast<Impl*>(server->data);
                     if (status == 0 && !mux->closing) mux->onConnection();
                   });
  }
  if (rv != 0) {
    return absl::UnavailableError(
        absl::StrCat("raft mux: listen on ", address, ": ", uv_strerror(rv)));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&m.listener, reinterpret_cast<sockaddr*>(&bound), &len);
  m.port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  m.self_address = absl::StrCat(address.substr(0, address.rfind(':')), ":", m.port);
  uv_timer_start(
      &m.sweeper, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->sweep(); }, 1000, 1000);
  return absl::OkStatus();
}

uint16_t RaftMux::boundPort() const { return impl_->port; }

raft_uv_transport* RaftMux::transportFor(uint32_t group) {
  auto g = std::make_unique<MuxGroup>();
  g->mux = impl_.get();
  g->id = group;
  g->transport.impl = g.get();
  g->transport.init = muxInit;
  g->transport.listen = muxListen;
  g->transport.connect = muxConnect;
  g->transport.close = muxClose;
  uv_timer_init(impl_->loop, &g->close_defer);
  g->close_defer.data = g.get();
  raft_uv_transport* t = &g->transport;
  impl_->groups[group] = std::move(g);
  return t;
}

void RaftMux::release(uint32_t group) {
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end()) return;
  MuxGroup* g = it->second.release();
  impl_->groups.erase(it);
  if (g->timer_closed) {
    delete g;
  } else if (!g->closing) {
    // Never opened by raft (its I/O failed to start): the timer is still open.
    uv_close(reinterpret_cast<uv_handle_t*>(&g->close_defer),
             [](uv_handle_t* handle) { delete static_cast<MuxGroup*>(handle->data); });
  } else {
    assert(false && "release() before the transport finished closing");
  }
}

void RaftMux::close(std::function<void()> done) {
  Impl& m = *impl_;
  m.closing = true;
  m.closed = std::move(done);
  std::set<Handshake*> pending = m.handshakes;
  for (Handshake* h : pending) m.fail(h, RAFT_CANCELED);
  if (m.listening) {
    auto closed = [](uv_handle_t* handle) {
      auto* mux = static_cast<Impl*>(handle->data);
      --mux->open_handles;
      mux->maybeDone();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&m.listener), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&m.sweeper), closed);
  } else {
    m.maybeDone();
  }
}

void RaftMux::onChannel(ChannelAccept accept) { impl_->channel_accept = std::move(accept); }

void RaftMux::connectChannel(uint64_t to, const std::string& address,
                             std::function<void(uv_tcp_s*)> done) {
  Impl& m = *impl_;
  Handshake* h = nullptr;
  if (m.closing || m.dial(to, address.c_str(), kChannel, &h) != 0) return done(nullptr);
  h->channel_cb = std::move(done);
  m.startConnect(h);  // a failure reaches done through fail()
}

RaftMux::Stats RaftMux::stats() const { return impl_->stats; }

}  // namespace waverless::shard
