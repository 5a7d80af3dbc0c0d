#include "net/peer.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "common/status_map.h"
#include "net/waverless.grpc.pb.h"

namespace waverless::net {

namespace {

using Clock = std::chrono::steady_clock;

absl::Status toStatus(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return common::fromRpc(s.error_code(), what + ": " + s.error_message());
}

absl::Status fromAck(const pb::Ack& a) { return common::fromWire(a.code(), a.message()); }

// One direction of a peer stream, shared by every thread that sends on it. The thread that finds
// no write in progress becomes the writer and sends everything queued, including what others
// queue while it is inside the blocking Write(): under load one stream message (one HTTP/2 frame,
// one wakeup of the reading thread) carries many envelopes, and no sender waits for another's.
class Outbox {
 public:
  // Queues e and, unless another thread is writing, writes until the queue is empty. False when
  // the stream failed a write or was closed: the envelope may be lost (its caller's stream is
  // broken and its pending calls fail with it).
  template <class Stream>
  bool send(Stream* rw, pb::Envelope e) {
    std::unique_lock lock(mu_);
    if (closed_) return false;
    queued_.push_back(std::move(e));
    if (writing_) return !failed_;
    writing_ = true;
    while (!queued_.empty() && !failed_) {
      pb::Envelopes batch;
      size_t bytes = 0;
      // Bounded so that a burst of large envelopes never exceeds the message limit.
      while (!queued_.empty() && (batch.items_size() == 0 || bytes < kBatchBytes)) {
        bytes += queued_.front().ByteSizeLong();
        *batch.add_items() = std::move(queued_.front());
        queued_.pop_front();
      }
      lock.unlock();
      bool ok = rw->Write(batch);
      lock.lock();
      if (!ok) failed_ = true;
    }
    queued_.clear();
    writing_ = false;
    idle_.notify_all();
    return !failed_;
  }

  // Refuses further sends and waits out a write in progress, so the stream can be destroyed.
  void close() {
    std::unique_lock lock(mu_);
    closed_ = true;
    idle_.wait(lock, [&] { return !writing_; });
  }

 private:
  static constexpr size_t kBatchBytes = 4 << 20;
  std::mutex mu_;
  std::condition_variable idle_;
  std::deque<pb::Envelope> queued_;  // guarded by mu_
  bool writing_ = false;             // guarded by mu_
  bool failed_ = false;              // guarded by mu_
  bool closed_ = false;              // guarded by mu_
};

// The sync gRPC service: each peer's stream occupies one server thread that
// reads; replies are written from whichever thread finishes the work.
class Service final : public pb::Peer::Service {
 public:
  explicit Service(PeerHandler& h) : handler_(h) {}

  grpc::Status Stream(grpc::ServerContext*,
                      grpc::ServerReaderWriter<pb::Envelopes, pb::Envelopes>* rw) override {
    auto out = std::make_shared<Outbox>();
    pb::Envelopes batch;
    while (rw->Read(&batch)) {
      for (pb::Envelope& env : *batch.mutable_items()) {
        handler_.onEnvelope(std::move(env),
                            [out, rw](pb::Envelope reply) { out->send(rw, std::move(reply)); });
      }
      batch.Clear();
    }
    // Replies that finish later are dropped: the client already failed
    // those calls when its stream broke.
    out->close();
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest* req,
                         pb::HeartbeatReply* reply) override {
    *reply = handler_.heartbeat(*req);
    return grpc::Status::OK;
  }
  grpc::Status InstallApp(grpc::ServerContext*, const pb::AppPackage* req,
                          pb::Ack* reply) override {
    *reply = handler_.installApp(*req);
    return grpc::Status::OK;
  }
  grpc::Status FetchApp(grpc::ServerContext*, const pb::AppName* req,
                        pb::AppPackage* reply) override {
    auto p = handler_.fetchApp(req->name());
    if (!p.ok())
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(p.status().message()));
    *reply = std::move(*p);
    return grpc::Status::OK;
  }
  grpc::Status RemoveApp(grpc::ServerContext*, const pb::AppRemoval* req, pb::Ack* reply) override {
    *reply = handler_.removeApp(req->name(), req->cluster() ? Removal::kCluster : Removal::kHere);
    return grpc::Status::OK;
  }
  grpc::Status MetaPut(grpc::ServerContext*, const pb::MetaEntry* req, pb::Ack* reply) override {
    *reply = handler_.metaPut(*req);
    return grpc::Status::OK;
  }

 private:
  PeerHandler& handler_;
};

}  // namespace

// --- server -------------------------------------------------------------------

struct RpcServer::Impl {
  std::string bind;
  Service service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  Impl(std::string b, PeerHandler& h) : bind(std::move(b)), service(h) {}
};

RpcServer::RpcServer(std::string bind_address, PeerHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(bind_address), handler)) {}

RpcServer::~RpcServer() { stop(); }

absl::Status RpcServer::start() {
  grpc::ServerBuilder b;
  b.AddListeningPort(impl_->bind, grpc::InsecureServerCredentials(), &impl_->port);
  b.RegisterService(&impl_->service);
  b.SetMaxReceiveMessageSize(kMaxMessageBytes);
  b.SetMaxSendMessageSize(kMaxMessageBytes);
  // Dead peers are noticed by keepalive pings, not only by the next write.
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  impl_->server = b.BuildAndStart();
  if (!impl_->server || impl_->port == 0) {
    return absl::UnavailableError("cannot listen for peers on " + impl_->bind);
  }
  return absl::OkStatus();
}

void RpcServer::stop() {
  if (impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    impl_->server->Wait();
    impl_->server.reset();
  }
}

int RpcServer::port() const { return impl_->port; }

// --- client -------------------------------------------------------------------

struct PeerClient::Impl {
  struct Conn {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReaderWriter<pb::Envelopes, pb::Envelopes>> rw;
    Outbox out;
  };
  struct Pending {
    absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)> cb;
    Clock::time_point deadline;
    Conn* conn;
  };

  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Peer::Stub> stub;

  std::mutex mu;
  std::shared_ptr<Conn> conn;           // guarded by mu; null: reconnect on next call
  std::map<uint64_t, Pending> pending;  // guarded by mu
  uint64_t next_id = 1;                 // guarded by mu
  std::list<std::jthread> readers;      // guarded by mu
  bool closed = false;                  // guarded by mu
  std::atomic<uint64_t> sent{0}, received{0}, reconnects{0};
  std::jthread sweeper;

  explicit Impl(std::string addr) : address(std::move(addr)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    // Reconnect quickly after a peer restarts.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    stub = pb::Peer::NewStub(channel);
    sweeper = std::jthread([this](std::stop_token st) { sweep(st); });
  }

  // Fails every pending call of conn c (all when c is null).
  void failLocked(Conn* c, const absl::Status& why,
                  std::vector<absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)>>* out) {
    for (auto it = pending.begin(); it != pending.end();) {
      if (c == nullptr || it->second.conn == c) {
        out->push_back(std::move(it->second.cb));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    (void)why;
  }

  std::shared_ptr<Conn> connectLocked() {
    auto c = std::make_shared<Conn>();
    c->ctx = std::make_unique<grpc::ClientContext>();
    c->ctx->set_wait_for_ready(false);
    c->rw = stub->Stream(c->ctx.get());
    conn = c;
    reconnects++;
    readers.emplace_back([this, c](std::stop_token) { readLoop(c); });
    return c;
  }

  void readLoop(std::shared_ptr<Conn> c) {
    pb::Envelopes batch;
    while (c->rw->Read(&batch)) {
      for (pb::Envelope& env : *batch.mutable_items()) {
        received += env.ByteSizeLong();
        absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)> cb;
        {
          std::lock_guard lock(mu);
          auto it = pending.find(env.id());
          if (it == pending.end()) continue;  // timed out already
          cb = std::move(it->second.cb);
          pending.erase(it);
        }
        cb(std::move(env));
      }
      batch.Clear();
    }
    grpc::Status st = c->rw->Finish();
    std::vector<absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)>> failed;
    absl::Status why = absl::UnavailableError(
        "connection to " + address + " lost: " + (st.ok() ? "closed" : st.error_message()));
    {
      std::lock_guard lock(mu);
      if (conn == c) conn.reset();
      failLocked(c.get(), why, &failed);
    }
    for (auto& cb : failed) cb(why);
  }

  void sweep(std::stop_token st) {
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto now = Clock::now();
      std::vector<absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)>> expired;
      {
        std::lock_guard lock(mu);
        for (auto it = pending.begin(); it != pending.end();) {
          if (it->second.deadline <= now) {
            expired.push_back(std::move(it->second.cb));
            it = pending.erase(it);
          } else {
            ++it;
          }
        }
      }
      for (auto& cb : expired) {
        cb(absl::DeadlineExceededError("no reply from " + address + " before the deadline"));
      }
    }
  }
};

PeerClient::PeerClient(std::string address) : impl_(std::make_unique<Impl>(std::move(address))) {}

PeerClient::~PeerClient() { shutdown(); }

void PeerClient::call(pb::Envelope request, std::chrono::milliseconds timeout,
                      absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)> cb) {
  Impl& m = *impl_;
  std::shared_ptr<Impl::Conn> c;
  {
    std::lock_guard lock(m.mu);
    if (m.closed) {
      cb(absl::UnavailableError("peer client for " + m.address + " is shut down"));
      return;
    }
    c = m.conn ? m.conn : m.connectLocked();
    uint64_t id = m.next_id++;
    request.set_id(id);
    m.pending.emplace(id, Impl::Pending{std::move(cb), Clock::now() + timeout, c.get()});
  }
  m.sent += request.ByteSizeLong();
  if (!c->out.send(c->rw.get(), std::move(request))) {
    // The stream is broken: the reader sees it too and fails everything
    // pending on it, including this call. Cancel to make sure it wakes.
    c->ctx->TryCancel();
  }
}

absl::StatusOr<pb::HeartbeatReply> PeerClient::heartbeat(const pb::HeartbeatRequest& request,
                                                         std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::HeartbeatReply reply;
  auto st = impl_->stub->Heartbeat(&ctx, request, &reply);
  if (!st.ok()) return toStatus(st, "heartbeat to " + impl_->address);
  return reply;
}

absl::Status PeerClient::installApp(const pb::AppPackage& package,
                                    std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::Ack ack;
  auto st = impl_->stub->InstallApp(&ctx, package, &ack);
  if (!st.ok()) return toStatus(st, "install " + package.name() + " on " + impl_->address);
  return fromAck(ack);
}

absl::StatusOr<pb::AppPackage> PeerClient::fetchApp(const std::string& name,
                                                    std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::AppName req;
  req.set_name(name);
  pb::AppPackage pkg;
  auto st = impl_->stub->FetchApp(&ctx, req, &pkg);
  if (!st.ok()) return toStatus(st, "fetch " + name + " from " + impl_->address);
  return pkg;
}

absl::Status PeerClient::removeApp(const std::string& name, Removal scope,
                                   std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::AppRemoval req;
  req.set_name(name);
  req.set_cluster(scope == Removal::kCluster);
  pb::Ack ack;
  auto st = impl_->stub->RemoveApp(&ctx, req, &ack);
  if (!st.ok()) return toStatus(st, "remove " + name + " on " + impl_->address);
  return fromAck(ack);
}

absl::Status PeerClient::metaPut(const pb::MetaEntry& entry, std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::Ack ack;
  auto st = impl_->stub->MetaPut(&ctx, entry, &ack);
  if (!st.ok()) return toStatus(st, "meta put on " + impl_->address);
  return fromAck(ack);
}

const std::string& PeerClient::address() const { return impl_->address; }

PeerStats PeerClient::stats() const {
  return {impl_->sent.load(), impl_->received.load(), impl_->reconnects.load()};
}

void PeerClient::shutdown() {
  Impl& m = *impl_;
  std::list<std::jthread> readers;
  std::vector<absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)>> failed;
  {
    std::lock_guard lock(m.mu);
    if (m.closed) return;
    m.closed = true;
    if (m.conn) m.conn->ctx->TryCancel();
    m.conn.reset();
    readers.swap(m.readers);
  }
  for (auto& r : readers) r.join();
  {
    std::lock_guard lock(m.mu);
    m.failLocked(nullptr, absl::UnavailableError("shutting down"), &failed);
  }
  for (auto& cb : failed) cb(absl::UnavailableError("peer client shut down"));
  m.sweeper.request_stop();
  if (m.sweeper.joinable()) m.sweeper.join();
}

}  // namespace waverless::net
