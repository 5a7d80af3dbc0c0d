// The byte layout of RaftLogStore's records (raft_log_store.h): keys that sort a group's entries
// by index, and the values of term/vote, entries and snapshot records. Header-only: the store,
// its raft_io entries and its tests share it.
#pragma once

extern "C" {
#include <raft.h>
}

#include <cstdint>
#include <string>
#include <string_view>

namespace waverless::shard::raft_log_format {

inline void put32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}
inline void put64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}
inline void putBytes(std::string& s, std::string_view b) {
  put32(s, static_cast<uint32_t>(b.size()));
  s.append(b);
}

// Reads what put32/put64/putBytes wrote; any shortfall turns ok off and yields zeros.
struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t num(size_t width) {
    if (in.size() < width) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
    in.remove_prefix(width);
    return v;
  }
  std::string_view bytes() {
    uint64_t n = num(4);
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string_view b = in.substr(0, n);
    in.remove_prefix(n);
    return b;
  }
};

inline std::string groupPrefix(char kind, uint32_t group) {
  std::string k(1, kind);
  put32(k, group);
  return k;
}
inline std::string metaKey(uint32_t group) { return groupPrefix('m', group); }
inline std::string snapKey(uint32_t group) { return groupPrefix('s', group); }
inline std::string entryKey(uint32_t group, uint64_t index) {
  std::string k = groupPrefix('e', group);
  put64(k, index);
  return k;
}
constexpr uint64_t kEndIndex = ~uint64_t{0};

inline std::string encodeMeta(uint64_t term, uint64_t vote) {
  std::string v;
  put64(v, term);
  put64(v, vote);
  return v;
}

inline std::string encodeEntry(const raft_entry& e) {
  std::string v;
  v.reserve(10 + e.buf.len);
  put64(v, e.term);
  v.push_back(static_cast<char>(e.type >> 8));
  v.push_back(static_cast<char>(e.type));
  v.append(static_cast<const char*>(e.buf.base), e.buf.len);
  return v;
}

// The snapshot's configuration is stored in our own format: libraft exports an encoder for
// configurations but no decoder.
inline void encodeConfiguration(std::string& out, const raft_configuration& c) {
  put32(out, c.n);
  for (unsigned i = 0; i < c.n; ++i) {
    put64(out, c.servers[i].id);
    put32(out, static_cast<uint32_t>(c.servers[i].role));
    putBytes(out, c.servers[i].address);
  }
}

inline bool decodeConfiguration(Reader& r, raft_configuration* c) {
  raft_configuration_init(c);
  uint64_t n = r.num(4);
  for (uint64_t i = 0; r.ok && i < n; ++i) {
    uint64_t id = r.num(8);
    int role = static_cast<int>(r.num(4));
    std::string address(r.bytes());
    if (!r.ok || raft_configuration_add(c, id, address.c_str(), role) != 0) {
      raft_configuration_close(c);
      return false;
    }
  }
  if (!r.ok) raft_configuration_close(c);
  return r.ok;
}

struct SnapshotRecord {
  uint64_t index = 0, term = 0, configuration_index = 0, size = 0;
  std::string file;
  std::string configuration;  // encodeConfiguration's bytes
};

inline std::string encodeRecord(const SnapshotRecord& s) {
  std::string v;
  put64(v, s.index);
  put64(v, s.term);
  put64(v, s.configuration_index);
  put64(v, s.size);
  putBytes(v, s.file);
  v += s.configuration;
  return v;
}

inline bool decodeRecord(std::string_view bytes, SnapshotRecord* s) {
  Reader r{bytes};
  s->index = r.num(8);
  s->term = r.num(8);
  s->configuration_index = r.num(8);
  s->size = r.num(8);
  s->file = std::string(r.bytes());
  s->configuration = std::string(r.in);
  return r.ok && !s->file.empty() && s->file.find('/') == std::string::npos;
}

}  // namespace waverless::shard::raft_log_format
