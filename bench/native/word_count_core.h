// Word count exactly as apps/word_count defines it, for the native and the
// Redis-pipeline baselines: a word is a maximal run of [A-Za-z0-9],
// lowercased; the answer is {"word":count,...} sorted by word, no spaces.
// The slicing (~1 MiB on line ends), the per-slice counting and the
// "<word> <count>\n" partial format copy the Waverless app, so the
// baselines do the same work and their answers are compared byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wlbench::wc {

constexpr size_t kSliceBytes = size_t{1} << 20;

// Length of the next slice at the front of data (whole input in memory).
size_t nextSliceLength(std::string_view data);
// Splits data into the slices the Waverless app would store.
std::vector<std::string_view> slices(std::string_view data);

// Counts the words of text, lowercasing it in place so the keys can be views.
std::unordered_map<std::string_view, uint64_t> count(char* text, size_t n);

// "<word> <count>\n" lines.
std::string encodePart(const std::unordered_map<std::string_view, uint64_t>& counts);
// Adds a part to totals; false if it is malformed.
bool mergePart(std::string_view part, std::unordered_map<std::string, uint64_t>& totals);

// The JSON answer: entries sorted by word.
std::string toJson(std::vector<std::pair<std::string_view, uint64_t>> entries);

// Deterministic English-like text of about `bytes` bytes: a 30,000-word
// vocabulary drawn by a Zipf law (s = 1), some capitals, digits and
// punctuation, lines of 6-17 words.
std::string generateText(size_t bytes, uint64_t seed);

}  // namespace wlbench::wc
