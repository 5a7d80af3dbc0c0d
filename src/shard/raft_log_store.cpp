#include "shard/raft_log_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "rocksdb/options.h"
#include "shard/raft_log_internal.h"

namespace waverless::shard {

using namespace raft_log_format;  // NOLINT: this file is the format's writer

namespace {

// Writes a whole file and makes it durable under its final name.
bool writeFileDurably(const std::filesystem::path& dir, const std::string& name,
                      std::string_view data) {
  const std::filesystem::path tmp = dir / (name + ".tmp"), dst = dir / name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  bool ok = ::fdatasync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), dst.c_str()) != 0) return false;
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return false;
  ok = ::fsync(dfd) == 0;
  ::close(dfd);
  return ok;
}

// Copies a job's batch into the round's, in order.
class Merge : public rocksdb::WriteBatch::Handler {
 public:
  explicit Merge(rocksdb::WriteBatch* into) : into_(into) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    return into_->Put(key, value);
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& key) override {
    return into_->Delete(key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    return into_->DeleteRange(begin, end);
  }

 private:
  rocksdb::WriteBatch* into_;
};

}  // namespace

void RaftLogStore::Impl::submit(std::unique_ptr<Job> job) {
  ++job->log->pending;
  {
    std::lock_guard lock(mu);
    queue.push_back(std::move(job));
  }
  cv.notify_one();
}

void RaftLogStore::Impl::complete() {
  std::vector<std::unique_ptr<Job>> done;
  {
    std::lock_guard lock(mu);
    done.swap(finished);
  }
  for (auto& j : done) {
    GroupLog* gl = j->log;
    switch (j->kind) {
      case Job::Kind::kAppend:
        j->append->cb(j->append, j->status);
        break;
      case Job::Kind::kSnapshotPut:
        j->put->cb(j->put, j->status);
        break;
      case Job::Kind::kSnapshotGet:
        j->get->cb(j->get, j->snapshot, j->status);
        break;
      case Job::Kind::kTruncate:
        if (j->status != 0) {
          fprintf(stderr, "level=error group=%u msg=\"raft log truncate failed\"\n", gl->group);
        }
        break;
    }
    --gl->pending;
    maybeClosed(gl);  // may free gl: its last job was this one
  }
}

void RaftLogStore::Impl::maybeClosed(GroupLog* gl) {
  if (!gl->closing || !gl->inner_closed || gl->pending > 0 || gl->close_cb == nullptr) return;
  raft_io_close_cb cb = gl->close_cb;
  gl->close_cb = nullptr;
  cb(gl->outer);
}

rocksdb::Status RaftLogStore::Impl::syncWrite(rocksdb::WriteBatch& batch) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return db->Write(wo, &batch);
}

bool RaftLogStore::Impl::readMeta(uint32_t group, uint64_t* term, uint64_t* vote,
                                  rocksdb::Status* st) {
  std::string v;
  *term = *vote = 0;
  *st = db->Get(rocksdb::ReadOptions(), metaKey(group), &v);
  if (st->IsNotFound()) {
    *st = rocksdb::Status::OK();
    return true;
  }
  if (!st->ok()) return false;
  Reader r{v};
  *term = r.num(8);
  *vote = r.num(8);
  return r.ok;
}

bool RaftLogStore::Impl::readRecord(uint32_t group, SnapshotRecord* rec, bool* found) {
  std::string v;
  rocksdb::Status st = db->Get(rocksdb::ReadOptions(), snapKey(group), &v);
  *found = st.ok();
  if (st.IsNotFound()) return true;
  return st.ok() && decodeRecord(v, rec);
}

int RaftLogStore::Impl::loadSnapshot(uint32_t group, raft_snapshot** out) {
  *out = nullptr;
  SnapshotRecord rec;
  bool found = false;
  if (!readRecord(group, &rec, &found)) return RAFT_CORRUPT;
  if (!found) return 0;
  const std::filesystem::path file = snap_dir / rec.file;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return RAFT_IOERR;
  void* data = raft_malloc(rec.size > 0 ? rec.size : 1);
  size_t got = 0;
  while (data != nullptr && got < rec.size) {
    ssize_t n = ::read(fd, static_cast<char*>(data) + got, rec.size - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (data == nullptr) return RAFT_NOMEM;
  if (got != rec.size) {
    raft_free(data);
    return RAFT_CORRUPT;
  }
  auto* s = static_cast<raft_snapshot*>(raft_malloc(sizeof(raft_snapshot)));
  auto* bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (s == nullptr || bufs == nullptr) {
    raft_free(data);
    raft_free(s);
    raft_free(bufs);
    return RAFT_NOMEM;
  }
  Reader r{rec.configuration};
  if (!decodeConfiguration(r, &s->configuration)) {
    raft_free(data);
    raft_free(s);
    raft_free(bufs);
    return RAFT_CORRUPT;
  }
  s->index = rec.index;
  s->term = rec.term;
  s->configuration_index = rec.configuration_index;
  bufs[0].base = data;
  bufs[0].len = rec.size;
  s->bufs = bufs;
  s->n_bufs = 1;
  *out = s;
  return 0;
}

void RaftLogStore::Impl::removeSnapshotFiles(uint32_t group, const std::string& keep) {
  const std::string prefix = absl::StrCat("g", group, "-");
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(snap_dir, ec)) {
    const std::string name = f.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name != keep) std::filesystem::remove(f.path(), ec);
  }
}

void RaftLogStore::Impl::writerMain() {
  for (;;) {
    std::deque<std::unique_ptr<Job>> jobs;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;
      jobs.swap(queue);
    }
    // Every write of the round goes into one batch: one WAL record and one sync for all the
    // groups (the group commit across groups), instead of one per append.
    rocksdb::WriteBatch round;
    Merge merge(&round);
    bool wrote = false;
    std::vector<std::filesystem::path> obsolete;
    for (auto& j : jobs) {
      switch (j->kind) {
        case Job::Kind::kAppend:
        case Job::Kind::kTruncate:
          j->status = j->batch.Iterate(&merge).ok() ? 0 : RAFT_IOERR;
          wrote = true;
          break;
        case Job::Kind::kSnapshotPut:
          // Its file is durable before the record naming it joins the round.
          j->status = putSnapshot(*j, &obsolete);
          if (j->status == 0) j->status = j->batch.Iterate(&merge).ok() ? 0 : RAFT_IOERR;
          wrote = true;
          break;
        case Job::Kind::kSnapshotGet:
          break;  // after the write, so it sees every put before it
      }
    }
    if (wrote) {
      rocksdb::WriteOptions synced;
      synced.sync = true;
      rocksdb::Status st = db->Write(synced, &round);
      syncs.fetch_add(1, std::memory_order_relaxed);
      for (auto& j : jobs) {
        if (!st.ok() && j->kind != Job::Kind::kSnapshotGet) j->status = RAFT_IOERR;
        if (j->kind == Job::Kind::kAppend) appends.fetch_add(1, std::memory_order_relaxed);
      }
      if (st.ok()) {
        std::error_code ec;
        for (const auto& f : obsolete) std::filesystem::remove(f, ec);
      }
    }
    for (auto& j : jobs) {
      if (j->kind == Job::Kind::kSnapshotGet) j->status = loadSnapshot(j->log->group, &j->snapshot);
    }
    {
      std::lock_guard lock(mu);
      for (auto& j : jobs) finished.push_back(std::move(j));
    }
    uv_async_send(&finished_async);
  }
}

int RaftLogStore::Impl::putSnapshot(Job& j, std::vector<std::filesystem::path>* obsolete) {
  const uint32_t group = j.log->group;
  if (!writeFileDurably(snap_dir, j.record.file, j.data)) return RAFT_IOERR;
  SnapshotRecord old;
  bool found = false;
  if (readRecord(group, &old, &found) && found && old.file != j.record.file)
    obsolete->push_back(snap_dir / old.file);
  j.batch.Put(snapKey(group), encodeRecord(j.record));
  // An installed snapshot (trailing 0) replaces the whole log; our own keeps `trailing` entries
  // behind it for followers that lag a little.
  if (j.trailing == 0) {
    j.batch.DeleteRange(entryKey(group, 0), entryKey(group, kEndIndex));
  } else if (j.record.index > j.trailing) {
    j.batch.DeleteRange(entryKey(group, 0), entryKey(group, j.record.index - j.trailing + 1));
  }
  return 0;
}

// ---- RaftLogStore ----

RaftLogStore::RaftLogStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RaftLogStore::~RaftLogStore() {
  if (impl_ && impl_->writer.joinable()) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->stopping = true;
    }
    impl_->cv.notify_one();
    impl_->writer.join();
  }
}

absl::StatusOr<std::unique_ptr<RaftLogStore>> RaftLogStore::open(uv_loop_s* loop,
                                                                 std::filesystem::path dir) {
  auto impl = std::make_unique<Impl>();
  impl->loop = loop;
  impl->snap_dir = dir / "snap";
  std::error_code ec;
  std::filesystem::create_directories(impl->snap_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("raft log: create ", impl->snap_dir.string(), ": ", ec.message()));
  }
  rocksdb::Options o;
  o.create_if_missing = true;
  o.max_total_wal_size = 64 << 20;  // the log is short-lived: snapshots trim it
  o.write_buffer_size = 16 << 20;
  o.max_background_jobs = 2;
  // Every round ends in an fdatasync. Appending to a fresh WAL grows the file, so each sync also
  // writes the inode (a second disk request per round); a recycled WAL is overwritten in place.
  o.recycle_log_file_num = 4;
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(o, (dir / "log").string(), &db);
  if (!st.ok()) return absl::UnavailableError(absl::StrCat("raft log: open: ", st.ToString()));
  impl->db.reset(db);
  uv_async_init(loop, &impl->finished_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->complete(); });
  impl->finished_async.data = impl.get();
  Impl* raw = impl.get();
  impl->writer = std::thread([raw] {
    pthread_setname_np(pthread_self(), "wl-raft-log");
    raw->writerMain();
  });
  return std::unique_ptr<RaftLogStore>(new RaftLogStore(std::move(impl)));
}

absl::Status RaftLogStore::attach(raft_io* io, uint32_t group, const std::filesystem::path& uv_dir,
                                  raft_uv_transport* transport, RaftWire* wire) {
  auto gl = std::make_unique<GroupLog>();
  gl->store = impl_.get();
  gl->group = group;
  gl->wire = wire;
  gl->outer = io;
  const std::string d = uv_dir.string();
  std::error_code ec;
  std::filesystem::create_directories(uv_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("raft I/O: create ", d, ": ", ec.message()));
  if (int rv = raft_uv_init(&gl->inner, impl_->loop, d.c_str(), transport); rv != 0) {
    return absl::UnavailableError(absl::StrCat("raft I/O for group ", group, " in ", d, ": ",
                                               raft_strerror(rv), " (", gl->inner.errmsg, ")"));
  }
  gl->inner.data = gl.get();
  fillRaftIo(io, gl.get());
  gl.release();
  return absl::OkStatus();
}

void RaftLogStore::release(raft_io* io) {
  auto* gl = static_cast<GroupLog*>(io->impl);
  if (gl == nullptr) return;
  raft_uv_close(&gl->inner);
  delete gl;
  io->impl = nullptr;
}

absl::Status RaftLogStore::drop(uint32_t group) {
  rocksdb::WriteBatch batch;
  batch.Delete(metaKey(group));
  batch.Delete(snapKey(group));
  batch.DeleteRange(entryKey(group, 0), entryKey(group, kEndIndex));
  rocksdb::Status st = impl_->syncWrite(batch);
  impl_->removeSnapshotFiles(group, std::string());
  if (!st.ok())
    return absl::UnavailableError(
        absl::StrCat("raft log: drop group ", group, ": ", st.ToString()));
  return absl::OkStatus();
}

void RaftLogStore::close(std::function<void()> done) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  if (impl_->writer.joinable()) impl_->writer.join();
  impl_->complete();
  impl_->close_done = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->finished_async), [](uv_handle_t* h) {
    auto* impl = static_cast<Impl*>(h->data);
    if (impl->close_done) impl->close_done();
  });
}

RaftLogStore::Stats RaftLogStore::stats() const {
  Stats s;
  s.appends = impl_->appends.load(std::memory_order_relaxed);
  s.syncs = impl_->syncs.load(std::memory_order_relaxed);
  return s;
}

}  // namespace waverless::shard
