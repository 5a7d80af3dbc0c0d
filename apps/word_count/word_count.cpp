// word_count: map-reduce over the KV store.
//
//   split_file   body (or files/input.txt) ─► wordcount_slice_<token>_<i>, ~1 MiB each
//   count_slice  (one per slice, triggered by its key) ─► wordcount_part_<token>_<i>
//   split_file   waits, merges the parts, answers {"word":count,...} sorted by key
//
// A word is a maximal run of [A-Za-z0-9], lowercased; every other byte separates.
#define _DEFAULT_SOURCE  // getentropy() is a BSD extension; -std=c++20 hides it

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "waverless.hpp"

namespace {

constexpr size_t kSliceBytes = size_t{1} << 20;
constexpr std::string_view kSlicePrefix = "wordcount_slice_";
constexpr std::string_view kPartPrefix = "wordcount_part_";
constexpr std::string_view kInputFile = "input.txt";  // the host roots paths at files/

void fail(std::string_view what, wl_status s) {
  std::string msg = "word_count: " + std::string(what) + " (status " + std::to_string(s) + ")";
  wl::log(WL_LOG_ERROR, msg);
  wl_fail(s, msg.data(), static_cast<uint32_t>(msg.size()));
}

// Keys are shared by all concurrent requests of the app, so each request
// names its keys with 16 random hex chars.
std::string newToken() {
  uint8_t raw[8];
  if (getentropy(raw, sizeof raw) != 0) {
    wl::log(WL_LOG_ERROR, "word_count: getentropy failed; the host's random_get is broken");
    __builtin_trap();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (uint8_t b : raw) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

// Length of the next slice at the front of data: the longest prefix of at most
// kSliceBytes that ends after a '\n', or up to the first '\n' when the first
// line alone is longer. 0 means "need more data" (only when !at_end) or
// "nothing left".
size_t nextSliceLength(std::string_view data, bool at_end) {
  if (data.size() <= kSliceBytes) return at_end ? data.size() : 0;
  size_t nl = data.rfind('\n', kSliceBytes - 1);
  if (nl == std::string_view::npos) nl = data.find('\n', kSliceBytes);
  if (nl != std::string_view::npos) return nl + 1;
  return at_end ? data.size() : 0;
}

// Stores the slices of one request; each kv_set triggers one count_slice.
class SliceWriter {
 public:
  explicit SliceWriter(std::string token) : token_(std::move(token)) {}

  bool write(std::string_view slice) {
    wl_status s = wl::kv_set(key(kSlicePrefix, count_), slice);
    if (s != WL_OK) {
      fail("storing slice " + std::to_string(count_) + " failed", s);
      return false;
    }
    ++count_;
    return true;
  }

  size_t count() const { return count_; }
  std::string key(std::string_view prefix, size_t i) const {
    return std::string(prefix) + token_ + "_" + std::to_string(i);
  }

 private:
  std::string token_;
  size_t count_ = 0;
};

// Reads the next bytes of the input into dst: the count, 0 at its end.
using ReadFn = wl_status (*)(void* ctx, char* dst, uint32_t cap, uint32_t* got);

// Slices an input that arrives in pieces (the request body while it is
// still uploading, or the data file) through a buffer of about two slices:
// counting starts with the first slice, and the input is never held whole.
// `buf` may already hold the input's first bytes.
bool sliceStream(std::string buf, ReadFn read, void* ctx, const char* what, SliceWriter& out) {
  bool at_end = false;
  for (;;) {
    size_t n = nextSliceLength(buf, at_end);
    if (n > 0) {
      if (!out.write(std::string_view(buf).substr(0, n))) return false;
      buf.erase(0, n);
    } else if (at_end) {
      return true;
    } else {
      size_t old = buf.size();
      buf.resize(old + kSliceBytes);
      uint32_t got = 0;
      wl_status s = read(ctx, buf.data() + old, kSliceBytes, &got);
      if (s != WL_OK) {
        fail(std::string("reading ") + what + " failed", s);
        return false;
      }
      buf.resize(old + got);
      at_end = got == 0;
    }
  }
}

wl_status readBody(void*, char* dst, uint32_t cap, uint32_t* got) {
  return wl_body_read(dst, cap, got);
}

struct FileInput {
  int32_t fd;
  uint64_t offset;
};

wl_status readFile(void* ctx, char* dst, uint32_t cap, uint32_t* got) {
  auto* f = static_cast<FileInput*>(ctx);
  wl_status s = wl_file_read_at(f->fd, f->offset, dst, cap, got);
  if (s == WL_OK) f->offset += *got;
  return s;
}

// The request body, or files/input.txt when the body is empty.
bool sliceInput(SliceWriter& out) {
  std::string first(kSliceBytes, '\0');
  uint32_t got = 0;
  wl_status s = wl_body_read(first.data(), kSliceBytes, &got);
  if (s != WL_OK) {
    fail("reading the request body failed", s);
    return false;
  }
  if (got > 0) {
    first.resize(got);
    return sliceStream(std::move(first), readBody, nullptr, "the request body", out);
  }
  FileInput file{-1, 0};
  s = wl_file_open(kInputFile.data(), kInputFile.size(), &file.fd);
  if (s != WL_OK) {
    fail("empty body and files/input.txt cannot be opened", s);
    return false;
  }
  bool ok = sliceStream("", readFile, &file, "files/input.txt", out);
  wl_file_close(file.fd);
  return ok;
}

// Byte → its lowercase form if it belongs to a word, else 0.
constexpr std::array<char, 256> kFold = [] {
  std::array<char, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'a'; c <= 'z'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = static_cast<char>(c - 'A' + 'a');
  return t;
}();

}  // namespace

// HTTP entry, declared `body: stream`: the body (or, when it is empty,
// files/input.txt) is sliced while it arrives.
WL_FUNCTION(split_file) {
  SliceWriter slices(newToken());
  bool ok = sliceInput(slices);

  // Wait even after a failure: slices already stored are being counted, and
  // their parts must be cleaned up below.
  wl_status s = wl::wait_triggered();
  if (ok && s != WL_OK) {
    fail("a count_slice invocation failed; see its log", s);
    ok = false;
  }

  // Merge with one reusable key buffer: map lookups then allocate only for
  // words not yet seen.
  std::unordered_map<std::string, uint64_t> totals;
  std::string word;
  for (size_t i = 0; i < slices.count(); ++i) {
    std::string part_key = slices.key(kPartPrefix, i);
    if (ok) {
      std::optional<std::string> part = wl::kv_get(part_key, &s);
      if (!part) {
        fail("reading " + part_key + " failed", s);
        ok = false;
      } else {
        // Lines of "<word> <count>\n", as count_slice writes them.
        std::string_view rest = *part;
        while (ok && !rest.empty()) {
          size_t space = rest.find(' '), eol = rest.find('\n');
          uint64_t n = 0;
          if (space == std::string_view::npos || eol == std::string_view::npos || space > eol ||
              std::from_chars(rest.data() + space + 1, rest.data() + eol, n).ptr !=
                  rest.data() + eol) {
            fail("malformed partial counts in " + part_key, WL_ERR_INVALID);
            ok = false;
            break;
          }
          word.assign(rest.substr(0, space));
          totals[word] += n;
          rest.remove_prefix(eol + 1);
        }
      }
    } else {
      // After a failure, a slice may still be waiting uncounted.
      wl::kv_delete(slices.key(kSlicePrefix, i));
    }
    if ((s = wl::kv_delete(part_key)) != WL_OK) fail("deleting " + part_key + " failed", s);
  }
  if (!ok) return;

  std::vector<const std::pair<const std::string, uint64_t>*> sorted;
  sorted.reserve(totals.size());
  for (const auto& entry : totals) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });

  // Words are [a-z0-9] only, so they need no JSON escaping. Output goes out
  // in chunks to avoid a second copy of a large result.
  std::string json = "{";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) json += ',';
    json += '"';
    json += sorted[i]->first;
    json += "\":";
    json += std::to_string(sorted[i]->second);
    if (json.size() >= (64 << 10)) {
      if ((s = wl::output(json)) != WL_OK) {
        fail("writing the result failed", s);
        return;
      }
      json.clear();
    }
  }
  json += '}';
  if ((s = wl::output(json)) != WL_OK) fail("writing the result failed", s);
}

// Triggered by wordcount_slice_<token>_<i>: counts that slice into
// wordcount_part_<token>_<i>.
WL_FUNCTION(count_slice) {
  std::string_view key = wl::arg(args, argc, 0);
  if (!key.starts_with(kSlicePrefix)) {
    fail("count_slice expects a wordcount_slice_<token>_<i> key", WL_ERR_INVALID);
    return;
  }
  wl_status s = WL_OK;
  std::optional<std::string> slice = wl::kv_get(key, &s);
  if (!slice) {
    fail("reading " + std::string(key) + " failed", s);
    return;
  }
  if ((s = wl::kv_delete(key)) != WL_OK) fail("deleting " + std::string(key) + " failed", s);

  // Lowercase words in place so the map can key on views into the slice.
  std::unordered_map<std::string_view, uint64_t> counts;
  counts.reserve(1 << 14);
  char* p = slice->data();
  size_t n = slice->size(), i = 0;
  while (i < n) {
    while (i < n && kFold[static_cast<uint8_t>(p[i])] == 0) ++i;
    size_t start = i;
    for (char c; i < n && (c = kFold[static_cast<uint8_t>(p[i])]) != 0; ++i) p[i] = c;
    if (i > start) ++counts[std::string_view(p + start, i - start)];
  }

  std::string part;
  part.reserve(counts.size() * 16);
  char digits[24];
  for (const auto& [word, count] : counts) {
    part += word;
    part += ' ';
    part.append(digits, std::to_chars(digits, digits + sizeof digits, count).ptr);
    part += '\n';
  }
  // Same <token>_<i> suffix, so split_file finds the part by index.
  std::string part_key = std::string(kPartPrefix) + std::string(key.substr(kSlicePrefix.size()));
  if ((s = wl::kv_set(part_key, part)) != WL_OK) fail("storing " + part_key + " failed", s);
}
