// App packages: the tar of an app folder (app.yaml, app.wasm, files/) that
// the CLI uploads and nodes ship to each other.
#pragma once

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace waverless::master {

// Packs app.yaml, app.wasm and every regular file under files/.
absl::StatusOr<std::string> packApp(const std::filesystem::path& dir);
// Packs every regular file under dir (paths relative to dir).
absl::StatusOr<std::string> packTree(const std::filesystem::path& dir);

// Extracts a tar archive (plain or gzip) into dir; refuses absolute paths,
// "..", links and device files.
absl::Status extractTar(const std::string& archive, const std::filesystem::path& dir);

}  // namespace waverless::master
