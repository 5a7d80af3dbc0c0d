// The raft_io entries libraft calls for a group attached to a RaftLogStore (loop thread only):
// persistence goes to the store, networking, ticks and the clock to the group's raft_uv I/O.
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "shard/raft_log_internal.h"

namespace waverless::shard {

using namespace raft_log_format;  // NOLINT: this file is the format's reader

namespace {

GroupLog* logOf(raft_io* io) { return static_cast<GroupLog*>(io->impl); }

int ioErr(raft_io* io, const std::string& msg, int rv = RAFT_IOERR) {
  snprintf(io->errmsg, RAFT_ERRMSG_BUF_SIZE, "%s", msg.c_str());
  return rv;
}

int ioInit(raft_io* io, raft_id id, const char* address) {
  GroupLog* gl = logOf(io);
  int rv = gl->inner.init(&gl->inner, id, address);
  if (rv != 0) memcpy(io->errmsg, gl->inner.errmsg, RAFT_ERRMSG_BUF_SIZE);
  return rv;
}

void tickTrampoline(raft_io* inner) {
  auto* gl = static_cast<GroupLog*>(inner->data);
  if (gl->tick != nullptr) gl->tick(gl->outer);
}

void recvTrampoline(raft_io* inner, raft_message* msg) {
  auto* gl = static_cast<GroupLog*>(inner->data);
  if (gl->recv != nullptr) gl->recv(gl->outer, msg);
}

int ioStart(raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
  GroupLog* gl = logOf(io);
  gl->tick = tick;
  gl->recv = recv;
  if (gl->wire != nullptr) gl->wire->attach(gl->group, io, recv);
  return gl->inner.start(&gl->inner, msecs, tickTrampoline, recvTrampoline);
}

void ioClose(raft_io* io, raft_io_close_cb cb) {
  GroupLog* gl = logOf(io);
  gl->closing = true;
  gl->close_cb = cb;
  if (gl->wire != nullptr) gl->wire->detach(gl->group);
  gl->inner.close(&gl->inner, [](raft_io* inner) {
    auto* g = static_cast<GroupLog*>(inner->data);
    g->inner_closed = true;
    RaftLogStore::Impl::maybeClosed(g);
  });
}

int ioLoad(raft_io* io, raft_term* term, raft_id* voted_for, raft_snapshot** snapshot,
           raft_index* start_index, raft_entry* entries[], size_t* n_entries) {
  GroupLog* gl = logOf(io);
  RaftLogStore::Impl& s = *gl->store;
  *snapshot = nullptr;
  *start_index = 1;
  *entries = nullptr;
  *n_entries = 0;
  rocksdb::Status st;
  uint64_t t = 0, v = 0;
  if (!s.readMeta(gl->group, &t, &v, &st)) return ioErr(io, "raft log: unreadable term/vote");
  *term = t;
  *voted_for = v;

  SnapshotRecord rec;
  bool has_record = false;
  if (!s.readRecord(gl->group, &rec, &has_record))
    return ioErr(io, "raft log: unreadable snapshot record", RAFT_CORRUPT);
  s.removeSnapshotFiles(gl->group, has_record ? rec.file : std::string());
  if (has_record) {
    if (int rv = s.loadSnapshot(gl->group, snapshot); rv != 0)
      return ioErr(io, absl::StrCat("raft log: snapshot file ", rec.file, " unreadable"), rv);
  }

  std::vector<raft_entry> loaded;
  auto freeLoaded = [&] {
    for (raft_entry& e : loaded) raft_free(e.batch);
    loaded.clear();
  };
  const std::string prefix = groupPrefix('e', gl->group);
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions()));
  uint64_t first = 0, last = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Reader k{std::string_view(it->key().data(), it->key().size()).substr(prefix.size())};
    const uint64_t index = k.num(8);
    Reader r{std::string_view(it->value().data(), it->value().size())};
    raft_entry e{};
    e.term = r.num(8);
    e.type = static_cast<unsigned short>(r.num(2));
    if (!k.ok || !r.ok || (first != 0 && index != last + 1)) {
      freeLoaded();
      if (*snapshot != nullptr) {
        raft_configuration_close(&(*snapshot)->configuration);
        raft_free((*snapshot)->bufs[0].base);
        raft_free((*snapshot)->bufs);
        raft_free(*snapshot);
        *snapshot = nullptr;
      }
      return ioErr(io,
                   absl::StrCat("raft log: group ", gl->group, " entry ", index,
                                " malformed or out of sequence"),
                   RAFT_CORRUPT);
    }
    if (first == 0) first = index;
    last = index;
    e.buf.len = r.in.size();
    e.buf.base = raft_malloc(e.buf.len > 0 ? e.buf.len : 1);
    if (e.buf.base == nullptr) {
      freeLoaded();
      return ioErr(io, "raft log: out of memory", RAFT_NOMEM);
    }
    memcpy(e.buf.base, r.in.data(), e.buf.len);
    e.batch = e.buf.base;
    loaded.push_back(e);
  }

  uint64_t start = loaded.empty() ? 1 : first;
  if (*snapshot != nullptr) {
    const uint64_t snap = (*snapshot)->index;
    if (loaded.empty() || last < snap) {
      freeLoaded();  // entries the snapshot already covers
      start = snap + 1;
    } else if (first > snap + 1) {
      freeLoaded();
      return ioErr(io,
                   absl::StrCat("raft log: group ", gl->group, " has a gap after snapshot ", snap),
                   RAFT_CORRUPT);
    }
  }
  if (!loaded.empty()) {
    *entries = static_cast<raft_entry*>(raft_malloc(loaded.size() * sizeof(raft_entry)));
    if (*entries == nullptr) {
      freeLoaded();
      return ioErr(io, "raft log: out of memory", RAFT_NOMEM);
    }
    memcpy(*entries, loaded.data(), loaded.size() * sizeof(raft_entry));
  }
  *start_index = start;
  *n_entries = loaded.size();
  gl->next_index = start + loaded.size();
  return 0;
}

bool hasState(RaftLogStore::Impl& s, uint32_t group, uint64_t* last_index, uint64_t* term) {
  rocksdb::Status st;
  uint64_t vote = 0;
  s.readMeta(group, term, &vote, &st);
  *last_index = 0;
  const std::string prefix = groupPrefix('e', group);
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(entryKey(group, kEndIndex));
  if (it->Valid() && it->key().starts_with(prefix)) {
    Reader k{std::string_view(it->key().data(), it->key().size()).substr(prefix.size())};
    *last_index = k.num(8);
  }
  SnapshotRecord rec;
  bool found = false;
  s.readRecord(group, &rec, &found);
  if (found && rec.index > *last_index) *last_index = rec.index;
  return *term != 0 || *last_index != 0;
}

int writeConfigurationEntry(raft_io* io, uint64_t index, uint64_t term,
                            const raft_configuration* conf, bool set_term) {
  GroupLog* gl = logOf(io);
  raft_buffer buf{};
  if (int rv = raft_configuration_encode(conf, &buf); rv != 0) return rv;
  raft_entry e{};
  e.term = term;
  e.type = RAFT_CHANGE;
  e.buf = buf;
  rocksdb::WriteBatch batch;
  batch.Put(entryKey(gl->group, index), encodeEntry(e));
  if (set_term) batch.Put(metaKey(gl->group), encodeMeta(term, 0));
  raft_free(buf.base);
  if (!gl->store->syncWrite(batch).ok()) return ioErr(io, "raft log: write failed");
  gl->next_index = index + 1;
  return 0;
}

int ioBootstrap(raft_io* io, const raft_configuration* conf) {
  GroupLog* gl = logOf(io);
  uint64_t last = 0, term = 0;
  if (hasState(*gl->store, gl->group, &last, &term)) return RAFT_CANTBOOTSTRAP;
  return writeConfigurationEntry(io, 1, 1, conf, true);
}

int ioRecover(raft_io* io, const raft_configuration* conf) {
  GroupLog* gl = logOf(io);
  uint64_t last = 0, term = 0;
  hasState(*gl->store, gl->group, &last, &term);
  return writeConfigurationEntry(io, last + 1, term > 0 ? term : 1, conf, term == 0);
}

int writeMeta(raft_io* io, uint64_t term, uint64_t vote) {
  GroupLog* gl = logOf(io);
  rocksdb::WriteBatch batch;
  batch.Put(metaKey(gl->group), encodeMeta(term, vote));
  return gl->store->syncWrite(batch).ok() ? 0 : ioErr(io, "raft log: term/vote write failed");
}

int ioSetTerm(raft_io* io, raft_term term) { return writeMeta(io, term, 0); }

int ioSetVote(raft_io* io, raft_id server) {
  GroupLog* gl = logOf(io);
  rocksdb::Status st;
  uint64_t term = 0, vote = 0;
  if (!gl->store->readMeta(gl->group, &term, &vote, &st))
    return ioErr(io, "raft log: unreadable term/vote");
  return writeMeta(io, term, server);
}

int ioSend(raft_io* io, raft_io_send* req, const raft_message* msg, raft_io_send_cb cb) {
  GroupLog* gl = logOf(io);
  if (gl->wire != nullptr) return gl->wire->send(gl->group, req, msg, cb);
  return gl->inner.send(&gl->inner, req, msg, cb);
}

// A job of kind for gl's writer round.
std::unique_ptr<Job> newJob(GroupLog* gl, Job::Kind kind) {
  auto job = std::make_unique<Job>();
  job->kind = kind;
  job->log = gl;
  return job;
}

int ioAppend(raft_io* io, raft_io_append* req, const raft_entry entries[], unsigned n,
             raft_io_append_cb cb) {
  GroupLog* gl = logOf(io);
  auto job = newJob(gl, Job::Kind::kAppend);
  job->append = req;
  req->cb = cb;
  for (unsigned i = 0; i < n; ++i)
    job->batch.Put(entryKey(gl->group, gl->next_index + i), encodeEntry(entries[i]));
  gl->next_index += n;
  gl->store->submit(std::move(job));
  return 0;
}

int ioTruncate(raft_io* io, raft_index index) {
  GroupLog* gl = logOf(io);
  auto job = newJob(gl, Job::Kind::kTruncate);
  job->batch.DeleteRange(entryKey(gl->group, index), entryKey(gl->group, kEndIndex));
  gl->next_index = index;
  gl->store->submit(std::move(job));
  return 0;
}

int ioSnapshotPut(raft_io* io, unsigned trailing, raft_io_snapshot_put* req,
                  const raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
  GroupLog* gl = logOf(io);
  auto job = newJob(gl, Job::Kind::kSnapshotPut);
  job->put = req;
  job->trailing = trailing;
  req->cb = cb;
  size_t size = 0;
  for (unsigned i = 0; i < snapshot->n_bufs; ++i) size += snapshot->bufs[i].len;
  job->data.reserve(size);
  for (unsigned i = 0; i < snapshot->n_bufs; ++i)
    job->data.append(static_cast<const char*>(snapshot->bufs[i].base), snapshot->bufs[i].len);
  job->record.index = snapshot->index;
  job->record.term = snapshot->term;
  job->record.configuration_index = snapshot->configuration_index;
  job->record.size = size;
  job->record.file =
      absl::StrCat("g", gl->group, "-", snapshot->term, "-", snapshot->index, ".snap");
  encodeConfiguration(job->record.configuration, snapshot->configuration);
  if (trailing == 0) gl->next_index = snapshot->index + 1;
  gl->store->submit(std::move(job));
  return 0;
}

int ioSnapshotGet(raft_io* io, raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
  GroupLog* gl = logOf(io);
  auto job = newJob(gl, Job::Kind::kSnapshotGet);
  job->get = req;
  req->cb = cb;
  gl->store->submit(std::move(job));
  return 0;
}

raft_time ioTime(raft_io* io) {
  GroupLog* gl = logOf(io);
  return gl->inner.time(&gl->inner);
}

int ioRandom(raft_io* io, int min, int max) {
  GroupLog* gl = logOf(io);
  return gl->inner.random(&gl->inner, min, max);
}

int ioAsyncWork(raft_io* io, raft_io_async_work* req, raft_io_async_work_cb cb) {
  GroupLog* gl = logOf(io);
  return gl->inner.async_work(&gl->inner, req, cb);
}

}  // namespace

void fillRaftIo(raft_io* io, GroupLog* gl) {
  *io = raft_io{};
  io->version = gl->inner.version;
  io->impl = gl;
  io->init = ioInit;
  io->close = ioClose;
  io->load = ioLoad;
  io->start = ioStart;
  io->bootstrap = ioBootstrap;
  io->recover = ioRecover;
  io->set_term = ioSetTerm;
  io->set_vote = ioSetVote;
  io->send = ioSend;
  io->append = ioAppend;
  io->truncate = ioTruncate;
  io->snapshot_put = ioSnapshotPut;
  io->snapshot_get = ioSnapshotGet;
  io->time = ioTime;
  io->random = ioRandom;
  io->async_work = gl->inner.async_work != nullptr ? ioAsyncWork : nullptr;
}

}  // namespace waverless::shard
