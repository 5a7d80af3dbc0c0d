// Host functions: every pointer/length from the guest is checked against its
// linear memory before use; errors are return codes, and anything that must
// end the invocation is recorded on the ExecContext so the module's thunk
// unwinds after this frame has returned.
#include "wasm/host_abi.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_map.h"
#include "sdk/include/waverless.h"
#include "wasm/host_call.h"
#include "wasm/instance.h"

namespace waverless::wasm {

InvocationState::~InvocationState() {
  for (auto& [guest, fd] : files) close(fd);
  if (dir_fd >= 0) close(dir_fd);
}

void InvocationState::appendLog(std::string_view text) {
  if (log.size() >= max_log) return;
  log.append(text.substr(0, max_log - log.size()));
}

namespace {
bool pathAllowed(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    if (p.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}
}  // namespace

int32_t openAppFile(const std::filesystem::path& files_dir, int* dir_fd, std::string_view path,
                    int* fd) {
  if (files_dir.empty() || !pathAllowed(path)) return WL_ERR_PERMISSION;
  if (*dir_fd < 0) {
    *dir_fd = open(files_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dir_fd < 0) return errno == ENOENT ? WL_ERR_NOT_FOUND : WL_ERR_IO;
  }
  // The kernel resolves the path beneath the folder: symlinks leading out
  // fail with EXDEV instead of being followed.
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  std::string p(path);
  long got = syscall(SYS_openat2, *dir_fd, p.c_str(), &how, sizeof how);
  if (got < 0) {
    return errno == ENOENT                                         ? WL_ERR_NOT_FOUND
           : (errno == EXDEV || errno == ELOOP || errno == EACCES) ? WL_ERR_PERMISSION
                                                                   : WL_ERR_IO;
  }
  struct stat st {};
  if (fstat(static_cast<int>(got), &st) != 0 || !S_ISREG(st.st_mode)) {
    close(static_cast<int>(got));
    return WL_ERR_INVALID;
  }
  *fd = static_cast<int>(got);
  return WL_OK;
}

namespace {

using host::Guest;
using host::thunk;
using host::u32;
using rt::StopReason;

void logHostDenial(InstanceEnv& e, std::string_view call, const absl::Status& s) {
  // Also the refusals whose code alone leaves the guest's author guessing why.
  if (s.code() == absl::StatusCode::kPermissionDenied ||
      s.code() == absl::StatusCode::kInvalidArgument || s.code() == absl::StatusCode::kOutOfRange) {
    e.inv->appendLog(absl::StrCat("[waverless] ", std::string(call), ": ", s.message(), "\n"));
  }
}

// --- waverless --------------------------------------------------------------

void kvGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_get"};
  if (!g.check(u32(a, 0), u32(a, 1), "key") || !g.check(u32(a, 2), u32(a, 3), "buffer") ||
      !g.check(u32(a, 4), 4, "length pointer")) {
    return;
  }
  InvocationState& inv = *e.inv;
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  std::string key(g.view(u32(a, 0), u32(a, 1)));
  if (!(inv.stash_value && inv.stash_key == key)) {
    auto got = inv.host->kvGet(*inv.fiber, key);
    if (!got.ok()) {
      logHostDenial(e, "kv_get", got.status());
      *r = common::guestCode(got.status());
      return;
    }
    if (!got->has_value()) {
      inv.stash_value.reset();
      *r = WL_ERR_NOT_FOUND;
      return;
    }
    inv.stash_key = key;
    inv.stash_value = std::move(**got);
  }
  // Memory may only have grown while we waited, never moved.
  const std::string& v = *inv.stash_value;
  g.store<uint32_t>(u32(a, 4), static_cast<uint32_t>(v.size()), "length pointer");
  if (v.size() > u32(a, 3)) {
    *r = WL_ERR_BUFFER_TOO_SMALL;
    return;
  }
  memcpy(g.at(u32(a, 2)), v.data(), v.size());
  inv.stash_value.reset();
  *r = WL_OK;
}

void kvSet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_set"};
  if (!g.check(u32(a, 0), u32(a, 1), "key") || !g.check(u32(a, 2), u32(a, 3), "value")) return;
  InvocationState& inv = *e.inv;
  if (u32(a, 3) > inv.max_value) {
    *r = WL_ERR_TOO_LARGE;
    return;
  }
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  std::string key(g.view(u32(a, 0), u32(a, 1)));
  if (inv.stash_key == key) inv.stash_value.reset();
  absl::Status s = inv.host->kvSet(*inv.fiber, key, g.view(u32(a, 2), u32(a, 3)));
  logHostDenial(e, "kv_set", s);
  *r = common::guestCode(s);
}

void kvDelete(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_delete"};
  if (!g.check(u32(a, 0), u32(a, 1), "key")) return;
  InvocationState& inv = *e.inv;
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  std::string key(g.view(u32(a, 0), u32(a, 1)));
  if (inv.stash_key == key) inv.stash_value.reset();
  absl::Status s = inv.host->kvDelete(*inv.fiber, key);
  logHostDenial(e, "kv_delete", s);
  *r = common::guestCode(s);
}

void kvCas(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_cas"};
  const bool absent = u32(a, 3) == WL_KV_ABSENT;
  if (!g.check(u32(a, 0), u32(a, 1), "key") ||
      (!absent && !g.check(u32(a, 2), u32(a, 3), "expected value")) ||
      !g.check(u32(a, 4), u32(a, 5), "value")) {
    return;
  }
  InvocationState& inv = *e.inv;
  if (u32(a, 5) > inv.max_value) {
    *r = WL_ERR_TOO_LARGE;
    return;
  }
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  std::string key(g.view(u32(a, 0), u32(a, 1)));
  if (inv.stash_key == key) inv.stash_value.reset();
  // Copies: the call may park, and the guest's memory is only read here.
  std::optional<std::string> expected;
  if (!absent) expected.emplace(g.view(u32(a, 2), u32(a, 3)));
  std::string value(g.view(u32(a, 4), u32(a, 5)));
  auto stored = inv.host->kvCas(*inv.fiber, key, expected, value);
  if (!stored.ok()) {
    logHostDenial(e, "kv_cas", stored.status());
    *r = common::guestCode(stored.status());
    return;
  }
  *r = *stored ? WL_OK : WL_ERR_CONFLICT;
}

void kvIncr(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_incr"};
  if (!g.check(u32(a, 0), u32(a, 1), "key") || !g.check(u32(a, 3), 8, "result pointer")) return;
  InvocationState& inv = *e.inv;
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  std::string key(g.view(u32(a, 0), u32(a, 1)));
  if (inv.stash_key == key) inv.stash_value.reset();
  auto sum = inv.host->kvIncr(*inv.fiber, key, static_cast<int64_t>(a[2]));
  if (!sum.ok()) {
    logHostDenial(e, "kv_incr", sum.status());
    *r = common::guestCode(sum.status());
    return;
  }
  // Memory may only have grown while we waited: the pointer checked above is still inside it.
  g.store<int64_t>(u32(a, 3), *sum, "result pointer");
  *r = WL_OK;
}

void invocationId(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "invocation_id"};
  if (!g.check(u32(a, 0), u32(a, 1), "buffer") || !g.check(u32(a, 2), 4, "length pointer")) {
    return;
  }
  InvocationState& inv = *e.inv;
  std::string id = inv.host == nullptr ? std::string() : inv.host->invocationId();
  if (id.empty()) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  g.store<uint32_t>(u32(a, 2), static_cast<uint32_t>(id.size()), "length pointer");
  if (id.size() > u32(a, 1)) {
    *r = WL_ERR_BUFFER_TOO_SMALL;
    return;
  }
  memcpy(g.at(u32(a, 0)), id.data(), id.size());
  *r = WL_OK;
}

// Parses [u32 klen][key][u32 vlen][value]...; false if malformed.
bool unpack(std::string_view buf, std::vector<std::pair<std::string, std::string>>* out) {
  size_t at = 0;
  while (at < buf.size()) {
    uint32_t kl, vl;
    if (buf.size() - at < 4) return false;
    memcpy(&kl, buf.data() + at, 4);
    at += 4;
    if (buf.size() - at < kl) return false;
    std::string k(buf.substr(at, kl));
    at += kl;
    if (buf.size() - at < 4) return false;
    memcpy(&vl, buf.data() + at, 4);
    at += 4;
    if (buf.size() - at < vl) return false;
    out->emplace_back(std::move(k), std::string(buf.substr(at, vl)));
    at += vl;
  }
  return true;
}

void kvSetBatch(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_set_batch"};
  if (!g.check(u32(a, 0), u32(a, 1), "buffer")) return;
  InvocationState& inv = *e.inv;
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!unpack(g.view(u32(a, 0), u32(a, 1)), &pairs)) {
    *r = WL_ERR_INVALID;
    return;
  }
  for (const auto& [k, v] : pairs) {
    if (v.size() > inv.max_value) {
      *r = WL_ERR_TOO_LARGE;
      return;
    }
    if (inv.stash_key == k) inv.stash_value.reset();
  }
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  absl::Status s = inv.host->kvSetBatch(*inv.fiber, pairs);
  logHostDenial(e, "kv_set_batch", s);
  *r = common::guestCode(s);
}

void kvScan(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "kv_scan"};
  if (!g.check(u32(a, 0), u32(a, 1), "prefix") || !g.check(u32(a, 3), u32(a, 4), "buffer") ||
      !g.check(u32(a, 5), 4, "length pointer")) {
    return;
  }
  InvocationState& inv = *e.inv;
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  // The stash key cannot collide with a real key: keys never start with NUL
  // followed by "scan" and a limit.
  std::string stash = absl::StrCat(std::string(1, '\0'), "scan", u32(a, 2), ":",
                                   std::string(g.view(u32(a, 0), u32(a, 1))));
  if (!(inv.stash_value && inv.stash_key == stash)) {
    auto got = inv.host->kvScan(*inv.fiber, g.view(u32(a, 0), u32(a, 1)), u32(a, 2));
    if (!got.ok()) {
      logHostDenial(e, "kv_scan", got.status());
      *r = common::guestCode(got.status());
      return;
    }
    std::string packed;
    for (const auto& [k, v] : *got) {
      uint32_t kl = static_cast<uint32_t>(k.size()), vl = static_cast<uint32_t>(v.size());
      packed.append(reinterpret_cast<const char*>(&kl), 4).append(k);
      packed.append(reinterpret_cast<const char*>(&vl), 4).append(v);
      if (packed.size() > inv.max_value) {
        *r = WL_ERR_TOO_LARGE;
        return;
      }
    }
    inv.stash_key = stash;
    inv.stash_value = std::move(packed);
  }
  const std::string& v = *inv.stash_value;
  g.store<uint32_t>(u32(a, 5), static_cast<uint32_t>(v.size()), "length pointer");
  if (v.size() > u32(a, 4)) {
    *r = WL_ERR_BUFFER_TOO_SMALL;
    return;
  }
  memcpy(g.at(u32(a, 3)), v.data(), v.size());
  inv.stash_value.reset();
  *r = WL_OK;
}

void waitTriggered(InstanceEnv& e, const uint64_t*, uint64_t* r) {
  InvocationState& inv = *e.inv;
  *r = inv.host == nullptr ? WL_OK : common::guestCode(inv.host->waitTriggered(*inv.fiber));
}

void sleepMs(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  absl::Status st = e.inv->fiber->sleepFor(std::chrono::milliseconds(u32(a, 0)));
  *r = st.ok() ? WL_OK : WL_ERR_TIMEOUT;
}

void failCall(InstanceEnv& e, const uint64_t* a, uint64_t*) {
  Guest g{e, "fail"};
  if (!g.check(u32(a, 1), u32(a, 2), "message")) return;
  e.exec->fail_code = static_cast<int32_t>(u32(a, 0));
  e.exec->requestStop(StopReason::kFailed,
                      absl::StrCat("failed: ", std::string(g.view(u32(a, 1), u32(a, 2)))));
}

void outputWrite(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "output_write"};
  if (!g.check(u32(a, 0), u32(a, 1), "data")) return;
  InvocationState& inv = *e.inv;
  if (inv.output.size() + u32(a, 1) > inv.max_output) {
    *r = WL_ERR_TOO_LARGE;
    return;
  }
  inv.output.append(g.view(u32(a, 0), u32(a, 1)));
  *r = WL_OK;
}

void bodyRead(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "body_read"};
  if (!g.check(u32(a, 0), u32(a, 1), "buffer") || !g.check(u32(a, 2), 4, "count pointer")) return;
  InvocationState& inv = *e.inv;
  if (u32(a, 1) == 0) {
    *r = WL_ERR_INVALID;  // a zero count would read as the end of the body
    return;
  }
  if (inv.host == nullptr) {
    *r = WL_ERR_UNAVAILABLE;
    return;
  }
  // Memory may only grow while the fiber waits, never move: the pointer stays valid.
  auto got = inv.host->bodyRead(*inv.fiber, reinterpret_cast<char*>(g.at(u32(a, 0))), u32(a, 1));
  if (!got.ok()) {
    inv.appendLog(absl::StrCat("[waverless] body_read: ", got.status().message(), "\n"));
    *r = common::guestCode(got.status());
    return;
  }
  g.store<uint32_t>(u32(a, 2), static_cast<uint32_t>(*got), "count pointer");
  *r = WL_OK;
}

void logLine(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "log"};
  if (!g.check(u32(a, 1), u32(a, 2), "message")) return;
  static constexpr const char* kLevels[] = {"debug", "info", "warn", "error"};
  uint32_t level = u32(a, 0) < 4 ? u32(a, 0) : 3;
  e.inv->appendLog(
      absl::StrCat("[", kLevels[level], "] ", std::string(g.view(u32(a, 1), u32(a, 2))), "\n"));
  *r = WL_OK;
}

void fileOpen(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "file_open"};
  if (!g.check(u32(a, 0), u32(a, 1), "path") || !g.check(u32(a, 2), 4, "fd pointer")) return;
  InvocationState& inv = *e.inv;
  std::string path(g.view(u32(a, 0), u32(a, 1)));
  if (inv.opened_files != nullptr) inv.opened_files->push_back(path);
  int fd = -1;
  int32_t code = openAppFile(inv.files_dir, &inv.dir_fd, path, &fd);
  if (code != WL_OK) {
    *r = static_cast<uint32_t>(code);
    return;
  }
  int32_t guest_fd = inv.next_fd++;
  inv.files[guest_fd] = fd;
  g.store<int32_t>(u32(a, 2), guest_fd, "fd pointer");
  *r = WL_OK;
}

int hostFd(InstanceEnv& e, uint32_t guest_fd) {
  auto it = e.inv->files.find(static_cast<int32_t>(guest_fd));
  return it == e.inv->files.end() ? -1 : it->second;
}

void fileSize(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "file_size"};
  if (!g.check(u32(a, 1), 8, "size pointer")) return;
  int fd = hostFd(e, u32(a, 0));
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) {
    *r = WL_ERR_INVALID;
    return;
  }
  g.store<uint64_t>(u32(a, 1), static_cast<uint64_t>(st.st_size), "size pointer");
  *r = WL_OK;
}

void fileReadAt(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "file_read_at"};
  if (!g.check(u32(a, 2), u32(a, 3), "buffer") || !g.check(u32(a, 4), 4, "nread pointer")) return;
  int fd = hostFd(e, u32(a, 0));
  if (fd < 0) {
    *r = WL_ERR_INVALID;
    return;
  }
  ssize_t n = pread(fd, g.at(u32(a, 2)), u32(a, 3), static_cast<off_t>(a[1]));
  if (n < 0) {
    *r = WL_ERR_IO;
    return;
  }
  g.store<uint32_t>(u32(a, 4), static_cast<uint32_t>(n), "nread pointer");
  *r = WL_OK;
}

void fileClose(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  auto it = e.inv->files.find(static_cast<int32_t>(u32(a, 0)));
  if (it == e.inv->files.end()) {
    *r = WL_ERR_INVALID;
    return;
  }
  close(it->second);
  e.inv->files.erase(it);
  *r = WL_OK;
}

constexpr std::string_view kWl = "waverless";

const std::vector<HostImportSpec>& table() {
  static const std::vector<HostImportSpec> t = [] {
    std::vector<HostImportSpec> v = {
        {kWl, "kv_get", "iiiii:i", thunk<kvGet>},
        {kWl, "kv_set", "iiii:i", thunk<kvSet>},
        {kWl, "kv_delete", "ii:i", thunk<kvDelete>},
        {kWl, "wait_triggered", ":i", thunk<waitTriggered>},
        {kWl, "kv_set_batch", "ii:i", thunk<kvSetBatch>},
        {kWl, "kv_scan", "iiiiii:i", thunk<kvScan>},
        {kWl, "output_write", "ii:i", thunk<outputWrite>},
        {kWl, "sleep_ms", "i:i", thunk<sleepMs>},
        {kWl, "log", "iii:i", thunk<logLine>},
        {kWl, "file_open", "iii:i", thunk<fileOpen>},
        {kWl, "file_size", "ii:i", thunk<fileSize>},
        {kWl, "file_read_at", "iIiii:i", thunk<fileReadAt>},
        {kWl, "file_close", "i:i", thunk<fileClose>},
    };
    for (const auto& w : wasiImports()) v.push_back(w);
    // Appended, never inserted: ids are compiled into modules (the cache key
    // covers this table anyway).
    v.push_back({kWl, "fail", "iii:", thunk<failCall>});
    v.push_back({kWl, "body_read", "iii:i", thunk<bodyRead>});
    v.push_back({kWl, "kv_cas", "iiiiii:i", thunk<kvCas>});
    v.push_back({kWl, "kv_incr", "iiIi:i", thunk<kvIncr>});
    v.push_back({kWl, "invocation_id", "iii:i", thunk<invocationId>});
    return v;
  }();
  return t;
}

}  // namespace

std::span<const HostImportSpec> hostImports() { return table(); }

}  // namespace waverless::wasm

namespace waverless::wasm::rt {
const WlImportFn* hostImportTable() {
  static const std::vector<WlImportFn> fns = [] {
    std::vector<WlImportFn> v;
    for (const auto& s : hostImports()) v.push_back(s.fn);
    return v;
  }();
  return fns.data();
}
}  // namespace waverless::wasm::rt
