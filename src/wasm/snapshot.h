// Pre-initialised instance snapshots (Proto-Faaslet style). Private to
// src/wasm.
//
// An app whose module exports `wl_init` gets one Snapshot when it is loaded:
// the engine instantiates a template instance, runs `_initialize` and
// `wl_init` in it (an app without wl_init gets one at its first fresh
// call, of a just-instantiated instance), and keeps
//   - its linear memory as an *image*: a sealed memfd holding the non-zero
//     pages (zero pages stay holes), which every new instance maps
//     MAP_PRIVATE (copy-on-write) instead of allocating memory, applying
//     data segments and running the initialisers again;
//   - the template's instance struct (globals, tables, segment flags),
//     which the module's restore_instance copies into each new instance.
// `instance: fresh` resets an instance to the snapshot after each call
// (rt::resetToImage + restore_instance) instead of freeing it.
//
// Must not: run guest code itself (the engine does, on an executor fiber),
// or know about apps beyond their descriptor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "wasm/engine.h"
#include "wasm/rt/module_abi.h"
#include "wasm/snapshot_file.h"

namespace waverless::wasm {

class Snapshot {
 public:
  // Takes over the template instance `storage` (a live instance of desc
  // that ran its initialisers): its memory is copied into the image and
  // freed, its struct kept for restores. On error the caller still owns it.
  static absl::StatusOr<std::unique_ptr<Snapshot>> capture(const WlModuleDescriptor* desc,
                                                           void* storage, const std::string& app);
  // Takes over a checked snapshot file and `storage`, a template instance
  // the module's load_state built from the file's state (its memory header
  // zeroed); max_pages: the memory limit of this module and app here.
  static std::unique_ptr<Snapshot> fromFile(const WlModuleDescriptor* desc, void* storage,
                                            SnapshotFile file, uint32_t max_pages);
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // The image: pages() wasm pages of fd() from offset() on (a memfd at 0,
  // or the snapshot file in the module cache).
  int fd() const { return fd_; }
  uint64_t offset() const { return offset_; }
  bool fromFile() const { return from_file_; }
  uint32_t pages() const { return pages_; }
  uint32_t maxPages() const { return max_pages_; }
  size_t imageBytes() const { return size_t{pages_} * 65536; }
  // Bytes of the image that hold data (the rest are holes that read as zero).
  size_t residentBytes() const { return resident_bytes_; }
  const void* templateInstance() const { return storage_; }
  // The image mapped read-only: the source resets copy written pages from.
  const uint8_t* view() const { return view_; }

 private:
  Snapshot() = default;
  const WlModuleDescriptor* desc_ = nullptr;
  void* storage_ = nullptr;
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool from_file_ = false;
  const uint8_t* view_ = nullptr;
  uint32_t pages_ = 0;
  uint32_t max_pages_ = 0;
  size_t resident_bytes_ = 0;
};

// The host services wl_init runs with: no KV, no body, no triggers. The
// first such call stops wl_init with a message naming it, so the deploy
// fails: a snapshot is taken once and shared by every instance for the
// app's lifetime, so it must not depend on data that changes (KV values
// do; the app's files/ are part of the deploy, so wl_init may read them).
class SnapshotInitHost : public HostServices {
 public:
  absl::StatusOr<std::optional<std::string>> kvGet(Fiber& f, std::string_view) override {
    return refuse(f, "wl_kv_get");
  }
  absl::Status kvSet(Fiber& f, std::string_view, std::string_view) override {
    return refuse(f, "wl_kv_set");
  }
  absl::Status kvDelete(Fiber& f, std::string_view) override { return refuse(f, "wl_kv_delete"); }
  absl::Status waitTriggered(Fiber& f) override { return refuse(f, "wl_wait_triggered"); }
  absl::Status kvSetBatch(Fiber& f,
                          const std::vector<std::pair<std::string, std::string>>&) override {
    return refuse(f, "wl_kv_set_batch");
  }
  absl::StatusOr<size_t> bodyRead(Fiber& f, char*, size_t) override {
    return refuse(f, "wl_body_read");
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kvScan(Fiber& f,
                                                                          std::string_view,
                                                                          size_t) override {
    return refuse(f, "wl_kv_scan");
  }
  absl::StatusOr<bool> kvCas(Fiber& f, std::string_view, std::optional<std::string_view>,
                             std::string_view) override {
    return refuse(f, "wl_kv_cas");
  }
  absl::StatusOr<int64_t> kvIncr(Fiber& f, std::string_view, int64_t) override {
    return refuse(f, "wl_kv_incr");
  }

 private:
  static absl::Status refuse(Fiber& f, const char* call);
};

}  // namespace waverless::wasm
