// Fuzzes app package unpacking (master::extractTar) with arbitrary bytes as
// a plain or compressed tar. Each input is extracted into a fresh folder of
// this process's scratch root; afterwards nothing may exist outside that
// folder that was not there before (no "..", absolute path or link escape),
// and everything inside it must be a plain file or folder.
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "master/package.h"

namespace fs = std::filesystem;

namespace {

fs::path g_root;  // <tmp>/wl-fuzz-package-<pid>: holds out/ and cwd/ only

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "package_fuzz: %s\n", what.c_str());
    std::abort();
  }
}

// Every path name the archive holds, as libarchive reads it (independently
// of extractTar, so an escape is caught even if extractTar misreads a name).
std::vector<std::string> entryNames(const std::string& data) {
  std::vector<std::string> names;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_memory(a, data.data(), data.size()) == ARCHIVE_OK) {
    struct archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK && names.size() < 1000) {
      if (const char* n = archive_entry_pathname(e)) names.emplace_back(n);
      if (const char* l = archive_entry_hardlink(e)) names.emplace_back(l);
      if (const char* l = archive_entry_symlink(e)) names.emplace_back(l);
    }
  }
  archive_read_free(a);
  return names;
}

void cleanup() {
  std::error_code ec;
  fs::remove_all(g_root, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_root = fs::temp_directory_path() / ("wl-fuzz-package-" + std::to_string(getpid()));
  fs::remove_all(g_root);
  fs::create_directories(g_root / "cwd");
  std::atexit(cleanup);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string archive(reinterpret_cast<const char*>(data), size);
  const fs::path out = g_root / "out";
  fs::create_directories(out);

  // Where each name would land if it escaped, and whether it was there before.
  std::vector<std::pair<fs::path, bool>> outside;
  for (const auto& name : entryNames(archive)) {
    for (const fs::path& p : {fs::path(name), (out / name).lexically_normal()}) {
      auto rel = p.lexically_relative(out);
      bool inside = !rel.empty() && *rel.begin() != "..";
      std::error_code ec;
      if (!inside)
        outside.emplace_back(p, fs::symlink_status(p, ec).type() != fs::file_type::not_found);
    }
  }

  // Relative names that bypass dir would land in cwd/, where they are seen.
  // (libFuzzer itself needs the real working directory back for artifacts.)
  const fs::path home = fs::current_path();
  fs::current_path(g_root / "cwd");
  auto st = waverless::master::extractTar(archive, out);
  fs::current_path(home);
  if (!st.ok()) {
    check(st.code() == absl::StatusCode::kInvalidArgument,
          "error is not InvalidArgument: " + st.ToString());
  }

  for (const auto& [p, existed] : outside) {
    std::error_code ec;
    bool exists = fs::symlink_status(p, ec).type() != fs::file_type::not_found;
    check(existed || !exists, "entry escaped the folder: " + p.string());
  }
  for (const auto& e : fs::directory_iterator(g_root)) {
    auto n = e.path().filename();
    check(n == "out" || n == "cwd", "created outside the folder: " + e.path().string());
  }
  check(fs::is_empty(g_root / "cwd"), "created in the working directory");
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    auto t = e.symlink_status().type();
    check(t == fs::file_type::regular || t == fs::file_type::directory,
          "not a plain file or folder: " + e.path().string());
  }
  fs::remove_all(out);
  return 0;
}
