#include "shard/raft_wire.h"

#include <uv.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "shard/raft_log_format.h"
#include "shard/raft_mux.h"

namespace waverless::shard {

using raft_log_format::decodeConfiguration;
using raft_log_format::encodeConfiguration;
using raft_log_format::put32;
using raft_log_format::put64;
using raft_log_format::Reader;

// ---- Messages ----

void encodeMessage(const raft_message& m, std::string& out) {
  out.push_back(static_cast<char>(m.type));
  switch (m.type) {
    case RAFT_IO_REQUEST_VOTE: {
      const raft_request_vote& v = m.request_vote;
      put64(out, v.term);
      put64(out, v.candidate_id);
      put64(out, v.last_log_index);
      put64(out, v.last_log_term);
      out.push_back(static_cast<char>((v.disrupt_leader ? 1 : 0) | (v.pre_vote ? 2 : 0)));
      break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
      const raft_request_vote_result& v = m.request_vote_result;
      put64(out, v.term);
      out.push_back(static_cast<char>(v.vote_granted ? 1 : 0));
      out.push_back(static_cast<char>(v.pre_vote));
      break;
    }
    case RAFT_IO_APPEND_ENTRIES: {
      const raft_append_entries& a = m.append_entries;
      put64(out, a.term);
      put64(out, a.prev_log_index);
      put64(out, a.prev_log_term);
      put64(out, a.leader_commit);
      put32(out, a.n_entries);
      for (unsigned i = 0; i < a.n_entries; ++i) {
        const raft_entry& e = a.entries[i];
        put64(out, e.term);
        out.push_back(static_cast<char>(e.type));
        put32(out, static_cast<uint32_t>(e.buf.len));
        out.append(static_cast<const char*>(e.buf.base), e.buf.len);
      }
      break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
      const raft_append_entries_result& r = m.append_entries_result;
      put64(out, r.term);
      put64(out, r.rejected);
      put64(out, r.last_log_index);
      break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
      const raft_install_snapshot& s = m.install_snapshot;
      put64(out, s.term);
      put64(out, s.last_index);
      put64(out, s.last_term);
      put64(out, s.conf_index);
      encodeConfiguration(out, s.conf);
      put64(out, s.data.len);
      out.append(static_cast<const char*>(s.data.base), s.data.len);
      break;
    }
    case RAFT_IO_TIMEOUT_NOW: {
      const raft_timeout_now& t = m.timeout_now;
      put64(out, t.term);
      put64(out, t.last_log_index);
      put64(out, t.last_log_term);
      break;
    }
    default:
      break;
  }
}

namespace {

bool decodeEntries(Reader& r, raft_append_entries* a) {
  const uint64_t n = r.num(4);
  a->entries = nullptr;
  a->n_entries = 0;
  if (!r.ok) return false;
  if (n == 0) return true;
  // Each entry takes at least 13 bytes: a count beyond what the frame holds is malformed.
  if (n > r.in.size() / 13) return false;
  // Two passes: the sizes first, so every payload lands in one batch buffer, as raft expects.
  Reader sizing = r;
  size_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    sizing.num(8);
    sizing.num(1);
    const uint64_t len = sizing.num(4);
    if (!sizing.ok || sizing.in.size() < len) return false;
    sizing.in.remove_prefix(len);
    total += len;
  }
  auto* entries = static_cast<raft_entry*>(raft_calloc(n, sizeof(raft_entry)));
  auto* batch = static_cast<char*>(raft_malloc(total == 0 ? 1 : total));
  if (entries == nullptr || batch == nullptr) {
    raft_free(entries);
    raft_free(batch);
    return false;
  }
  size_t at = 0;
  for (uint64_t i = 0; i < n; ++i) {
    raft_entry& e = entries[i];
    e.term = r.num(8);
    e.type = static_cast<unsigned short>(r.num(1));
    const uint64_t len = r.num(4);
    std::memcpy(batch + at, r.in.data(), len);
    r.in.remove_prefix(len);
    e.buf.base = batch + at;
    e.buf.len = len;
    e.batch = batch;
    at += len;
  }
  a->entries = entries;
  a->n_entries = static_cast<unsigned>(n);
  return true;
}

}  // namespace

bool decodeMessage(std::string_view in, raft_message* m) {
  *m = raft_message{};
  Reader r{in};
  m->type = static_cast<unsigned short>(r.num(1));
  switch (m->type) {
    case RAFT_IO_REQUEST_VOTE: {
      raft_request_vote& v = m->request_vote;
      v.term = r.num(8);
      v.candidate_id = r.num(8);
      v.last_log_index = r.num(8);
      v.last_log_term = r.num(8);
      const uint64_t flags = r.num(1);
      v.disrupt_leader = (flags & 1) != 0;
      v.pre_vote = (flags & 2) != 0;
      break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT: {
      raft_request_vote_result& v = m->request_vote_result;
      v.term = r.num(8);
      v.vote_granted = r.num(1) != 0;
      const uint64_t pre = r.num(1);
      if (pre > raft_tribool_false) return false;
      v.pre_vote = static_cast<raft_tribool>(pre);
      break;
    }
    case RAFT_IO_APPEND_ENTRIES: {
      raft_append_entries& a = m->append_entries;
      a.term = r.num(8);
      a.prev_log_index = r.num(8);
      a.prev_log_term = r.num(8);
      a.leader_commit = r.num(8);
      if (!r.ok || !decodeEntries(r, &a)) return false;
      break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
      raft_append_entries_result& res = m->append_entries_result;
      res.term = r.num(8);
      res.rejected = r.num(8);
      res.last_log_index = r.num(8);
      break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
      raft_install_snapshot& s = m->install_snapshot;
      s.term = r.num(8);
      s.last_index = r.num(8);
      s.last_term = r.num(8);
      s.conf_index = r.num(8);
      if (!r.ok || !decodeConfiguration(r, &s.conf)) return false;
      const uint64_t len = r.num(8);
      if (!r.ok || r.in.size() != len) {
        raft_configuration_close(&s.conf);
        return false;
      }
      s.data.base = raft_malloc(len == 0 ? 1 : len);
      if (s.data.base == nullptr) {
        raft_configuration_close(&s.conf);
        return false;
      }
      std::memcpy(s.data.base, r.in.data(), len);
      s.data.len = len;
      r.in.remove_prefix(len);
      break;
    }
    case RAFT_IO_TIMEOUT_NOW: {
      raft_timeout_now& t = m->timeout_now;
      t.term = r.num(8);
      t.last_log_index = r.num(8);
      t.last_log_term = r.num(8);
      break;
    }
    default:
      return false;
  }
  if (r.ok && r.in.empty()) return true;
  discardMessage(m);
  return false;
}

void discardMessage(raft_message* m) {
  if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.entries != nullptr) {
    if (m->append_entries.n_entries > 0) raft_free(m->append_entries.entries[0].batch);
    raft_free(m->append_entries.entries);
    m->append_entries.entries = nullptr;
  } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
    m->install_snapshot.data.base = nullptr;
  }
}

// ---- Channels ----

namespace {

// Bytes a peer may have waiting (ours plus libuv's write queue) before its messages are dropped:
// a paused peer must not grow this node's memory without bound.
constexpr size_t kMaxBuffered = 64 << 20;
// Largest frame accepted: an InstallSnapshot carries a whole group.
constexpr uint32_t kMaxFrame = 1u << 30;
constexpr uint64_t kMinBackoffMs = 20, kMaxBackoffMs = 500;

}  // namespace

struct OutChannel {
  RaftWire::Impl* wire = nullptr;
  uint64_t id = 0;
  std::string address;
  uv_tcp_t* tcp = nullptr;  // null: not connected
  bool connecting = false;
  uint64_t retry_at_ms = 0, backoff_ms = 0;
  std::string out;  // frames for the next write
};

struct InChannel {
  RaftWire::Impl* wire = nullptr;
  uv_tcp_t* tcp = nullptr;
  uint64_t from = 0;
  std::string address;
  std::string in;  // bytes of frames not yet complete
  bool closing = false;
};

struct WriteReq {
  uv_write_t req;
  std::string data;
  OutChannel* channel;
  uv_tcp_t* tcp;
};

struct RaftWire::Impl {
  struct Receiver {
    raft_io* io;
    raft_io_recv_cb recv;
  };
  struct Sent {
    uint32_t group;
    raft_io_send* req;
    raft_io_send_cb cb;  // may be null: libraft sends a transfer's TimeoutNow without one
    int status;
    void fire(int st) const {
      if (cb != nullptr) cb(req, st);
    }
  };

  uv_loop_t* loop = nullptr;
  RaftMux* mux = nullptr;
  uv_idle_t flusher{};
  bool flush_pending = false;
  bool closing = false;
  int open_handles = 0;
  std::function<void()> closed;
  std::map<std::string, std::unique_ptr<OutChannel>> peers;  // by address
  std::set<InChannel*> inbound;                              // owned
  std::unordered_map<uint32_t, Receiver> receivers;
  std::vector<Sent> sent;  // callbacks for the next flush
  Stats stats;
  char scratch[64 << 10];  // every read lands here: the loop reads one stream at a time

  void schedule() {
    if (flush_pending || closing) return;
    flush_pending = true;
    // An active idle handle also keeps the loop from blocking in poll with frames unsent.
    uv_idle_start(&flusher, [](uv_idle_t* h) { static_cast<Impl*>(h->data)->flush(); });
  }

  void flush() {
    flush_pending = false;
    uv_idle_stop(&flusher);
    for (auto& [address, p] : peers) {
      if (p->tcp != nullptr && !p->out.empty()) write(p.get());
    }
    std::vector<Sent> done;
    done.swap(sent);
    for (Sent& s : done) s.fire(s.status);
  }

  void write(OutChannel* p) {
    auto* w = new WriteReq{};
    w->data.swap(p->out);
    w->channel = p;
    w->tcp = p->tcp;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    ++stats.writes;
    int rv = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(p->tcp), &buf, 1,
                      [](uv_write_t* req, int status) {
                        auto* wr = static_cast<WriteReq*>(req->data);
                        // A channel closed and reconnected since: this write was its old stream's.
                        if (status != 0 && wr->channel->tcp == wr->tcp)
                          wr->channel->wire->disconnect(wr->channel);
                        delete wr;
                      });
    if (rv != 0) {
      delete w;
      disconnect(p);
    }
  }

  OutChannel* peer(uint64_t id, const char* address) {
    auto it = peers.find(address);
    if (it != peers.end()) return it->second.get();
    auto p = std::make_unique<OutChannel>();
    p->wire = this;
    p->id = id;
    p->address = address;
    OutChannel* raw = p.get();
    peers.emplace(address, std::move(p));
    return raw;
  }

  void connect(OutChannel* p) {
    if (p->connecting || p->tcp != nullptr || closing || uv_now(loop) < p->retry_at_ms) return;
    p->connecting = true;
    mux->connectChannel(p->id, p->address, [this, p](uv_tcp_t* tcp) { onConnected(p, tcp); });
  }

  void onConnected(OutChannel* p, uv_tcp_t* tcp) {
    p->connecting = false;
    if (tcp == nullptr || closing) {
      if (tcp != nullptr) closeStream(tcp);
      p->out.clear();  // raft sends again; these were for a connection that never came
      p->backoff_ms = std::min(kMaxBackoffMs, std::max(kMinBackoffMs, p->backoff_ms * 2));
      p->retry_at_ms = uv_now(loop) + p->backoff_ms;
      return;
    }
    p->tcp = tcp;
    p->backoff_ms = 0;
    tcp->data = p;
    uv_tcp_nodelay(tcp, 1);
    // The peer never writes on a channel it accepted: a read ends only in EOF or an error, which
    // is how a dead peer is noticed before the next write fails.
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* ch = static_cast<OutChannel*>(h->data);
          *buf = uv_buf_init(ch->wire->scratch, sizeof ch->wire->scratch);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
          auto* ch = static_cast<OutChannel*>(s->data);
          if (nread < 0) ch->wire->disconnect(ch);
        });
    if (!p->out.empty()) schedule();
  }

  void disconnect(OutChannel* p) {
    if (p->tcp == nullptr) return;
    closeStream(p->tcp);
    p->tcp = nullptr;
    p->out.clear();
  }

  void closeStream(uv_tcp_t* tcp) {
    ++open_handles;
    tcp->data = this;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) {
      auto* self = static_cast<Impl*>(h->data);
      raft_free(h);
      --self->open_handles;
      self->maybeClosed();
    });
  }

  void accept(uint64_t from, const std::string& address, uv_tcp_t* tcp) {
    if (closing) return closeStream(tcp);
    auto* c = new InChannel{};
    c->wire = this;
    c->tcp = tcp;
    c->from = from;
    c->address = address;
    tcp->data = c;
    inbound.insert(c);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* ch = static_cast<InChannel*>(h->data);
          *buf = uv_buf_init(ch->wire->scratch, sizeof ch->wire->scratch);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
          auto* ch = static_cast<InChannel*>(s->data);
          if (nread == 0) return;
          if (nread < 0) return ch->wire->drop(ch);
          ch->wire->onData(ch, std::string_view(buf->base, static_cast<size_t>(nread)));
        });
  }

  void onData(InChannel* c, std::string_view data) {
    // Complete frames are decoded straight from the read; only a trailing partial frame is kept.
    std::string_view view = data;
    if (!c->in.empty()) {
      c->in.append(data);
      view = c->in;
    }
    size_t at = 0;
    while (!c->closing && view.size() - at >= 8) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(view.data() + at);
      const uint32_t len = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
      if (len < 5 || len > kMaxFrame) return refuse(c, "frame length out of range");
      if (view.size() - at - 4 < len) break;
      const uint32_t group =
          uint32_t{p[4]} << 24 | uint32_t{p[5]} << 16 | uint32_t{p[6]} << 8 | p[7];
      deliver(c, group, view.substr(at + 8, len - 4));
      at += 4 + len;
    }
    if (c->closing) return;
    std::string rest(view.substr(at));
    c->in.swap(rest);
  }

  void deliver(InChannel* c, uint32_t group, std::string_view body) {
    raft_message m;
    if (!decodeMessage(body, &m)) return refuse(c, "malformed message");
    ++stats.messages_received;
    auto it = receivers.find(group);
    if (it == receivers.end()) {
      discardMessage(&m);  // a group not (or no longer) open here: raft's retries cover it
      return;
    }
    m.server_id = c->from;
    m.server_address = c->address.c_str();
    it->second.recv(it->second.io, &m);
  }

  void refuse(InChannel* c, const char* why) {
    fprintf(stderr, "level=warn msg=\"raft channel from node %llu (%s) closed: %s\"\n",
            static_cast<unsigned long long>(c->from), c->address.c_str(), why);
    drop(c);
  }

  void drop(InChannel* c) {
    if (c->closing) return;
    c->closing = true;
    inbound.erase(c);
    ++open_handles;
    c->tcp->data = c;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
      auto* ch = static_cast<InChannel*>(h->data);
      Impl* self = ch->wire;
      raft_free(h);
      delete ch;
      --self->open_handles;
      self->maybeClosed();
    });
  }

  void maybeClosed() {
    if (closing && open_handles == 0 && closed) {
      auto done = std::move(closed);
      closed = nullptr;
      done();
    }
  }
};

RaftWire::RaftWire(uv_loop_s* loop, RaftMux& mux) : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.loop = loop;
  w.mux = &mux;
  uv_idle_init(loop, &w.flusher);
  w.flusher.data = &w;
  w.open_handles = 1;  // the flusher
  mux.onChannel([&w](uint64_t from, const std::string& address, uv_tcp_t* tcp) {
    w.accept(from, address, tcp);
  });
}

RaftWire::~RaftWire() = default;

void RaftWire::attach(uint32_t group, raft_io* io, raft_io_recv_cb recv) {
  impl_->receivers[group] = Impl::Receiver{io, recv};
}

void RaftWire::detach(uint32_t group) {
  Impl& w = *impl_;
  w.receivers.erase(group);
  std::vector<Impl::Sent> mine;
  std::erase_if(w.sent, [&](const Impl::Sent& s) {
    if (s.group != group) return false;
    mine.push_back(s);
    return true;
  });
  for (Impl::Sent& s : mine) s.fire(RAFT_CANCELED);
}

int RaftWire::send(uint32_t group, raft_io_send* req, const raft_message* m, raft_io_send_cb cb) {
  Impl& w = *impl_;
  if (w.closing) return RAFT_CANCELED;
  req->cb = cb;
  OutChannel* p = w.peer(m->server_id, m->server_address);
  w.connect(p);
  int status = 0;
  const size_t queued =
      p->out.size() + (p->tcp != nullptr
                           ? uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(p->tcp))
                           : 0);
  if ((p->tcp == nullptr && !p->connecting) || queued > kMaxBuffered) {
    status = RAFT_NOCONNECTION;
    ++w.stats.dropped;
  } else {
    const size_t start = p->out.size();
    put32(p->out, 0);  // the length, once known
    put32(p->out, group);
    encodeMessage(*m, p->out);
    const auto len = static_cast<uint32_t>(p->out.size() - start - 4);
    for (int i = 0; i < 4; ++i) p->out[start + i] = static_cast<char>(len >> (8 * (3 - i)));
    ++w.stats.messages_sent;
  }
  w.sent.push_back({group, req, cb, status});
  w.schedule();
  return 0;
}

void RaftWire::close(std::function<void()> done) {
  Impl& w = *impl_;
  w.closing = true;
  w.closed = std::move(done);
  w.mux->onChannel(nullptr);
  std::vector<Impl::Sent> pending;
  pending.swap(w.sent);
  for (Impl::Sent& s : pending) s.fire(RAFT_CANCELED);
  for (auto& [address, p] : w.peers) w.disconnect(p.get());
  std::set<InChannel*> in = w.inbound;
  for (InChannel* c : in) w.drop(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&w.flusher), [](uv_handle_t* h) {
    auto* self = static_cast<Impl*>(h->data);
    --self->open_handles;
    self->maybeClosed();
  });
}

RaftWire::Stats RaftWire::stats() const { return impl_->stats; }

}  // namespace waverless::shard
