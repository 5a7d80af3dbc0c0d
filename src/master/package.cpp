#include "master/package.h"

#include <archive.h>
#include <archive_entry.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"

namespace waverless::master {

namespace fs = std::filesystem;

namespace {

absl::StatusOr<std::string> pack(const std::vector<std::pair<std::string, fs::path>>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* o, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(o)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& [name, path] : entries) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      archive_write_free(a);
      return absl::NotFoundError(path.string() + ": cannot read");
    }
    std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

}  // namespace

absl::StatusOr<std::string> packApp(const fs::path& dir) {
  std::vector<std::pair<std::string, fs::path>> entries;
  for (const char* f : {"app.yaml", "app.wasm"}) {
    if (!fs::exists(dir / f)) return absl::NotFoundError((dir / f).string() + " is missing");
    entries.emplace_back(f, dir / f);
  }
  std::error_code ec;
  if (fs::is_directory(dir / "files", ec)) {
    for (const auto& e : fs::recursive_directory_iterator(dir / "files", ec)) {
      if (e.is_regular_file()) entries.emplace_back(fs::relative(e.path(), dir).string(), e.path());
    }
  }
  return pack(entries);
}

absl::StatusOr<std::string> packTree(const fs::path& dir) {
  std::vector<std::pair<std::string, fs::path>> entries;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) entries.emplace_back(fs::relative(e.path(), dir).string(), e.path());
  }
  return pack(entries);
}

absl::Status extractTar(const std::string& data, const fs::path& dir, UnpackLimits limits) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  if (archive_read_open_memory(a, data.data(), data.size()) != ARCHIVE_OK) {
    std::string err = archive_error_string(a) ? archive_error_string(a) : "unreadable archive";
    archive_read_free(a);
    return absl::InvalidArgumentError("app package: " + err);
  }
  absl::Status st;
  struct archive_entry* e;
  int rc;
  uint64_t entries = 0, bytes = 0;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (++entries > limits.max_entries) {
      st = absl::InvalidArgumentError(
          absl::StrCat("app package: more than ", limits.max_entries, " entries"));
      break;
    }
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    while (name.starts_with("./")) name = name.substr(2);
    if (name.empty()) continue;
    fs::path rel(name);
    bool bad = rel.is_absolute();
    for (const auto& part : rel) bad |= part == "..";
    auto type = archive_entry_filetype(e);
    if (bad || (type != AE_IFREG && type != AE_IFDIR)) {
      st = absl::InvalidArgumentError("app package: refusing entry '" + name +
                                      "' (only plain files and folders inside the app)");
      break;
    }
    fs::path out = dir / rel;
    std::error_code ec;
    if (type == AE_IFDIR) {
      fs::create_directories(out, ec);
      continue;
    }
    fs::create_directories(out.parent_path(), ec);
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    const void* buf;
    size_t size;
    la_int64_t offset;
    bool too_big = false;
    while ((rc = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
      bytes += size;
      if (bytes > limits.max_bytes) {
        too_big = true;
        break;
      }
      f.write(static_cast<const char*>(buf), static_cast<std::streamsize>(size));
    }
    if (too_big) {
      st = absl::InvalidArgumentError(absl::StrCat(
          "app package: its files expand past ", limits.max_bytes >> 20, " MiB (at '", name, "')"));
      break;
    }
    if (rc != ARCHIVE_EOF || !f) {
      st = absl::InvalidArgumentError("app package: truncated entry '" + name + "'");
      break;
    }
  }
  if (st.ok() && rc != ARCHIVE_EOF) {
    st =
        absl::InvalidArgumentError(std::string("app package: ") +
                                   (archive_error_string(a) ? archive_error_string(a) : "bad tar"));
  }
  archive_read_free(a);
  return st;
}

}  // namespace waverless::master
