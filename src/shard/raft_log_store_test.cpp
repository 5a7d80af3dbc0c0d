// RaftLogStore through the raft_io table libraft calls, on a real loop, a real RocksDB and
// libraft's own TCP transport (never started: nothing here sends a message). Each test drives the
// entries the way raft would and reopens the store to check what reached disk.
#include "shard/raft_log_store.h"

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <gtest/gtest.h>
#include <uv.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "rocksdb/db.h"
#include "shard/raft_log_format.h"

namespace waverless::shard {
namespace {

namespace fs = std::filesystem;

std::string text(const raft_buffer& b) { return std::string(static_cast<char*>(b.base), b.len); }

// One group's raft_io over a fresh RaftLogStore on `dir`, torn down in the right order.
class Opened {
 public:
  Opened(const fs::path& dir, uint32_t group) : group_(group) {
    uv_loop_init(&loop_);
    auto s = RaftLogStore::open(&loop_, dir);
    EXPECT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    EXPECT_EQ(raft_uv_tcp_init(&transport_, &loop_), 0);
    absl::Status a = store_->attach(&io_, group, dir / ("g" + std::to_string(group)), &transport_);
    EXPECT_TRUE(a.ok()) << a;
    EXPECT_EQ(io_.init(&io_, 1, "127.0.0.1:9"), 0) << io_.errmsg;
  }
  ~Opened() {
    io_.data = this;
    io_.close(&io_, [](raft_io* io) { static_cast<Opened*>(io->data)->closed_ = true; });
    run([&] { return closed_; });
    store_->release(&io_);
    raft_uv_tcp_close(&transport_);
    store_->close([] {});
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  raft_io& io() { return io_; }
  RaftLogStore& store() { return *store_; }

  // Runs the loop until done() or a bounded number of turns.
  template <typename F>
  void run(F done) {
    for (int i = 0; i < 20000 && !done(); ++i) uv_run(&loop_, UV_RUN_NOWAIT), usleep(100);
    ASSERT_TRUE(done());
  }

  int append(std::vector<std::string> payloads, raft_term term) {
    std::vector<raft_entry> entries(payloads.size());
    for (size_t i = 0; i < payloads.size(); ++i) {
      entries[i].term = term;
      entries[i].type = RAFT_COMMAND;
      entries[i].buf.base = payloads[i].data();
      entries[i].buf.len = payloads[i].size();
    }
    struct State {
      bool done = false;
      int status = -1;
    } st;
    raft_io_append req{};
    req.data = &st;
    int rv = io_.append(&io_, &req, entries.data(), static_cast<unsigned>(entries.size()),
                        [](raft_io_append* r, int status) {
                          auto* s = static_cast<State*>(r->data);
                          s->done = true;
                          s->status = status;
                        });
    if (rv != 0) return rv;
    run([&] { return st.done; });
    return st.status;
  }

  int putSnapshot(raft_index index, raft_term term, unsigned trailing, std::string data) {
    raft_snapshot snap{};
    snap.index = index;
    snap.term = term;
    raft_configuration_init(&snap.configuration);
    raft_configuration_add(&snap.configuration, 1, "127.0.0.1:9", RAFT_VOTER);
    raft_configuration_add(&snap.configuration, 2, "127.0.0.1:10", RAFT_STANDBY);
    snap.configuration_index = 1;
    raft_buffer buf{data.data(), data.size()};
    snap.bufs = &buf;
    snap.n_bufs = 1;
    struct State {
      bool done = false;
      int status = -1;
    } st;
    raft_io_snapshot_put req{};
    req.data = &st;
    int rv = io_.snapshot_put(&io_, trailing, &req, &snap, [](raft_io_snapshot_put* r, int s) {
      auto* state = static_cast<State*>(r->data);
      state->done = true;
      state->status = s;
    });
    if (rv == 0) run([&] { return st.done; });
    raft_configuration_close(&snap.configuration);
    return rv != 0 ? rv : st.status;
  }

  struct Loaded {
    int rv = 0;
    raft_term term = 0;
    raft_id vote = 0;
    raft_index start = 0;
    std::vector<std::pair<raft_term, std::string>> entries;
    bool has_snapshot = false;
    raft_index snapshot_index = 0;
    std::string snapshot_data;
    std::vector<std::pair<raft_id, int>> snapshot_servers;
  };
  Loaded load() {
    Loaded out;
    raft_snapshot* snap = nullptr;
    raft_entry* entries = nullptr;
    size_t n = 0;
    out.rv = io_.load(&io_, &out.term, &out.vote, &snap, &out.start, &entries, &n);
    if (out.rv != 0) return out;
    for (size_t i = 0; i < n; ++i) {
      out.entries.emplace_back(entries[i].term, text(entries[i].buf));
      raft_free(entries[i].batch);
    }
    raft_free(entries);
    if (snap != nullptr) {
      out.has_snapshot = true;
      out.snapshot_index = snap->index;
      out.snapshot_data = text(snap->bufs[0]);
      for (unsigned i = 0; i < snap->configuration.n; ++i)
        out.snapshot_servers.emplace_back(snap->configuration.servers[i].id,
                                          snap->configuration.servers[i].role);
      raft_configuration_close(&snap->configuration);
      raft_free(snap->bufs[0].base);
      raft_free(snap->bufs);
      raft_free(snap);
    }
    return out;
  }

 private:
  uint32_t group_;
  uv_loop_t loop_{};
  raft_uv_transport transport_{};
  raft_io io_{};
  std::unique_ptr<RaftLogStore> store_;
  bool closed_ = false;
};

class RaftLogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("raft_log_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RaftLogStoreTest, BootstrapTermVoteAndEntriesSurviveAReopen) {
  {
    Opened o(dir_, 7);
    raft_configuration conf;
    raft_configuration_init(&conf);
    raft_configuration_add(&conf, 1, "127.0.0.1:9", RAFT_VOTER);
    EXPECT_EQ(o.io().bootstrap(&o.io(), &conf), 0);
    EXPECT_EQ(o.io().bootstrap(&o.io(), &conf), RAFT_CANTBOOTSTRAP);
    raft_configuration_close(&conf);
    Opened::Loaded l = o.load();  // raft loads right after bootstrapping
    ASSERT_EQ(l.rv, 0);
    EXPECT_EQ(l.term, 1u);
    EXPECT_EQ(l.start, 1u);
    ASSERT_EQ(l.entries.size(), 1u);  // the configuration entry
    EXPECT_EQ(o.io().set_term(&o.io(), 3), 0);
    EXPECT_EQ(o.io().set_vote(&o.io(), 2), 0);
    EXPECT_EQ(o.append({"e2", "e3", "e4", "e5"}, 3), 0);
    // A follower's conflicting tail: drop 4 and 5, append over them.
    EXPECT_EQ(o.io().truncate(&o.io(), 4), 0);
    EXPECT_EQ(o.append({"x4", "x5", "x6"}, 3), 0);
  }
  Opened o(dir_, 7);
  Opened::Loaded l = o.load();
  ASSERT_EQ(l.rv, 0) << o.io().errmsg;
  EXPECT_EQ(l.term, 3u);
  EXPECT_EQ(l.vote, 2u);
  EXPECT_EQ(l.start, 1u);
  ASSERT_EQ(l.entries.size(), 6u);
  EXPECT_EQ(l.entries[1].second, "e2");
  EXPECT_EQ(l.entries[2].second, "e3");
  EXPECT_EQ(l.entries[3].second, "x4");
  EXPECT_EQ(l.entries[5].second, "x6");
  EXPECT_EQ(l.entries[5].first, 3u);
  EXPECT_FALSE(l.has_snapshot);
}

TEST_F(RaftLogStoreTest, SnapshotsKeepTheirTrailingEntriesAndAnInstallReplacesTheLog) {
  {
    Opened o(dir_, 3);
    ASSERT_EQ(o.load().rv, 0);
    EXPECT_EQ(o.append({"1", "2", "3", "4", "5", "6", "7", "8"}, 1), 0);
    // Taken at 6, keeping 2 behind it: entries 5..8 stay.
    EXPECT_EQ(o.putSnapshot(6, 1, 2, "state@6"), 0);
  }
  {
    Opened o(dir_, 3);
    Opened::Loaded l = o.load();
    ASSERT_EQ(l.rv, 0) << o.io().errmsg;
    ASSERT_TRUE(l.has_snapshot);
    EXPECT_EQ(l.snapshot_index, 6u);
    EXPECT_EQ(l.snapshot_data, "state@6");
    EXPECT_EQ(l.snapshot_servers,
              (std::vector<std::pair<raft_id, int>>{{1, RAFT_VOTER}, {2, RAFT_STANDBY}}));
    EXPECT_EQ(l.start, 5u);
    ASSERT_EQ(l.entries.size(), 4u);
    EXPECT_EQ(l.entries.front().second, "5");
    // A leader's snapshot installed here: the whole log goes, appends go on after it.
    EXPECT_EQ(o.putSnapshot(20, 2, 0, "state@20"), 0);
    EXPECT_EQ(o.append({"21"}, 2), 0);
  }
  Opened o(dir_, 3);
  Opened::Loaded l = o.load();
  ASSERT_EQ(l.rv, 0) << o.io().errmsg;
  EXPECT_EQ(l.snapshot_index, 20u);
  EXPECT_EQ(l.snapshot_data, "state@20");
  EXPECT_EQ(l.start, 21u);
  ASSERT_EQ(l.entries.size(), 1u);
  EXPECT_EQ(l.entries[0].second, "21");
  // Only the latest snapshot's file is kept.
  size_t files = 0;
  for (const auto& f : fs::directory_iterator(dir_ / "snap")) files += f.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(RaftLogStoreTest, GroupsAreSeparateAndDropForgetsOneOfThem) {
  {
    Opened a(dir_, 1);
    ASSERT_EQ(a.load().rv, 0);
    EXPECT_EQ(a.io().set_term(&a.io(), 5), 0);
    EXPECT_EQ(a.append({"a1", "a2"}, 5), 0);
    EXPECT_EQ(a.putSnapshot(1, 5, 1, "a-state"), 0);
  }
  {
    Opened b(dir_, 2);
    Opened::Loaded l = b.load();
    ASSERT_EQ(l.rv, 0);
    EXPECT_EQ(l.term, 0u);
    EXPECT_TRUE(l.entries.empty());
    EXPECT_FALSE(l.has_snapshot);
    EXPECT_EQ(b.append({"b1"}, 1), 0);
    EXPECT_TRUE(b.store().drop(1).ok());
  }
  {
    Opened a(dir_, 1);
    Opened::Loaded l = a.load();
    ASSERT_EQ(l.rv, 0);
    EXPECT_EQ(l.term, 0u);
    EXPECT_TRUE(l.entries.empty());
    EXPECT_FALSE(l.has_snapshot);
  }
  Opened::Loaded b = Opened(dir_, 2).load();
  ASSERT_EQ(b.rv, 0);
  ASSERT_EQ(b.entries.size(), 1u);
  EXPECT_EQ(b.entries[0].second, "b1");
}

TEST_F(RaftLogStoreTest, AMalformedOrMissingEntryIsCorruptionNotACrash) {
  {
    Opened o(dir_, 9);
    ASSERT_EQ(o.load().rv, 0);
    EXPECT_EQ(o.append({"1", "2", "3"}, 1), 0);
  }
  {
    // Remove entry 2 behind the store's back: the log has a hole.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), (dir_ / "log").string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::string key = raft_log_format::entryKey(9, 2);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), key).ok());
  }
  Opened o(dir_, 9);
  Opened::Loaded l = o.load();
  EXPECT_EQ(l.rv, RAFT_CORRUPT) << l.entries.size() << " entries from " << l.start;
  EXPECT_NE(std::string(o.io().errmsg).find("out of sequence"), std::string::npos) << o.io().errmsg;
}

TEST_F(RaftLogStoreTest, AppendsOfManyGroupsShareSyncs) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto opened = RaftLogStore::open(&loop, dir_);
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<RaftLogStore> store = std::move(*opened);
  constexpr int kGroups = 16;
  std::vector<raft_uv_transport> transports(kGroups);
  std::vector<raft_io> ios(kGroups);
  std::vector<raft_io_append> reqs(kGroups);
  std::string payload = "x";
  raft_entry entry{};
  entry.term = 1;
  entry.type = RAFT_COMMAND;
  entry.buf = {payload.data(), payload.size()};
  int done = 0;
  for (int g = 0; g < kGroups; ++g) {
    ASSERT_EQ(raft_uv_tcp_init(&transports[g], &loop), 0);
    ASSERT_TRUE(store->attach(&ios[g], g, dir_ / ("g" + std::to_string(g)), &transports[g]).ok());
    ASSERT_EQ(ios[g].init(&ios[g], 1, "127.0.0.1:9"), 0);
  }
  // Raft issues them from one loop turn: they reach the writer together.
  for (int g = 0; g < kGroups; ++g) {
    reqs[g].data = &done;
    ASSERT_EQ(ios[g].append(&ios[g], &reqs[g], &entry, 1,
                            [](raft_io_append* r, int status) {
                              EXPECT_EQ(status, 0);
                              ++*static_cast<int*>(r->data);
                            }),
              0);
  }
  for (int i = 0; i < 20000 && done < kGroups; ++i) uv_run(&loop, UV_RUN_NOWAIT), usleep(100);
  ASSERT_EQ(done, kGroups);
  RaftLogStore::Stats s = store->stats();
  EXPECT_EQ(s.appends, uint64_t{kGroups});
  EXPECT_LT(s.syncs, s.appends);
  int closed = 0;
  for (int g = 0; g < kGroups; ++g) {
    ios[g].data = &closed;
    ios[g].close(&ios[g], [](raft_io* io) { ++*static_cast<int*>(io->data); });
  }
  for (int i = 0; i < 20000 && closed < kGroups; ++i) uv_run(&loop, UV_RUN_NOWAIT), usleep(100);
  ASSERT_EQ(closed, kGroups);
  for (int g = 0; g < kGroups; ++g) {
    store->release(&ios[g]);
    raft_uv_tcp_close(&transports[g]);
  }
  store->close([] {});
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace waverless::shard
