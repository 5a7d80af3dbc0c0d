// Thin C++ layer over waverless.h for guests built with -fno-exceptions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "waverless.h"

namespace wl {

// The value of key, or nullopt when it does not exist; *status (if given)
// receives the raw code for other errors.
inline std::optional<std::string> kv_get(std::string_view key, wl_status* status = nullptr) {
  std::string value(256, '\0');
  uint32_t len = 0;
  wl_status s = wl_kv_get(key.data(), key.size(), value.data(), value.size(), &len);
  if (s == WL_ERR_BUFFER_TOO_SMALL) {
    value.resize(len);
    s = wl_kv_get(key.data(), key.size(), value.data(), value.size(), &len);
  }
  if (status != nullptr) *status = s;
  if (s != WL_OK) return std::nullopt;
  value.resize(len);
  return value;
}

inline wl_status kv_set(std::string_view key, std::string_view value) {
  return wl_kv_set(key.data(), key.size(), value.data(), value.size());
}

inline wl_status kv_delete(std::string_view key) { return wl_kv_delete(key.data(), key.size()); }

inline wl_status wait_triggered() { return wl_wait_triggered(); }

inline wl_status output(std::string_view data) { return wl_output_write(data.data(), data.size()); }

inline void log(int level, std::string_view msg) { wl_log(level, msg.data(), msg.size()); }

// Whole contents of a file in the app's data folder, or nullopt.
inline std::optional<std::string> read_file(std::string_view path) {
  int32_t fd = -1;
  if (wl_file_open(path.data(), path.size(), &fd) != WL_OK) return std::nullopt;
  uint64_t size = 0;
  wl_file_size(fd, &size);
  std::string data(size, '\0');
  uint64_t off = 0;
  while (off < size) {
    uint32_t got = 0;
    if (wl_file_read_at(fd, off, data.data() + off, size - off, &got) != WL_OK || got == 0) break;
    off += got;
  }
  wl_file_close(fd);
  data.resize(off);
  return data;
}

inline std::string_view arg(const wl_arg* args, uint32_t argc, uint32_t i) {
  return i < argc ? std::string_view(args[i].data, args[i].len) : std::string_view();
}

}  // namespace wl
