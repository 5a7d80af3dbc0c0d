#include "word_count_core.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <random>

namespace wlbench::wc {

namespace {

// Byte -> its lowercase form if it belongs to a word, else 0.
constexpr std::array<char, 256> kFold = [] {
  std::array<char, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'a'; c <= 'z'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = static_cast<char>(c - 'A' + 'a');
  return t;
}();

}  // namespace

size_t nextSliceLength(std::string_view data) {
  if (data.size() <= kSliceBytes) return data.size();
  size_t nl = data.rfind('\n', kSliceBytes - 1);
  if (nl == std::string_view::npos) nl = data.find('\n', kSliceBytes);
  return nl == std::string_view::npos ? data.size() : nl + 1;
}

std::vector<std::string_view> slices(std::string_view data) {
  std::vector<std::string_view> out;
  while (size_t n = nextSliceLength(data)) {
    out.push_back(data.substr(0, n));
    data.remove_prefix(n);
  }
  return out;
}

std::unordered_map<std::string_view, uint64_t> count(char* p, size_t n) {
  std::unordered_map<std::string_view, uint64_t> counts;
  counts.reserve(1 << 14);
  size_t i = 0;
  while (i < n) {
    while (i < n && kFold[static_cast<uint8_t>(p[i])] == 0) ++i;
    size_t start = i;
    for (char c; i < n && (c = kFold[static_cast<uint8_t>(p[i])]) != 0; ++i) p[i] = c;
    if (i > start) ++counts[std::string_view(p + start, i - start)];
  }
  return counts;
}

std::string encodePart(const std::unordered_map<std::string_view, uint64_t>& counts) {
  std::string part;
  part.reserve(counts.size() * 16);
  char digits[24];
  for (const auto& [word, n] : counts) {
    part += word;
    part += ' ';
    part.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
    part += '\n';
  }
  return part;
}

bool mergePart(std::string_view rest, std::unordered_map<std::string, uint64_t>& totals) {
  std::string word;
  while (!rest.empty()) {
    size_t space = rest.find(' '), eol = rest.find('\n');
    uint64_t n = 0;
    if (space == std::string_view::npos || eol == std::string_view::npos || space > eol ||
        std::from_chars(rest.data() + space + 1, rest.data() + eol, n).ptr != rest.data() + eol) {
      return false;
    }
    word.assign(rest.substr(0, space));
    totals[word] += n;
    rest.remove_prefix(eol + 1);
  }
  return true;
}

std::string toJson(std::vector<std::pair<std::string_view, uint64_t>> entries) {
  std::sort(entries.begin(), entries.end());
  std::string json = "{";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) json += ',';
    json += '"';
    json += entries[i].first;
    json += "\":";
    json += std::to_string(entries[i].second);
  }
  json += '}';
  return json;
}

std::string generateText(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr size_t kVocabulary = 30000;
  std::vector<std::string> vocab;
  std::uniform_int_distribution<int> len(2, 10), letter(0, 25);
  for (size_t i = 0; i < kVocabulary; ++i) {
    std::string w;
    int n = len(rng);
    for (int k = 0; k < n; ++k) w += static_cast<char>('a' + letter(rng));
    vocab.push_back(std::move(w));
  }
  std::vector<double> cdf(kVocabulary);
  double sum = 0;
  for (size_t k = 0; k < kVocabulary; ++k) cdf[k] = sum += 1.0 / static_cast<double>(k + 1);
  std::uniform_real_distribution<double> u(0, sum);
  std::uniform_int_distribution<int> pct(0, 99), words_per_line(6, 17);

  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    int n = words_per_line(rng);
    for (int k = 0; k < n; ++k) {
      size_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
      std::string w = vocab[std::min(rank, kVocabulary - 1)];
      int r = pct(rng);
      if (r < 8) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      if (r == 99) w = std::to_string(rng() % 2000);
      text += w;
      r = pct(rng);
      text += r < 6 ? ", " : r < 9 ? ". " : r < 10 ? " - " : " ";
    }
    text.back() = '\n';
  }
  return text;
}

}  // namespace wlbench::wc
