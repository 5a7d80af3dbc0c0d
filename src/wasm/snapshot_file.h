// A snapshot kept on disk next to its compiled module, and shipped with it
// by deploy-once. Private to src/wasm, except pack/unpack (engine.h).
//
// One file per (module build key, app): <key32>.<app>.snap in the module
// cache. It holds what a Snapshot needs in a form that names no address:
//   header   magic, format version, module ABI version, the module's build
//            key, the image's page count, the lengths below, checksum;
//   state    the template instance's state from the module's save_state;
//   files    each path wl_init passed to wl_file_open, with the result and
//            the file's sha256: the snapshot is valid only while they are
//            the same (wl_init may read files/; it cannot read anything
//            else that changes, see SnapshotInitHost);
//   runs     the 4 KiB pages of the image that hold data;
//   image    at a 64 KiB-aligned offset, the linear memory laid out as it
//            is, the zero pages left as holes: instances map the file
//            MAP_PRIVATE straight from the page cache.
// The packed form (the wire) is the same bytes up to the runs, then the
// runs' data back to back.
//
// Everything read is checked before use: sizes against the file and each
// other, the checksum (Fletcher-64 over the header, state, files, runs
// and the runs' data: it catches a torn or damaged file at the cost of one
// pass over the data), then the versions and the build key. The module's
// load_state checks the state itself. A file that fails any check is not
// used: the engine runs wl_init instead and rewrites it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::wasm {

inline constexpr uint32_t kSnapshotFormat = 1;

// One wl_file_open that wl_init made: its result, and the content's sha256
// (raw bytes) when it succeeded.
struct InitFileUse {
  std::string path;
  int32_t code = 0;
  std::string sha256;
  bool operator==(const InitFileUse&) const = default;
};

// What wl_file_open(path) gives now for the app's files folder.
InitFileUse fingerprintAppFile(const std::filesystem::path& files_dir, const std::string& path);

// Writes the file atomically (a temporary in the same folder, renamed).
// image: `pages` wasm pages, read-only.
absl::Status writeSnapshotFile(const std::filesystem::path& path, std::string_view build_key,
                               std::string_view state, const std::vector<InitFileUse>& files,
                               const uint8_t* image, uint32_t pages);

// An opened, checked file. Owns its descriptor and its read-only mapping of
// the image.
class SnapshotFile {
 public:
  SnapshotFile() = default;
  SnapshotFile(SnapshotFile&& o) noexcept;
  SnapshotFile& operator=(SnapshotFile&& o) noexcept;
  ~SnapshotFile();

  // Errors: NotFound, no file; DataLoss, truncated or damaged;
  // FailedPrecondition, another format, module ABI or build key.
  static absl::StatusOr<SnapshotFile> open(const std::filesystem::path& path,
                                           std::string_view build_key);

  int fd() const { return fd_; }
  uint64_t imageOffset() const { return image_offset_; }
  uint32_t pages() const { return pages_; }
  size_t residentBytes() const { return resident_; }
  const uint8_t* view() const { return view_; }
  const std::string& state() const { return state_; }
  const std::vector<InitFileUse>& files() const { return files_; }
  // Hands the descriptor and the mapping to the caller (a Snapshot).
  void release() {
    fd_ = -1;
    view_ = nullptr;
  }

 private:
  int fd_ = -1;
  const uint8_t* view_ = nullptr;
  uint64_t image_offset_ = 0;
  uint32_t pages_ = 0;
  size_t resident_ = 0;
  std::string state_;
  std::vector<InitFileUse> files_;
};

// The wire form of a snapshot file, checked as open() checks (the build key
// excepted: the receiver checks it when it loads the module).
absl::StatusOr<std::string> packSnapshotFile(const std::filesystem::path& path);
// Checks a packed snapshot and writes it as a snapshot file, atomically.
absl::Status unpackSnapshotFile(std::string_view packed, const std::filesystem::path& path);

}  // namespace waverless::wasm
