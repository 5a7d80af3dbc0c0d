// RaftWire: the message encoding, and channels between two real RaftMux listeners on one loop.
#include "shard/raft_wire.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "shard/raft_mux.h"

namespace waverless::shard {
namespace {

// ---- Encoding ----

raft_message roundTrip(const raft_message& in) {
  std::string bytes;
  encodeMessage(in, bytes);
  raft_message out;
  EXPECT_TRUE(decodeMessage(bytes, &out));
  // Every strict prefix is malformed, never a crash or a leak (ASan checks the latter).
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    raft_message partial;
    EXPECT_FALSE(decodeMessage(std::string_view(bytes).substr(0, cut), &partial)) << cut;
  }
  raft_message extra;
  EXPECT_FALSE(decodeMessage(bytes + "x", &extra));
  return out;
}

TEST(RaftWireEncoding, EveryMessageTypeRoundTrips) {
  raft_message m{};
  m.type = RAFT_IO_REQUEST_VOTE;
  m.request_vote = {7, 3, 120, 6, true, false};
  raft_message v = roundTrip(m);
  EXPECT_EQ(v.request_vote.term, 7u);
  EXPECT_EQ(v.request_vote.candidate_id, 3u);
  EXPECT_EQ(v.request_vote.last_log_index, 120u);
  EXPECT_EQ(v.request_vote.last_log_term, 6u);
  EXPECT_TRUE(v.request_vote.disrupt_leader);
  EXPECT_FALSE(v.request_vote.pre_vote);

  m = raft_message{};
  m.type = RAFT_IO_REQUEST_VOTE_RESULT;
  m.request_vote_result = {9, true, raft_tribool_false};
  v = roundTrip(m);
  EXPECT_EQ(v.request_vote_result.term, 9u);
  EXPECT_TRUE(v.request_vote_result.vote_granted);
  EXPECT_EQ(v.request_vote_result.pre_vote, raft_tribool_false);

  m = raft_message{};
  m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
  m.append_entries_result = {4, 0, 99};
  v = roundTrip(m);
  EXPECT_EQ(v.append_entries_result.term, 4u);
  EXPECT_EQ(v.append_entries_result.rejected, 0u);
  EXPECT_EQ(v.append_entries_result.last_log_index, 99u);

  m = raft_message{};
  m.type = RAFT_IO_TIMEOUT_NOW;
  m.timeout_now = {5, 50, 4};
  v = roundTrip(m);
  EXPECT_EQ(v.timeout_now.last_log_index, 50u);
  EXPECT_EQ(v.timeout_now.last_log_term, 4u);
}

TEST(RaftWireEncoding, AppendEntriesShareOneBatchAsRaftExpects) {
  std::string a = "first payload", b, c = "third";
  raft_entry entries[3]{};
  entries[0] = {2, RAFT_COMMAND, {a.data(), a.size()}, nullptr};
  entries[1] = {2, RAFT_BARRIER, {b.data(), 0}, nullptr};
  entries[2] = {3, RAFT_COMMAND, {c.data(), c.size()}, nullptr};
  raft_message m{};
  m.type = RAFT_IO_APPEND_ENTRIES;
  m.append_entries = {3, 10, 2, 9, entries, 3};
  raft_message v = roundTrip(m);
  const raft_append_entries& got = v.append_entries;
  ASSERT_EQ(got.n_entries, 3u);
  EXPECT_EQ(got.prev_log_index, 10u);
  EXPECT_EQ(got.leader_commit, 9u);
  EXPECT_EQ(std::string(static_cast<char*>(got.entries[0].buf.base), got.entries[0].buf.len), a);
  EXPECT_EQ(got.entries[1].buf.len, 0u);
  EXPECT_EQ(got.entries[1].type, RAFT_BARRIER);
  EXPECT_EQ(std::string(static_cast<char*>(got.entries[2].buf.base), got.entries[2].buf.len), c);
  EXPECT_EQ(got.entries[2].term, 3u);
  for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(got.entries[i].batch, got.entries[0].batch);
  discardMessage(&v);

  m.append_entries.n_entries = 0;  // a heartbeat
  m.append_entries.entries = nullptr;
  v = roundTrip(m);
  EXPECT_EQ(v.append_entries.entries, nullptr);
  EXPECT_EQ(v.append_entries.n_entries, 0u);
}

TEST(RaftWireEncoding, InstallSnapshotCarriesItsConfigurationAndData) {
  raft_message m{};
  m.type = RAFT_IO_INSTALL_SNAPSHOT;
  raft_install_snapshot& s = m.install_snapshot;
  s.term = 4;
  s.last_index = 500;
  s.last_term = 3;
  s.conf_index = 12;
  raft_configuration_init(&s.conf);
  ASSERT_EQ(raft_configuration_add(&s.conf, 1, "127.0.0.1:9001", RAFT_VOTER), 0);
  ASSERT_EQ(raft_configuration_add(&s.conf, 2, "127.0.0.1:9002", RAFT_SPARE), 0);
  std::string data(100000, 'd');
  s.data = {data.data(), data.size()};
  raft_message v = roundTrip(m);
  raft_configuration_close(&s.conf);
  const raft_install_snapshot& got = v.install_snapshot;
  EXPECT_EQ(got.last_index, 500u);
  EXPECT_EQ(got.conf_index, 12u);
  ASSERT_EQ(got.conf.n, 2u);
  EXPECT_STREQ(got.conf.servers[1].address, "127.0.0.1:9002");
  EXPECT_EQ(got.conf.servers[1].role, RAFT_SPARE);
  ASSERT_EQ(got.data.len, data.size());
  EXPECT_EQ(std::memcmp(got.data.base, data.data(), data.size()), 0);
  discardMessage(&v);
}

TEST(RaftWireEncoding, GarbageIsRefused) {
  raft_message m;
  EXPECT_FALSE(decodeMessage("", &m));
  EXPECT_FALSE(decodeMessage(std::string(1, '\x09'), &m));  // no such type
  // An AppendEntries claiming four billion entries in a short frame allocates nothing.
  std::string huge(1, static_cast<char>(RAFT_IO_APPEND_ENTRIES));
  huge += std::string(32, '\0') + "\xff\xff\xff\xff";
  EXPECT_FALSE(decodeMessage(huge, &m));
}

// ---- Channels ----

struct Received {
  uint32_t group;
  uint64_t from;
  std::string from_address;
  uint64_t term;
  std::string payload;
};

// Two nodes' muxes and wires on one loop; raft_io stand-ins record what each group receives.
class RaftWireTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<RaftMux> mux;
    std::unique_ptr<RaftWire> wire;
    std::string address;
  };
  struct Sink {
    raft_io io{};
    uint32_t group = 0;
    std::vector<Received>* out = nullptr;
  };

  void SetUp() override {
    uv_loop_init(&loop_);
    for (uint64_t id : {1, 2}) {
      Node& n = nodes_[id - 1];
      n.mux = std::make_unique<RaftMux>(&loop_, id, "secret");
      ASSERT_TRUE(n.mux->listen("127.0.0.1:0").ok());
      n.address = "127.0.0.1:" + std::to_string(n.mux->boundPort());
      n.wire = std::make_unique<RaftWire>(&loop_, *n.mux);
    }
  }

  void TearDown() override {
    int closed = 0;
    for (Node& n : nodes_) {
      n.wire->close([&closed, &n] { n.mux->close([&closed] { ++closed; }); });
    }
    runUntil([&] { return closed == 2; });
    for (Node& n : nodes_) n.wire.reset(), n.mux.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  bool runUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 20000 && !done(); ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(100);
    return done();
  }

  void runFor(int ms) {
    for (int i = 0; i < ms * 10; ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(100);
  }

  void attach(Node& n, Sink& s, uint32_t group, std::vector<Received>* out) {
    s.group = group;
    s.out = out;
    s.io.data = &s;
    n.wire->attach(group, &s.io, [](raft_io* io, raft_message* m) {
      auto* sink = static_cast<Sink*>(io->data);
      Received r{sink->group, m->server_id, m->server_address, 0, {}};
      if (m->type == RAFT_IO_APPEND_ENTRIES) {
        r.term = m->append_entries.term;
        for (unsigned i = 0; i < m->append_entries.n_entries; ++i)
          r.payload.append(static_cast<char*>(m->append_entries.entries[i].buf.base),
                           m->append_entries.entries[i].buf.len);
      }
      sink->out->push_back(r);
      discardMessage(m);  // as raft would free what it was given
    });
  }

  // Sends an AppendEntries of one entry from node `from` (1-based) to node 2 or 1.
  int sendEntry(int from, uint32_t group, uint64_t term, std::string payload,
                std::vector<int>* statuses) {
    Node& src = nodes_[from - 1];
    Node& dst = nodes_[2 - from];
    raft_entry e{term, RAFT_COMMAND, {payload.data(), payload.size()}, nullptr};
    raft_message m{};
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = static_cast<raft_id>(3 - from);
    m.server_address = dst.address.c_str();
    m.append_entries = {term, 0, 0, 0, &e, 1};
    auto* req = new raft_io_send{};
    req->data = statuses;
    return src.wire->send(group, req, &m, [](raft_io_send* r, int status) {
      static_cast<std::vector<int>*>(r->data)->push_back(status);
      delete r;
    });
  }

  uv_loop_t loop_;
  Node nodes_[2];
  std::vector<int> statuses_;
};

TEST_F(RaftWireTest, EveryGroupsMessagesShareOneChannelInOrder) {
  std::vector<Received> got;
  Sink a, b;
  attach(nodes_[1], a, 5, &got);
  attach(nodes_[1], b, 9, &got);
  std::vector<int>& statuses = statuses_;  // outlives the test body: TearDown cancels sends
  // Sent in one loop turn: one channel, and the groups' messages interleaved as sent.
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(sendEntry(1, i % 2 == 0 ? 5 : 9, i + 1, "m" + std::to_string(i), &statuses), 0);
  }
  ASSERT_TRUE(runUntil([&] { return got.size() == 50; }));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[i].group, i % 2 == 0 ? 5u : 9u);
    EXPECT_EQ(got[i].term, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(got[i].payload, "m" + std::to_string(i));
    EXPECT_EQ(got[i].from, 1u);
    EXPECT_EQ(got[i].from_address, nodes_[0].address);
  }
  ASSERT_TRUE(runUntil([&] { return statuses.size() == 50; }));
  for (int s : statuses) EXPECT_EQ(s, 0);
  RaftWire::Stats st = nodes_[0].wire->stats();
  EXPECT_EQ(st.messages_sent, 50u);
  EXPECT_LT(st.writes, 5u) << "the 50 messages were not coalesced";
  EXPECT_EQ(nodes_[0].mux->stats().accepted, 1u);  // one handshake for every group
}

TEST_F(RaftWireTest, AMessageForAGroupNotOpenHereIsDroppedAndDetachCancelsPendingSends) {
  std::vector<Received> got;
  Sink a;
  attach(nodes_[1], a, 1, &got);
  std::vector<int>& statuses = statuses_;  // outlives the test body: TearDown cancels sends
  ASSERT_EQ(sendEntry(1, 77, 1, "nobody", &statuses), 0);  // group 77: not open on node 2
  ASSERT_EQ(sendEntry(1, 1, 2, "somebody", &statuses), 0);
  ASSERT_TRUE(runUntil([&] { return got.size() == 1; }));
  EXPECT_EQ(got[0].payload, "somebody");

  // A group closing gets its sends' callbacks at once, canceled, before its I/O is gone.
  ASSERT_EQ(sendEntry(1, 3, 1, "late", &statuses), 0);
  size_t before = statuses.size();
  nodes_[0].wire->detach(3);
  ASSERT_EQ(statuses.size(), before + 1);
  EXPECT_EQ(statuses.back(), RAFT_CANCELED);
}

TEST_F(RaftWireTest, ADeadPeerCostsDroppedMessagesThenItsRestartReconnects) {
  std::vector<Received> got;
  Sink a;
  attach(nodes_[1], a, 1, &got);
  std::vector<int>& statuses = statuses_;  // outlives the test body: TearDown cancels sends
  ASSERT_EQ(sendEntry(1, 1, 1, "before", &statuses), 0);
  ASSERT_TRUE(runUntil([&] { return got.size() == 1; }));

  // Node 2 goes away: its listener and channels close.
  int closed = 0;
  std::string address = nodes_[1].address;
  nodes_[1].wire->close([&] { nodes_[1].mux->close([&] { ++closed; }); });
  ASSERT_TRUE(runUntil([&] { return closed == 1; }));
  nodes_[1].wire.reset();
  nodes_[1].mux.reset();
  // Until the sender notices, messages may be written into the dead connection; after it, they
  // are refused while reconnecting fails. Either way nothing blocks and every callback runs.
  for (int i = 0; i < 20; ++i) {
    sendEntry(1, 1, 2, "lost", &statuses);
    runFor(100);
    if (!statuses.empty() && statuses.back() == RAFT_NOCONNECTION) break;
  }
  EXPECT_EQ(statuses.back(), RAFT_NOCONNECTION);

  // Node 2 restarts on the same address: the next sends reconnect and arrive.
  nodes_[1].mux = std::make_unique<RaftMux>(&loop_, 2, "secret");
  ASSERT_TRUE(nodes_[1].mux->listen(address).ok());
  nodes_[1].wire = std::make_unique<RaftWire>(&loop_, *nodes_[1].mux);
  got.clear();
  attach(nodes_[1], a, 1, &got);
  ASSERT_TRUE(runUntil([&] {
    sendEntry(1, 1, 3, "after", &statuses);
    return !got.empty();
  }));
  EXPECT_EQ(got.back().payload, "after");
}

TEST_F(RaftWireTest, AMalformedFrameClosesTheChannelAndNothingIsDelivered) {
  std::vector<Received> got;
  Sink a;
  attach(nodes_[1], a, 1, &got);
  uv_tcp_t* tcp = nullptr;
  bool done = false;
  // An authenticated peer that sends garbage: the handshake holds, the frame does not.
  nodes_[0].mux->connectChannel(2, nodes_[1].address, [&](uv_tcp_t* t) {
    tcp = t;
    done = true;
  });
  ASSERT_TRUE(runUntil([&] { return done; }));
  ASSERT_NE(tcp, nullptr);
  static std::string garbage = std::string("\x00\x00\x00\x09\x00\x00\x00\x01", 8) + "\x63zzzz";
  uv_write_t w;
  uv_buf_t buf = uv_buf_init(garbage.data(), static_cast<unsigned>(garbage.size()));
  ASSERT_EQ(uv_write(&w, reinterpret_cast<uv_stream_t*>(tcp), &buf, 1, nullptr), 0);
  bool eof = false;
  tcp->data = &eof;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp),
      [](uv_handle_t*, size_t, uv_buf_t* b) {
        static char scratch[64];
        *b = uv_buf_init(scratch, sizeof scratch);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n < 0) *static_cast<bool*>(s->data) = true;
      });
  EXPECT_TRUE(runUntil([&] { return eof; })) << "the receiver kept a channel that sent garbage";
  EXPECT_TRUE(got.empty());
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { raft_free(h); });
}

}  // namespace
}  // namespace waverless::shard
