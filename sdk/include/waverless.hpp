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

// Stores value if key holds expected (nullopt: if key is absent).
// WL_ERR_CONFLICT: it did not; nothing was written.
inline wl_status kv_cas(std::string_view key, std::optional<std::string_view> expected,
                        std::string_view value) {
  return wl_kv_cas(key.data(), key.size(), expected ? expected->data() : nullptr,
                   expected ? static_cast<uint32_t>(expected->size()) : WL_KV_ABSENT, value.data(),
                   value.size());
}

// The new value of the integer under key after adding delta, or nullopt
// (*status, if given, says why).
inline std::optional<int64_t> kv_incr(std::string_view key, int64_t delta,
                                      wl_status* status = nullptr) {
  int64_t result = 0;
  wl_status s = wl_kv_incr(key.data(), key.size(), delta, &result);
  if (status != nullptr) *status = s;
  if (s != WL_OK) return std::nullopt;
  return result;
}

// This invocation's id (see wl_invocation_id).
inline std::string invocation_id() {
  std::string id(64, '\0');
  uint32_t len = 0;
  wl_status s = wl_invocation_id(id.data(), id.size(), &len);
  if (s == WL_ERR_BUFFER_TOO_SMALL) {
    id.resize(len);
    s = wl_invocation_id(id.data(), id.size(), &len);
  }
  id.resize(s == WL_OK ? len : 0);
  return id;
}

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

// For `body: stream` functions: appends the next bytes of the request body
// to out (at most max): false at the end of the body or on an error
// (*status, if given, says which: WL_OK at the end).
inline bool body_read(std::string& out, uint32_t max = 1u << 20, wl_status* status = nullptr) {
  size_t old = out.size();
  out.resize(old + max);
  uint32_t got = 0;
  wl_status s = wl_body_read(out.data() + old, max, &got);
  out.resize(old + (s == WL_OK ? got : 0));
  if (status != nullptr) *status = s;
  return s == WL_OK && got > 0;
}

// The whole request body of a `body: stream` function (it waits for the
// upload to finish: read piece by piece with body_read to overlap work).
inline std::optional<std::string> read_body(wl_status* status = nullptr) {
  std::string body;
  wl_status s = WL_OK;
  while (body_read(body, 1u << 20, &s)) {
  }
  if (status != nullptr) *status = s;
  if (s != WL_OK) return std::nullopt;
  return body;
}

inline std::string_view arg(const wl_arg* args, uint32_t argc, uint32_t i) {
  return i < argc ? std::string_view(args[i].data, args[i].len) : std::string_view();
}

}  // namespace wl
