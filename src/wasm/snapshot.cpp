#include "wasm/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "wasm/rt/exec_context.h"

namespace waverless::wasm {

namespace {
constexpr size_t kChunk = 4096;  // the host page: the unit of copy-on-write

bool allZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i += sizeof(uint64_t)) {
    uint64_t v;
    memcpy(&v, p + i, sizeof v);
    if (v != 0) return false;
  }
  return true;
}
}  // namespace

absl::StatusOr<std::unique_ptr<Snapshot>> Snapshot::capture(const WlModuleDescriptor* desc,
                                                            void* storage, const std::string& app) {
  if (desc->restore_instance == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("app ", app,
                     ": its module cannot be snapshotted (it imports memories, tables or "
                     "globals), so it cannot export wl_init"));
  }
  wasm_rt_memory_t* mem = desc->memory(storage);
  size_t bytes = size_t{mem->pages} * 65536;
  int fd = memfd_create(absl::StrCat("wl-snapshot-", app).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("app ", app, ": memfd_create for its snapshot: ", strerror(errno)));
  }
  auto fail = [&](const char* what) {
    std::string msg = absl::StrCat("app ", app, ": ", what, " for its snapshot: ", strerror(errno));
    close(fd);
    return absl::ResourceExhaustedError(msg);
  };
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return fail("ftruncate");
  // Only pages holding data are written: a table built in a 64 MiB heap
  // costs its data, and the untouched rest of the memory stays a hole.
  size_t resident = 0;
  for (size_t off = 0; off < bytes; off += kChunk) {
    const uint8_t* p = mem->data + off;
    if (allZero(p, kChunk)) continue;
    size_t run = kChunk;
    while (off + run < bytes && !allZero(p + run, kChunk)) run += kChunk;
    for (size_t done = 0; done < run;) {
      ssize_t w = pwrite(fd, p + done, run - done, static_cast<off_t>(off + done));
      if (w <= 0) return fail("pwrite");
      done += static_cast<size_t>(w);
    }
    resident += run;
    off += run - kChunk;
  }
  // Sealed: no one can change the image under the instances mapping it.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return fail("sealing");
  }
  void* view = nullptr;
  if (bytes > 0) {
    view = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (view == MAP_FAILED) return fail("mmap");
  }
  auto s = std::unique_ptr<Snapshot>(new Snapshot());
  s->view_ = static_cast<const uint8_t*>(view);
  s->desc_ = desc;
  s->storage_ = storage;
  s->fd_ = fd;
  s->pages_ = mem->pages;
  s->max_pages_ = mem->max_pages;
  s->resident_bytes_ = resident;
  rt::freeMemory(mem);  // the image holds it now; restores never read it
  return s;
}

std::unique_ptr<Snapshot> Snapshot::fromFile(const WlModuleDescriptor* desc, void* storage,
                                             SnapshotFile file, uint32_t max_pages) {
  auto s = std::unique_ptr<Snapshot>(new Snapshot());
  s->desc_ = desc;
  s->storage_ = storage;
  s->fd_ = file.fd();
  s->offset_ = file.imageOffset();
  s->from_file_ = true;
  s->view_ = file.view();
  s->pages_ = file.pages();
  s->max_pages_ = max_pages;
  s->resident_bytes_ = file.residentBytes();
  file.release();
  return s;
}

Snapshot::~Snapshot() {
  if (storage_ != nullptr) {
    desc_->free_instance(storage_);  // its tables; the memory is already freed
    free(storage_);
  }
  if (view_ != nullptr) munmap(const_cast<uint8_t*>(view_), imageBytes());
  if (fd_ >= 0) close(fd_);
}

absl::Status SnapshotInitHost::refuse(Fiber& f, const char* call) {
  std::string msg = absl::StrCat(
      "wl_init called ", call,
      ": the KV store is not available to wl_init (its snapshot is shared by every instance, so "
      "it must not depend on data that changes; read the app's files/ instead)");
  f.exec().requestStop(rt::StopReason::kHostError, msg);
  return absl::FailedPreconditionError(msg);
}

}  // namespace waverless::wasm
