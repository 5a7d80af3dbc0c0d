// Credentials of a node: the admin token that guards the control API
// (/api/*) and the per-app invoke keys of apps declared `auth: key`.
//
// Secrets are 32 random bytes (OpenSSL RAND_bytes), written as 64 hex
// characters. Only the admin token's file holds a secret in clear; app keys
// are stored as their sha256. Every comparison hashes the presented value
// and compares digests with CRYPTO_memcmp: neither the time taken nor an
// early exit tells how much of a guess was right, or how long the secret is.
//
// Owns: token files, hashing and comparison. Must not: log a secret (only
// the caller may show a newly made one, once, to the user who asked).
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace waverless::auth {

// sha256 of a secret, the form it is compared (and, for app keys, stored) in.
using Digest = std::array<unsigned char, 32>;

Digest digestOf(std::string_view secret);
std::string hexOf(const Digest& d);
// 64 hex characters (either case) -> digest; nullopt for anything else.
std::optional<Digest> digestFromHex(std::string_view hex);

// Constant-time in the length of a digest: CRYPTO_memcmp.
bool digestsEqual(const Digest& a, const Digest& b);
// Whether presented is the secret whose digest is expected; its time does
// not depend on presented's content or length beyond hashing it.
bool matches(std::string_view presented, const Digest& expected);

// A fresh secret: 32 bytes from RAND_bytes, hex. An error when the system's
// randomness is not available (never a weak fallback).
absl::StatusOr<std::string> newSecret();

// The credential of `Authorization: Bearer <credential>` (scheme
// case-insensitive, surrounding blanks ignored); nullopt when the header is
// absent or of another scheme.
std::optional<std::string_view> bearerCredential(std::string_view authorization);

// The outcome of checking a request's Authorization header against a secret.
enum class Check { kOk, kMissing, kWrong };
Check checkBearer(std::string_view authorization, const Digest& expected);

// The admin token of a node, kept in a file of mode 0600.
class AdminToken {
 public:
  // Reads the token at path; when the file does not exist, makes one and
  // creates the file with O_CREAT|O_EXCL and mode 0600 (so it is never
  // readable by others, and two nodes starting at once cannot both write
  // it). *created tells which happened. Errors: the file cannot be read or
  // created (PermissionDenied, Internal), or holds no token
  // (InvalidArgument, with the path).
  static absl::StatusOr<AdminToken> loadOrCreate(const std::filesystem::path& path,
                                                 bool* created = nullptr);
  // Reads an existing token file (a client's view): NotFound when absent.
  static absl::StatusOr<std::string> read(const std::filesystem::path& path);

  const Digest& digest() const { return digest_; }
  const std::filesystem::path& path() const { return path_; }
  // The token in clear: for the one message that shows a new token.
  const std::string& secret() const { return secret_; }

 private:
  AdminToken(std::filesystem::path path, std::string secret);
  std::filesystem::path path_;
  std::string secret_;
  Digest digest_;
};

}  // namespace waverless::auth
