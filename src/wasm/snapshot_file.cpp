#include "wasm/snapshot_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sdk/include/waverless.h"
#include "wasm/host_abi.h"
#include "wasm/rt/module_abi.h"

namespace waverless::wasm {

namespace {

constexpr char kMagic[8] = {'W', 'L', 'S', 'N', 'A', 'P', '\r', '\n'};
constexpr size_t kHeaderBytes = 128;
constexpr size_t kWasmPage = 65536;
constexpr size_t kChunk = 4096;  // the host page: the unit of the runs
constexpr size_t kChecksumAt = 112;
// Bounds on what a header may claim, so a damaged one cannot make us
// allocate or read without limit: an instance's state is its globals and
// tables (a table holds at most 2^24 entries), and wl_init opens few files.
constexpr uint64_t kMaxState = uint64_t{256} << 20;
constexpr uint64_t kMaxFiles = uint64_t{16} << 20;

struct Header {
  uint32_t format = kSnapshotFormat;
  uint32_t abi = WL_MODULE_ABI_VERSION;
  std::string build_key;
  uint32_t pages = 0;
  uint32_t run_count = 0;
  uint64_t state_len = 0;
  uint64_t files_len = 0;
  uint64_t image_offset = 0;
  uint64_t checksum = 0;

  uint64_t metaEnd() const {
    return kHeaderBytes + state_len + files_len + uint64_t{run_count} * 8;
  }
  uint64_t imageBytes() const { return uint64_t{pages} * kWasmPage; }
};

struct Run {
  uint32_t first = 0, count = 0;  // in 4 KiB pages
};

// Fletcher-64 over 64-bit words (a short tail zero-padded): detects torn
// and damaged files at memory speed. Not a defence against a forger, who
// could as well replace the compiled module: the state is checked
// structurally by load_state, and the image is guest memory.
class Checksum {
 public:
  void add(const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      a_ += w;
      b_ += a_;
    }
    if (i < n) {
      uint64_t w = 0;
      memcpy(&w, p + i, n - i);
      a_ += w;
      b_ += a_;
    }
  }
  uint64_t value() const { return a_ ^ (b_ << 32 | b_ >> 32); }

 private:
  uint64_t a_ = 0, b_ = 0;
};

template <class T>
void put(std::string& out, size_t at, T v) {
  memcpy(out.data() + at, &v, sizeof v);
}
template <class T>
T get(std::string_view in, size_t at) {
  T v;
  memcpy(&v, in.data() + at, sizeof v);
  return v;
}

std::string encodeHeader(const Header& h) {
  std::string out(kHeaderBytes, '\0');
  memcpy(out.data(), kMagic, sizeof kMagic);
  put(out, 8, h.format);
  put(out, 12, h.abi);
  memcpy(out.data() + 16, h.build_key.data(), std::min<size_t>(h.build_key.size(), 64));
  put(out, 80, h.pages);
  put(out, 84, h.run_count);
  put(out, 88, h.state_len);
  put(out, 96, h.files_len);
  put(out, 104, h.image_offset);
  put(out, kChecksumAt, h.checksum);
  return out;
}

// The header's own consistency; the versions and key are the caller's.
absl::StatusOr<Header> decodeHeader(std::string_view in) {
  if (in.size() < kHeaderBytes) return absl::DataLossError("truncated: no complete header");
  if (memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    return absl::DataLossError("not a snapshot file (bad magic)");
  }
  Header h;
  h.format = get<uint32_t>(in, 8);
  if (h.format != kSnapshotFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot format ", h.format, "; this node reads ", kSnapshotFormat));
  }
  h.abi = get<uint32_t>(in, 12);
  h.build_key.assign(in.data() + 16, 64);
  h.build_key.resize(strnlen(h.build_key.data(), 64));
  h.pages = get<uint32_t>(in, 80);
  h.run_count = get<uint32_t>(in, 84);
  h.state_len = get<uint64_t>(in, 88);
  h.files_len = get<uint64_t>(in, 96);
  h.image_offset = get<uint64_t>(in, 104);
  h.checksum = get<uint64_t>(in, kChecksumAt);
  if (h.pages > 65536 || h.state_len > kMaxState || h.files_len > kMaxFiles ||
      uint64_t{h.run_count} > uint64_t{h.pages} * (kWasmPage / kChunk)) {
    return absl::DataLossError("damaged header: sizes out of range");
  }
  uint64_t aligned = (h.metaEnd() + kWasmPage - 1) / kWasmPage * kWasmPage;
  if (h.image_offset != aligned) return absl::DataLossError("damaged header: image offset");
  return h;
}

absl::Status checkVersions(const Header& h, std::string_view build_key) {
  if (h.abi != WL_MODULE_ABI_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrCat("taken with module ABI ", h.abi, "; this node runs ", WL_MODULE_ABI_VERSION));
  }
  if (!build_key.empty() && h.build_key != build_key) {
    return absl::FailedPreconditionError("taken of another build of the module");
  }
  return absl::OkStatus();
}

// The runs, checked: in order, apart, inside the image.
absl::StatusOr<std::vector<Run>> decodeRuns(std::string_view meta, const Header& h,
                                            size_t* resident) {
  std::vector<Run> runs(h.run_count);
  size_t at = kHeaderBytes + h.state_len + h.files_len;
  uint64_t end = 0, limit = h.imageBytes() / kChunk;
  *resident = 0;
  for (auto& r : runs) {
    r.first = get<uint32_t>(meta, at);
    r.count = get<uint32_t>(meta, at + 4);
    at += 8;
    if (r.count == 0 || r.first < end || uint64_t{r.first} + r.count > limit) {
      return absl::DataLossError("damaged page map");
    }
    end = uint64_t{r.first} + r.count;
    *resident += size_t{r.count} * kChunk;
  }
  return runs;
}

std::string encodeFiles(const std::vector<InitFileUse>& files) {
  std::string out(4, '\0');
  put(out, 0, static_cast<uint32_t>(files.size()));
  for (const auto& f : files) {
    size_t at = out.size();
    out.resize(at + 8 + f.path.size() + 32);
    put(out, at, static_cast<uint32_t>(f.path.size()));
    memcpy(out.data() + at + 4, f.path.data(), f.path.size());
    put(out, at + 4 + f.path.size(), f.code);
    memcpy(out.data() + at + 8 + f.path.size(), f.sha256.data(),
           std::min<size_t>(f.sha256.size(), 32));
  }
  return out;
}

absl::StatusOr<std::vector<InitFileUse>> decodeFiles(std::string_view in) {
  auto bad = [] { return absl::DataLossError("damaged list of wl_init's files"); };
  if (in.size() < 4) return bad();
  uint32_t n = get<uint32_t>(in, 0);
  size_t at = 4;
  std::vector<InitFileUse> out;
  for (uint32_t i = 0; i < n; ++i) {
    if (in.size() - at < 4) return bad();
    uint32_t len = get<uint32_t>(in, at);
    if (in.size() - at - 4 < uint64_t{len} + 36) return bad();
    InitFileUse f;
    f.path.assign(in.data() + at + 4, len);
    f.code = get<int32_t>(in, at + 4 + len);
    f.sha256.assign(in.data() + at + 8 + len, 32);
    if (f.code != WL_OK) f.sha256.clear();
    out.push_back(std::move(f));
    at += 40 + len;
  }
  if (at != in.size()) return bad();
  return out;
}

// The checksum of meta (its checksum field read as zero) and the runs' data.
template <class DataOf>
uint64_t checksumOf(std::string_view meta, const std::vector<Run>& runs, DataOf data_of) {
  std::string head(meta.substr(0, kHeaderBytes));
  put<uint64_t>(head, kChecksumAt, 0);
  Checksum c;
  c.add(reinterpret_cast<const uint8_t*>(head.data()), head.size());
  c.add(reinterpret_cast<const uint8_t*>(meta.data()) + kHeaderBytes, meta.size() - kHeaderBytes);
  for (size_t i = 0; i < runs.size(); ++i) c.add(data_of(i), size_t{runs[i].count} * kChunk);
  return c.value();
}

absl::Status errnoError(const std::string& what, const std::filesystem::path& p) {
  return absl::InternalError(absl::StrCat(what, " ", p.string(), ": ", strerror(errno)));
}

absl::Status writeAll(int fd, const uint8_t* p, size_t n, uint64_t off) {
  for (size_t done = 0; done < n;) {
    ssize_t w = pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (w <= 0) return absl::InternalError(absl::StrCat("pwrite: ", strerror(errno)));
    done += static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Writes meta, then each run's data at its place in the image, with the
// zero pages as holes; renamed into place only once complete.
template <class DataOf>
absl::Status writeFile(const std::filesystem::path& path, std::string_view meta, const Header& h,
                       const std::vector<Run>& runs, DataOf data_of) {
  static std::atomic<uint64_t> seq{0};
  std::filesystem::path tmp =
      path.string() + absl::StrCat(".tmp-", getpid(), "-", seq.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errnoError("cannot create", tmp);
  absl::Status st = writeAll(fd, reinterpret_cast<const uint8_t*>(meta.data()), meta.size(), 0);
  for (size_t i = 0; st.ok() && i < runs.size(); ++i) {
    st = writeAll(fd, data_of(i), size_t{runs[i].count} * kChunk,
                  h.image_offset + uint64_t{runs[i].first} * kChunk);
  }
  if (st.ok() && ftruncate(fd, static_cast<off_t>(h.image_offset + h.imageBytes())) != 0) {
    st = errnoError("cannot size", tmp);
  }
  close(fd);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) st = errnoError("cannot rename", tmp);
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

std::string sha256(int fd) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    EVP_DigestUpdate(ctx, buf, static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(md), len);
}

}  // namespace

InitFileUse fingerprintAppFile(const std::filesystem::path& files_dir, const std::string& path) {
  InitFileUse use;
  use.path = path;
  int dir_fd = -1, fd = -1;
  use.code = openAppFile(files_dir, &dir_fd, path, &fd);
  if (use.code == WL_OK) {
    use.sha256 = sha256(fd);
    close(fd);
  }
  if (dir_fd >= 0) close(dir_fd);
  return use;
}

absl::Status writeSnapshotFile(const std::filesystem::path& path, std::string_view build_key,
                               std::string_view state, const std::vector<InitFileUse>& files,
                               const uint8_t* image, uint32_t pages) {
  Header h;
  h.build_key = std::string(build_key);
  h.pages = pages;
  std::string files_bytes = encodeFiles(files);
  h.state_len = state.size();
  h.files_len = files_bytes.size();
  std::vector<Run> runs;
  size_t chunks = h.imageBytes() / kChunk;
  for (size_t i = 0; i < chunks; ++i) {
    const uint8_t* p = image + i * kChunk;
    bool zero = p[0] == 0 && memcmp(p, p + 1, kChunk - 1) == 0;
    if (zero) continue;
    if (!runs.empty() && runs.back().first + runs.back().count == i) {
      runs.back().count++;
    } else {
      runs.push_back({static_cast<uint32_t>(i), 1});
    }
  }
  h.run_count = static_cast<uint32_t>(runs.size());
  if (h.state_len > kMaxState) return absl::ResourceExhaustedError("instance state too large");
  h.image_offset = (h.metaEnd() + kWasmPage - 1) / kWasmPage * kWasmPage;
  std::string meta = encodeHeader(h);
  meta += state;
  meta += files_bytes;
  for (const auto& r : runs) {
    size_t at = meta.size();
    meta.resize(at + 8);
    put(meta, at, r.first);
    put(meta, at + 4, r.count);
  }
  auto data_of = [&](size_t i) { return image + size_t{runs[i].first} * kChunk; };
  put(meta, kChecksumAt, checksumOf(meta, runs, data_of));
  return writeFile(path, meta, h, runs, data_of);
}

SnapshotFile::SnapshotFile(SnapshotFile&& o) noexcept { *this = std::move(o); }

SnapshotFile& SnapshotFile::operator=(SnapshotFile&& o) noexcept {
  std::swap(fd_, o.fd_);
  std::swap(view_, o.view_);
  std::swap(image_offset_, o.image_offset_);
  std::swap(pages_, o.pages_);
  std::swap(resident_, o.resident_);
  std::swap(state_, o.state_);
  std::swap(files_, o.files_);
  return *this;
}

SnapshotFile::~SnapshotFile() {
  if (view_ != nullptr) munmap(const_cast<uint8_t*>(view_), size_t{pages_} * kWasmPage);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<SnapshotFile> SnapshotFile::open(const std::filesystem::path& path,
                                                std::string_view build_key) {
  SnapshotFile f;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("no snapshot file ", path.string()));
    return errnoError("cannot open", path);
  }
  struct stat st {};
  if (fstat(f.fd_, &st) != 0) return errnoError("cannot stat", path);
  std::string head(kHeaderBytes, '\0');
  ssize_t n = pread(f.fd_, head.data(), head.size(), 0);
  auto h = decodeHeader(std::string_view(head.data(), n < 0 ? 0 : static_cast<size_t>(n)));
  if (!h.ok()) return h.status();
  if (absl::Status v = checkVersions(*h, build_key); !v.ok()) return v;
  uint64_t want = h->image_offset + h->imageBytes();
  if (static_cast<uint64_t>(st.st_size) != want) {
    return absl::DataLossError(
        absl::StrCat("truncated or damaged: ", st.st_size, " bytes where the header says ", want));
  }
  std::string meta(h->metaEnd(), '\0');
  if (pread(f.fd_, meta.data(), meta.size(), 0) != static_cast<ssize_t>(meta.size())) {
    return absl::DataLossError("truncated: cannot read its tables");
  }
  auto runs = decodeRuns(meta, *h, &f.resident_);
  if (!runs.ok()) return runs.status();
  f.pages_ = h->pages;
  f.image_offset_ = h->image_offset;
  if (h->imageBytes() > 0) {
    void* v = mmap(nullptr, h->imageBytes(), PROT_READ, MAP_SHARED, f.fd_,
                   static_cast<off_t>(h->image_offset));
    if (v == MAP_FAILED) return errnoError("cannot map", path);
    f.view_ = static_cast<const uint8_t*>(v);
  }
  auto data_of = [&](size_t i) { return f.view_ + size_t{(*runs)[i].first} * kChunk; };
  if (checksumOf(meta, *runs, data_of) != h->checksum) {
    return absl::DataLossError("damaged: checksum mismatch");
  }
  auto files =
      decodeFiles(std::string_view(meta).substr(kHeaderBytes + h->state_len, h->files_len));
  if (!files.ok()) return files.status();
  f.files_ = std::move(*files);
  f.state_ = meta.substr(kHeaderBytes, h->state_len);
  return f;
}

absl::StatusOr<std::string> packSnapshotFile(const std::filesystem::path& path) {
  auto f = SnapshotFile::open(path, "");
  if (!f.ok()) return f.status();
  std::string out(f->imageOffset(), '\0');
  if (pread(f->fd(), out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) {
    return absl::DataLossError("truncated");
  }
  auto h = decodeHeader(out);
  if (!h.ok()) return h.status();
  out.resize(h->metaEnd());
  size_t resident = 0;
  auto runs = decodeRuns(out, *h, &resident);
  if (!runs.ok()) return runs.status();
  out.reserve(out.size() + resident);
  for (const auto& r : *runs) {
    out.append(reinterpret_cast<const char*>(f->view()) + size_t{r.first} * kChunk,
               size_t{r.count} * kChunk);
  }
  return out;
}

absl::Status unpackSnapshotFile(std::string_view packed, const std::filesystem::path& path) {
  auto h = decodeHeader(packed);
  if (!h.ok()) return h.status();
  if (packed.size() < h->metaEnd()) return absl::DataLossError("truncated: tables cut short");
  std::string_view meta = packed.substr(0, h->metaEnd());
  size_t resident = 0;
  auto runs = decodeRuns(meta, *h, &resident);
  if (!runs.ok()) return runs.status();
  if (packed.size() != meta.size() + resident) {
    return absl::DataLossError(absl::StrCat("truncated or damaged: ", packed.size(),
                                            " bytes where the header says ",
                                            meta.size() + resident));
  }
  std::vector<const uint8_t*> data;
  size_t at = meta.size();
  for (const auto& r : *runs) {
    data.push_back(reinterpret_cast<const uint8_t*>(packed.data()) + at);
    at += size_t{r.count} * kChunk;
  }
  auto data_of = [&](size_t i) { return data[i]; };
  if (checksumOf(meta, *runs, data_of) != h->checksum) {
    return absl::DataLossError("damaged: checksum mismatch");
  }
  auto files = decodeFiles(meta.substr(kHeaderBytes + h->state_len, h->files_len));
  if (!files.ok()) return files.status();
  return writeFile(path, meta, *h, *runs, data_of);
}

}  // namespace waverless::wasm
