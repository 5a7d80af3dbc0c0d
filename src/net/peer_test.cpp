#include "net/peer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace waverless::net {
namespace {

// Echoes shard request bytes; never answers invokes of function "hang".
class EchoHandler : public PeerHandler {
 public:
  void onEnvelope(pb::Envelope req, Reply reply) override {
    if (req.has_invoke() && req.invoke().function() == "hang") {
      hung_.push_back(std::move(reply));
      return;
    }
    pb::Envelope out;
    out.set_id(req.id());
    out.set_shard_reply(req.shard_request() + "!");
    reply(std::move(out));
  }
  pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest& r) override {
    pb::HeartbeatReply out;
    *out.add_workers() = r.state();
    return out;
  }
  pb::Ack installApp(const pb::AppPackage&) override { return {}; }
  absl::StatusOr<pb::AppPackage> fetchApp(const std::string& name) override {
    return absl::NotFoundError(name);
  }
  pb::Ack removeApp(const std::string&, net::Removal) override { return {}; }
  pb::Ack metaPut(const pb::MetaEntry&) override { return {}; }

 private:
  std::vector<Reply> hung_;
};

absl::StatusOr<pb::Envelope> callSync(PeerClient& c, pb::Envelope e,
                                      std::chrono::milliseconds t = std::chrono::seconds(5)) {
  std::promise<absl::StatusOr<pb::Envelope>> p;
  c.call(std::move(e), t, [&](absl::StatusOr<pb::Envelope> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

pb::Envelope kvSet(const std::string& v) {
  pb::Envelope e;
  e.set_shard_request(v);
  return e;
}

TEST(Peer, StreamCallsMatchRepliesById) {
  EchoHandler h;
  RpcServer server("127.0.0.1:0", h);
  ASSERT_TRUE(server.start().ok());
  PeerClient client("127.0.0.1:" + std::to_string(server.port()));
  std::vector<std::future<absl::StatusOr<pb::Envelope>>> futures;
  std::vector<std::promise<absl::StatusOr<pb::Envelope>>> promises(200);
  for (int i = 0; i < 200; ++i) {
    futures.push_back(promises[i].get_future());
    client.call(kvSet("v" + std::to_string(i)), std::chrono::seconds(5),
                [&promises, i](absl::StatusOr<pb::Envelope> r) { promises[i].set_value(r); });
  }
  for (int i = 0; i < 200; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->shard_reply(), "v" + std::to_string(i) + "!");
  }
  EXPECT_GT(client.stats().bytes_sent, 0u);
  client.shutdown();
  server.stop();
}

TEST(Peer, UnansweredCallHitsItsDeadline) {
  EchoHandler h;
  RpcServer server("127.0.0.1:0", h);
  ASSERT_TRUE(server.start().ok());
  PeerClient client("127.0.0.1:" + std::to_string(server.port()));
  pb::Envelope e;
  e.mutable_invoke()->set_function("hang");
  auto r = callSync(client, e, std::chrono::milliseconds(100));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  client.shutdown();
  server.stop();
}

TEST(Peer, LostConnectionFailsPendingCallsAndReconnects) {
  EchoHandler h;
  auto server = std::make_unique<RpcServer>("127.0.0.1:0", h);
  ASSERT_TRUE(server->start().ok());
  int port = server->port();
  PeerClient client("127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(callSync(client, kvSet("a")).ok());
  pb::Envelope hang;
  hang.mutable_invoke()->set_function("hang");
  std::promise<absl::StatusOr<pb::Envelope>> p;
  client.call(hang, std::chrono::seconds(30),
              [&](absl::StatusOr<pb::Envelope> r) { p.set_value(std::move(r)); });
  server->stop();
  auto lost = p.get_future().get();
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  // The peer comes back on the same address: the next call reconnects.
  EchoHandler h2;
  RpcServer again("127.0.0.1:" + std::to_string(port), h2);
  ASSERT_TRUE(again.start().ok());
  absl::StatusOr<pb::Envelope> r;
  for (int i = 0; i < 50; ++i) {
    r = callSync(client, kvSet("b"), std::chrono::seconds(2));
    if (r.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shard_reply(), "b!");
  client.shutdown();
  again.stop();
}

TEST(Peer, UnaryCallsHaveDeadlinesAndErrors) {
  EchoHandler h;
  RpcServer server("127.0.0.1:0", h);
  ASSERT_TRUE(server.start().ok());
  PeerClient client("127.0.0.1:" + std::to_string(server.port()));
  pb::HeartbeatRequest hb;
  hb.mutable_state()->set_id(7);
  auto r = client.heartbeat(hb, std::chrono::seconds(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->workers(0).id(), 7u);
  EXPECT_FALSE(client.fetchApp("nope", std::chrono::seconds(2)).ok());
  client.shutdown();
  server.stop();
  PeerClient nobody("127.0.0.1:1");
  EXPECT_EQ(nobody.heartbeat(hb, std::chrono::milliseconds(300)).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace waverless::net
