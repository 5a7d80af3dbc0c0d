// Every group's raft messages to one peer node on ONE connection, written once per loop turn.
//
// Why: through libraft's own transport each group has a connection per peer, and each message
// costs a writev on the sender and four reads on the receiver (preamble, header, payload, then
// EAGAIN). With 64 groups taking writes at once that was most of a node's system calls and a
// third of its CPU in the replicated kv_set bench (bench/RESULTS.md). Here send() appends the
// message to its peer's buffer; once per loop turn each buffer goes out in one write, and the
// receiver reads whatever arrived in one read and hands each message to its group's raft.
//
// Frames on a channel: u32 length, u32 group, then the message (encodeMessage below). A channel
// opens with RaftMux's authenticated handshake (group RaftMux::kChannel), so only holders of the
// cluster secret can open one, as with the per-group connections.
//
// A message that cannot be delivered (no connection yet and in reconnect backoff, or a peer that
// stopped reading and has kMaxBuffered waiting) is dropped, and its send callback says so: raft
// sends again on its next heartbeat, as it does when libraft's transport drops a connection.
//
// Threading: the loop thread that owns `loop`, like the raft instances it serves.
#pragma once

extern "C" {
#include <raft.h>
}

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct uv_loop_s;

namespace waverless::shard {

class RaftMux;

// Our encoding of a libraft message (libraft 0.15 keeps its own encoder private).
void encodeMessage(const raft_message& m, std::string& out);
// Decodes what encodeMessage wrote. Allocations follow libraft's receive contract, as its uv
// transport does: raft takes an AppendEntries' entries array and its one batch buffer
// (entries[0].batch), and an InstallSnapshot's configuration and data. False on malformed bytes,
// with nothing left allocated. server_id/server_address are left for the caller.
bool decodeMessage(std::string_view in, raft_message* m);
// Frees what decodeMessage allocated, for a message no raft instance takes.
void discardMessage(raft_message* m);

class RaftWire {
 public:
  // mux must have listened already and outlive this object.
  RaftWire(uv_loop_s* loop, RaftMux& mux);
  ~RaftWire();  // after close()'s done ran
  RaftWire(const RaftWire&) = delete;
  RaftWire& operator=(const RaftWire&) = delete;

  // Messages for group from now on go to recv(io, message).
  void attach(uint32_t group, raft_io* io, raft_io_recv_cb recv);
  // Stops delivering to group and runs its sends' pending callbacks with RAFT_CANCELED, now: raft
  // expects them before its I/O closes.
  void detach(uint32_t group);
  // raft_io.send for group: the message is copied; cb runs on a later loop turn.
  int send(uint32_t group, raft_io_send* req, const raft_message* m, raft_io_send_cb cb);

  // Closes every channel; done runs on the loop once their handles are closed.
  void close(std::function<void()> done);

  struct Stats {
    uint64_t messages_sent = 0, writes = 0, messages_received = 0, dropped = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace waverless::shard
