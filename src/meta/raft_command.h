// The byte formats of the raft-replicated map (meta/raft_log): one command
// entry per change, and the snapshot of the whole map.
//
// Command entry: [u8 op][u32 key length][key] and, for a put, [u32 value length][value], then
// zero bytes up to a multiple of 8. libraft 0.15 lays out the entries of a batch at 8-byte-aligned
// offsets but sends the payloads unpadded: an entry whose length is not a multiple of 8 shifts
// every later entry of the same AppendEntries, and the follower applies garbage. Snapshot: [u32
// magic][u32 format][u64 count] then count x ([u32 len][key][u32 len][value]). Integers are
// little-endian, written byte by byte so the format does not depend on the host.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace waverless::meta {

struct Change {
  std::string key;
  std::optional<std::string> value;  // nullopt = erase
};

std::string encodeChange(const std::string& key, const std::optional<std::string>& value);
// nullopt: not a command this format produces (bad op, short, or bytes
// other than zero padding after it).
std::optional<Change> decodeChange(std::string_view entry);

std::string encodeMap(const std::map<std::string, std::string>& m);
std::optional<std::map<std::string, std::string>> decodeMap(std::string_view snapshot);

}  // namespace waverless::meta
