// Private to src/shard/: the little-endian byte encoding shared by raft entries, shard maps and
// shard requests. Readers never trust a length: every read is bounds-checked and a failure sticks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace waverless::shard::wire {

inline void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void putBytes(std::string& out, std::string_view b) {
  putU64(out, b.size());
  out.append(b);
}

struct Reader {
  std::string_view in;
  bool ok = true;

  uint64_t u64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
    in.remove_prefix(8);
    return v;
  }
  uint8_t u8() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  std::string bytes() {
    uint64_t n = u64();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string out(in.substr(0, n));
    in.remove_prefix(n);
    return out;
  }
};

}  // namespace waverless::shard::wire
