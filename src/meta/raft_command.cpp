#include "meta/raft_command.h"

#include <cstdint>

namespace waverless::meta {

namespace {

enum class Op : uint8_t { kPut = 1, kErase = 2 };
constexpr uint32_t kSnapshotMagic = 0x4d524c57;  // "WLRM"
constexpr uint32_t kSnapshotFormat = 1;

void appendUint(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void appendBytes(std::string& out, const std::string& s) {
  appendUint(out, s.size(), 4);
  out += s;
}

class Reader {
 public:
  Reader(const void* data, size_t len) : p_(static_cast<const unsigned char*>(data)), left_(len) {}

  bool uint(int bytes, uint64_t& v) {
    if (left_ < static_cast<size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += bytes;
    left_ -= bytes;
    return true;
  }
  bool bytes(std::string& s) {
    uint64_t n;
    if (!uint(4, n) || left_ < n) return false;
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return true;
  }
  bool done() const { return left_ == 0; }
  // What is left is the zero padding to a multiple of 8 bytes.
  bool paddingOnly() const {
    if (left_ >= 8) return false;
    for (size_t i = 0; i < left_; ++i) {
      if (p_[i] != 0) return false;
    }
    return true;
  }

 private:
  const unsigned char* p_;
  size_t left_;
};

}  // namespace

std::string encodeChange(const std::string& key, const std::optional<std::string>& value) {
  std::string out;
  out.reserve(1 + 4 + key.size() + (value ? 4 + value->size() : 0) + 7);
  out.push_back(static_cast<char>(value ? Op::kPut : Op::kErase));
  appendBytes(out, key);
  if (value) appendBytes(out, *value);
  out.resize((out.size() + 7) / 8 * 8, '\0');
  return out;
}

std::optional<Change> decodeChange(std::string_view buf) {
  Reader r(buf.data(), buf.size());
  uint64_t op;
  Change c;
  if (!r.uint(1, op) || !r.bytes(c.key)) return std::nullopt;
  if (op == static_cast<uint64_t>(Op::kPut)) {
    c.value.emplace();
    if (!r.bytes(*c.value)) return std::nullopt;
  } else if (op != static_cast<uint64_t>(Op::kErase)) {
    return std::nullopt;
  }
  if (!r.paddingOnly()) return std::nullopt;
  return c;
}

std::string encodeMap(const std::map<std::string, std::string>& m) {
  size_t size = 16;
  for (const auto& [k, v] : m) size += 8 + k.size() + v.size();
  std::string out;
  out.reserve(size);
  appendUint(out, kSnapshotMagic, 4);
  appendUint(out, kSnapshotFormat, 4);
  appendUint(out, m.size(), 8);
  for (const auto& [k, v] : m) {
    appendBytes(out, k);
    appendBytes(out, v);
  }
  return out;
}

std::optional<std::map<std::string, std::string>> decodeMap(std::string_view buf) {
  Reader r(buf.data(), buf.size());
  uint64_t magic, format, count;
  if (!r.uint(4, magic) || magic != kSnapshotMagic || !r.uint(4, format) ||
      format != kSnapshotFormat || !r.uint(8, count)) {
    return std::nullopt;
  }
  std::map<std::string, std::string> m;
  for (uint64_t i = 0; i < count; ++i) {
    std::string k, v;
    if (!r.bytes(k) || !r.bytes(v)) return std::nullopt;
    m.insert_or_assign(std::move(k), std::move(v));
  }
  if (!r.done()) return std::nullopt;
  return m;
}

}  // namespace waverless::meta
