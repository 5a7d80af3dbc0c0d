// The WASI preview1 subset: stdout/stderr into the invocation's log, what
// printf needs, clocks, randomness, empty args/environ, proc_exit, and
// ENOSYS for the rest so ordinary programs link.
#include <sys/random.h>
#include <time.h>

#include <vector>

#include "wasm/host_abi.h"
#include "wasm/host_call.h"

namespace waverless::wasm {

namespace {

using host::Guest;
using host::thunk;
using host::u32;
using rt::StopReason;

constexpr std::string_view kWasi = "wasi_snapshot_preview1";

constexpr uint64_t kErrnoBadf = 8, kErrnoInval = 28, kErrnoNosys = 52, kErrnoSpipe = 70;

void fdWrite(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "fd_write"};
  uint32_t fd = u32(a, 0), iovs = u32(a, 1), n = u32(a, 2);
  if (!g.check(iovs, uint64_t{n} * 8, "iovec array") || !g.check(u32(a, 3), 4, "nwritten pointer"))
    return;
  if (fd != 1 && fd != 2) {
    *r = kErrnoBadf;
    return;
  }
  uint32_t total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t buf, len;
    memcpy(&buf, g.at(iovs + 8 * i), 4);
    memcpy(&len, g.at(iovs + 8 * i + 4), 4);
    if (!g.check(buf, len, "iovec buffer")) return;
    e.inv->appendLog(g.view(buf, len));
    total += len;
  }
  g.store<uint32_t>(u32(a, 3), total, "nwritten pointer");
  *r = 0;
}

void fdSeek(InstanceEnv&, const uint64_t* a, uint64_t* r) {
  *r = u32(a, 0) <= 2 ? kErrnoSpipe : kErrnoBadf;
}

void fdClose(InstanceEnv&, const uint64_t* a, uint64_t* r) { *r = u32(a, 0) <= 2 ? 0 : kErrnoBadf; }

void fdFdstatGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "fd_fdstat_get"};
  if (!g.check(u32(a, 1), 24, "fdstat pointer")) return;
  if (u32(a, 0) > 2) {
    *r = kErrnoBadf;
    return;
  }
  uint8_t st[24] = {};
  st[0] = 2;  // character device: line-buffered stdio, as a terminal
  uint64_t rights = 0x40 /* fd_write */ | 0x2 /* fd_read */;
  memcpy(st + 8, &rights, 8);
  memcpy(g.at(u32(a, 1)), st, sizeof st);
  *r = 0;
}

void fdPrestatGet(InstanceEnv&, const uint64_t*, uint64_t* r) { *r = kErrnoBadf; }

void clockTimeGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "clock_time_get"};
  static constexpr clockid_t kClocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                          CLOCK_THREAD_CPUTIME_ID};
  if (u32(a, 0) > 3) {
    *r = kErrnoInval;
    return;
  }
  struct timespec ts {};
  clock_gettime(kClocks[u32(a, 0)], &ts);
  uint64_t ns = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
  if (g.store<uint64_t>(u32(a, 2), ns, "time pointer")) *r = 0;
}

void clockResGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "clock_res_get"};
  if (u32(a, 0) > 3) {
    *r = kErrnoInval;
    return;
  }
  if (g.store<uint64_t>(u32(a, 1), 1000, "resolution pointer")) *r = 0;
}

void randomGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "random_get"};
  if (!g.check(u32(a, 0), u32(a, 1), "buffer")) return;
  uint8_t* p = g.at(u32(a, 0));
  size_t left = u32(a, 1);
  while (left > 0) {
    ssize_t n = getrandom(p, left, 0);
    if (n <= 0) {
      if (errno == EINTR) continue;
      *r = kErrnoInval;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  *r = 0;
}

void sizesGet(InstanceEnv& e, const uint64_t* a, uint64_t* r) {
  Guest g{e, "args/environ_sizes_get"};
  if (g.store<uint32_t>(u32(a, 0), 0, "count pointer") &&
      g.store<uint32_t>(u32(a, 1), 0, "size pointer")) {
    *r = 0;
  }
}

void emptyGet(InstanceEnv&, const uint64_t*, uint64_t* r) { *r = 0; }

void procExit(InstanceEnv& e, const uint64_t* a, uint64_t*) {
  e.exec->exit_code = static_cast<int32_t>(u32(a, 0));
  e.exec->requestStop(StopReason::kExit);
}

void schedYield(InstanceEnv&, const uint64_t*, uint64_t* r) { *r = 0; }

void nosys(InstanceEnv&, const uint64_t*, uint64_t* r) { *r = kErrnoNosys; }

}  // namespace

std::vector<HostImportSpec> wasiImports() {
  return {
      {kWasi, "fd_write", "iiii:i", thunk<fdWrite>},
      {kWasi, "fd_seek", "iIii:i", thunk<fdSeek>},
      {kWasi, "fd_close", "i:i", thunk<fdClose>},
      {kWasi, "fd_fdstat_get", "ii:i", thunk<fdFdstatGet>},
      {kWasi, "fd_prestat_get", "ii:i", thunk<fdPrestatGet>},
      {kWasi, "clock_time_get", "iIi:i", thunk<clockTimeGet>},
      {kWasi, "clock_res_get", "ii:i", thunk<clockResGet>},
      {kWasi, "random_get", "ii:i", thunk<randomGet>},
      {kWasi, "args_sizes_get", "ii:i", thunk<sizesGet>},
      {kWasi, "environ_sizes_get", "ii:i", thunk<sizesGet>},
      {kWasi, "args_get", "ii:i", thunk<emptyGet>},
      {kWasi, "environ_get", "ii:i", thunk<emptyGet>},
      {kWasi, "proc_exit", "i:", thunk<procExit>},
      {kWasi, "sched_yield", ":i", thunk<schedYield>},
      // The rest of preview1: present so ordinary programs link, ENOSYS.
      {kWasi, "fd_advise", "iIIi:i", thunk<nosys>},
      {kWasi, "fd_allocate", "iII:i", thunk<nosys>},
      {kWasi, "fd_datasync", "i:i", thunk<nosys>},
      {kWasi, "fd_fdstat_set_flags", "ii:i", thunk<nosys>},
      {kWasi, "fd_fdstat_set_rights", "iII:i", thunk<nosys>},
      {kWasi, "fd_filestat_get", "ii:i", thunk<nosys>},
      {kWasi, "fd_filestat_set_size", "iI:i", thunk<nosys>},
      {kWasi, "fd_filestat_set_times", "iIIi:i", thunk<nosys>},
      {kWasi, "fd_pread", "iiiIi:i", thunk<nosys>},
      {kWasi, "fd_prestat_dir_name", "iii:i", thunk<nosys>},
      {kWasi, "fd_pwrite", "iiiIi:i", thunk<nosys>},
      {kWasi, "fd_read", "iiii:i", thunk<nosys>},
      {kWasi, "fd_readdir", "iiiIi:i", thunk<nosys>},
      {kWasi, "fd_renumber", "ii:i", thunk<nosys>},
      {kWasi, "fd_sync", "i:i", thunk<nosys>},
      {kWasi, "fd_tell", "ii:i", thunk<nosys>},
      {kWasi, "path_create_directory", "iii:i", thunk<nosys>},
      {kWasi, "path_filestat_get", "iiiii:i", thunk<nosys>},
      {kWasi, "path_filestat_set_times", "iiiiIIi:i", thunk<nosys>},
      {kWasi, "path_link", "iiiiiii:i", thunk<nosys>},
      {kWasi, "path_open", "iiiiiIIii:i", thunk<nosys>},
      {kWasi, "path_readlink", "iiiiii:i", thunk<nosys>},
      {kWasi, "path_remove_directory", "iii:i", thunk<nosys>},
      {kWasi, "path_rename", "iiiiii:i", thunk<nosys>},
      {kWasi, "path_symlink", "iiiii:i", thunk<nosys>},
      {kWasi, "path_unlink_file", "iii:i", thunk<nosys>},
      {kWasi, "poll_oneoff", "iiii:i", thunk<nosys>},
      {kWasi, "proc_raise", "i:i", thunk<nosys>},
      {kWasi, "sock_accept", "iii:i", thunk<nosys>},
      {kWasi, "sock_recv", "iiiiii:i", thunk<nosys>},
      {kWasi, "sock_send", "iiiii:i", thunk<nosys>},
      {kWasi, "sock_shutdown", "ii:i", thunk<nosys>},
  };
}

}  // namespace waverless::wasm
