// App packages: the tar of an app folder (app.yaml, app.wasm, files/) that
// the CLI uploads and nodes ship to each other.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace waverless::master {

// Packs app.yaml, app.wasm and every regular file under files/.
absl::StatusOr<std::string> packApp(const std::filesystem::path& dir);
// Packs every regular file under dir (paths relative to dir).
absl::StatusOr<std::string> packTree(const std::filesystem::path& dir);

// What one package may expand to: a small compressed upload must not fill
// the disk (a decompression bomb).
struct UnpackLimits {
  uint64_t max_bytes = uint64_t{1} << 30;  // all files together
  uint64_t max_entries = 10000;            // files and folders
};

// Extracts a tar archive (plain or compressed) into dir; refuses absolute
// paths, "..", links and device files, and stops with InvalidArgument when
// the contents pass `limits`.
absl::Status extractTar(const std::string& archive, const std::filesystem::path& dir,
                        UnpackLimits limits = {});

}  // namespace waverless::master
