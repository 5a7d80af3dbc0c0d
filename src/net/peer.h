// Inter-node RPC over gRPC. One long-lived bidirectional stream per peer
// carries the hot path (tasks, results, KV operations) with request ids;
// control calls are unary with deadlines. gRPC stays inside peer.cpp: this
// header exposes only the protobuf messages and plain C++.
//
// Owns: channels, streams, reconnection, per-call deadlines. Must not: decide
// what to run where (cluster/ does) or touch storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "net/waverless.pb.h"

namespace waverless::net {

// Largest message either side accepts: an app package with its compiled
// object, or a KV value of the maximum size plus framing.
inline constexpr int kMaxMessageBytes = 256 << 20;

using Reply = absl::AnyInvocable<void(pb::Envelope)>;

// What a RemoveApp asks of its receiver (pb::AppRemoval): drop its own copy (what the master
// sends each node), or remove the app from the cluster as its master (a forwarded user request).
enum class Removal { kHere, kCluster };

// What a node serves to its peers.
class PeerHandler {
 public:
  virtual ~PeerHandler() = default;
  // A stream message (invoke or kv); reply exactly once, from any thread.
  virtual void onEnvelope(pb::Envelope request, Reply reply) = 0;
  virtual pb::HeartbeatReply heartbeat(const pb::HeartbeatRequest& request) = 0;
  virtual pb::Ack installApp(const pb::AppPackage& package) = 0;
  virtual absl::StatusOr<pb::AppPackage> fetchApp(const std::string& name) = 0;
  virtual pb::Ack removeApp(const std::string& name, Removal scope) = 0;
  virtual pb::Ack metaPut(const pb::MetaEntry& entry) = 0;
};

class RpcServer {
 public:
  RpcServer(std::string bind_address, PeerHandler& handler);
  ~RpcServer();
  absl::Status start();
  void stop();  // idempotent
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct PeerStats {
  uint64_t bytes_sent = 0;  // serialized envelope bytes on the stream
  uint64_t bytes_received = 0;
  uint64_t reconnects = 0;
};

// Client side of one remote node. Thread-safe.
class PeerClient {
 public:
  explicit PeerClient(std::string address);
  ~PeerClient();

  // Sends over the stream; cb gets the reply, or Unavailable (connection
  // lost) / DeadlineExceeded. cb runs on the stream's reader thread or the
  // deadline sweeper: it must not block.
  void call(pb::Envelope request, std::chrono::milliseconds timeout,
            absl::AnyInvocable<void(absl::StatusOr<pb::Envelope>)> cb);

  absl::StatusOr<pb::HeartbeatReply> heartbeat(const pb::HeartbeatRequest& request,
                                               std::chrono::milliseconds timeout);
  absl::Status installApp(const pb::AppPackage& package, std::chrono::milliseconds timeout);
  absl::StatusOr<pb::AppPackage> fetchApp(const std::string& name,
                                          std::chrono::milliseconds timeout);
  absl::Status removeApp(const std::string& name, Removal scope, std::chrono::milliseconds timeout);
  absl::Status metaPut(const pb::MetaEntry& entry, std::chrono::milliseconds timeout);

  const std::string& address() const;
  PeerStats stats() const;
  void shutdown();  // fails pending calls, joins threads; idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::net
