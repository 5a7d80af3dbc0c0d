#include "auth/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace waverless::auth {

namespace fs = std::filesystem;

namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (isBlank(s.front()) || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (isBlank(s.back()) || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

absl::Status errnoStatus(const fs::path& path, const char* what) {
  std::string msg = path.string() + ": " + what + ": " + strerror(errno);
  if (errno == EACCES || errno == EPERM) return absl::PermissionDeniedError(msg);
  if (errno == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

}  // namespace

Digest digestOf(std::string_view secret) {
  Digest d{};
  unsigned int len = 0;
  EVP_Digest(secret.data(), secret.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

std::string hexOf(const Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(d.size() * 2);
  for (unsigned char c : d) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<Digest> digestFromHex(std::string_view hex) {
  hex = trim(hex);
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest d{};
  for (size_t i = 0; i < d.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return d;
}

bool digestsEqual(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool matches(std::string_view presented, const Digest& expected) {
  return digestsEqual(digestOf(presented), expected);
}

absl::StatusOr<std::string> newSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return absl::UnavailableError("no system randomness for a new secret (RAND_bytes failed)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  OPENSSL_cleanse(bytes, sizeof bytes);
  return out;
}

std::optional<std::string_view> bearerCredential(std::string_view authorization) {
  std::string_view s = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (s.size() <= kScheme.size() || !isBlank(s[kScheme.size()])) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  return trim(s.substr(kScheme.size()));
}

Check checkBearer(std::string_view authorization, const Digest& expected) {
  auto credential = bearerCredential(authorization);
  if (!credential || credential->empty()) return Check::kMissing;
  return matches(*credential, expected) ? Check::kOk : Check::kWrong;
}

AdminToken::AdminToken(fs::path path, std::string secret)
    : path_(std::move(path)), secret_(std::move(secret)), digest_(digestOf(secret_)) {}

absl::StatusOr<std::string> AdminToken::read(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus(path, "cannot read the admin token");
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096) text.append(buf, n);
  int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    errno = read_errno;
    return errnoStatus(path, "cannot read the admin token");
  }
  std::string_view token = trim(text);
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string_view::npos) {
    return absl::InvalidArgumentError(path.string() +
                                      ": not an admin token (one line, no blanks, expected)");
  }
  return std::string(token);
}

absl::StatusOr<AdminToken> AdminToken::loadOrCreate(const fs::path& path, bool* created) {
  if (created) *created = false;
  auto existing = read(path);
  if (existing.ok()) return AdminToken(path, std::move(*existing));
  if (!absl::IsNotFound(existing.status())) return existing.status();

  auto secret = newSecret();
  if (!secret.ok()) return secret.status();
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
  }
  // O_EXCL: if another process created it meanwhile, use theirs.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      auto theirs = read(path);
      if (!theirs.ok()) return theirs.status();
      return AdminToken(path, std::move(*theirs));
    }
    return errnoStatus(path, "cannot create the admin token");
  }
  // The umask may only remove bits; make sure of the mode anyway.
  ::fchmod(fd, 0600);
  std::string line = *secret + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fsync(fd) == 0 && ok;
  int write_errno = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    errno = write_errno;
    return errnoStatus(path, "cannot write the admin token");
  }
  if (created) *created = true;
  return AdminToken(path, std::move(*secret));
}

}  // namespace waverless::auth
