// One TCP port for the raft traffic of every placement group a node hosts.
//
// libraft's own TCP transport listens on one port per raft instance; with a hundred groups per node
// that is a hundred ports to configure and open. RaftMux implements libraft's raft_uv_transport
// interface once per group over a single listener: an outgoing connection opens with a handshake
// naming its group, and the listener hands the stream to that group's raft I/O.
//
// The handshake also authenticates both ends with the cluster secret (challenge-response,
// HMAC-SHA256, fresh nonces each way, compared in constant time), so a process that does not hold
// the secret can neither inject raft messages nor pose as a peer:
//   client -> server  HELLO     "WLRF" v1, group, from id, to id, from address, client nonce
//   server -> client  CHALLENGE server nonce, HMAC(secret, "S" client nonce, group, from, to)
//   client -> server  PROOF     HMAC(secret, "C" server nonce, group, from, to, from address)
// After PROOF the stream carries libraft's own messages, one way (client to server), as with
// libraft's TCP transport. Every read during the handshake asks for exactly the bytes still
// missing, so none of raft's bytes are consumed by it.
//
// Threading: everything runs on the loop thread that owns `loop`, raft's I/O included.
// Must not: know about raft instances or their state; it only moves authenticated streams.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"

struct uv_loop_s;
struct uv_tcp_s;
struct raft_uv_transport;

namespace waverless::shard {

class RaftMux {
 public:
  RaftMux(uv_loop_s* loop, uint64_t self_id, std::string secret);
  ~RaftMux();  // after close() has completed, or before listen()
  RaftMux(const RaftMux&) = delete;
  RaftMux& operator=(const RaftMux&) = delete;

  // Binds and listens on "ipv4:port"; port 0 picks a free one (boundPort()).
  absl::Status listen(const std::string& address);
  uint16_t boundPort() const;

  // A transport for group's raft I/O (raft_uv_init); one per group at a time. Free it with
  // release() once raft_uv_close() has closed it (raft_close's callback).
  raft_uv_transport* transportFor(uint32_t group);
  void release(uint32_t group);

  // Channels (raft_wire.h): one authenticated connection per peer carrying every group's messages.
  // A handshake naming this group id opens a channel instead of a group's stream.
  static constexpr uint32_t kChannel = 0xFFFFFFFF;
  // Accepted channels go to accept; the stream is raft_malloc'd: uv_close it, then raft_free.
  using ChannelAccept =
      std::function<void(uint64_t from, const std::string& from_address, uv_tcp_s* tcp)>;
  void onChannel(ChannelAccept accept);
  // Opens a channel to node `to` at address; done gets the stream (owned as above), or null when
  // the connection or the handshake failed, or the mux closed first.
  void connectChannel(uint64_t to, const std::string& address, std::function<void(uv_tcp_s*)> done);

  // Stops listening and aborts handshakes in progress; done runs on the loop when every handle
  // of the mux is closed. Groups' transports are closed by their raft I/O, not here.
  void close(std::function<void()> done);

  struct Stats {
    uint64_t accepted = 0;  // handshakes completed, either direction
    uint64_t refused = 0;   // failed: wrong secret, unknown group, malformed, timed out, refused
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::shard
