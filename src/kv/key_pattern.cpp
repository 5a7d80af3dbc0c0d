#include "kv/key_pattern.h"

#include <deque>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace waverless::kv {

bool isSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

namespace {

absl::Status parseError(std::string_view text, size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("key pattern \"", absl::CEscape(std::string(text)),
                                                 "\": ", std::string(what), " at offset ", offset));
}

// One step of a pattern's automaton: a literal character, or a segment character. A placeholder is
// kSegment followed by kSegmentStar (one or more segment characters).
struct Step {
  enum Kind { kLiteral, kSegment, kSegmentStar } kind;
  char c = 0;  // kLiteral only
};

std::vector<Step> steps(const std::vector<std::string>& literals) {
  std::vector<Step> out;
  for (size_t i = 0; i < literals.size(); ++i) {
    if (i > 0) {
      out.push_back({Step::kSegment});
      out.push_back({Step::kSegmentStar});
    }
    for (char c : literals[i]) out.push_back({Step::kLiteral, c});
  }
  return out;
}

// Whether one character can be consumed by both steps.
bool compatible(const Step& a, const Step& b) {
  if (a.kind == Step::kLiteral && b.kind == Step::kLiteral) return a.c == b.c;
  if (a.kind == Step::kLiteral) return isSegmentChar(a.c);
  if (b.kind == Step::kLiteral) return isSegmentChar(b.c);
  return true;  // both segment steps: any segment character
}

}  // namespace

absl::StatusOr<KeyPattern> KeyPattern::parse(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("key pattern is empty");
  std::vector<std::string> literals(1);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{') {
      if (i + 1 == text.size()) return parseError(text, i, "unbalanced '{'");
      if (text[i + 1] != '}') {
        return parseError(text, i,
                          "'{' must be followed directly by '}' (placeholders are \"{}\")");
      }
      if (literals.size() > 1 && literals.back().empty()) {
        return parseError(text, i, "adjacent placeholders \"{}{}\" are ambiguous");
      }
      literals.emplace_back();
      ++i;
    } else if (c == '}') {
      return parseError(text, i, "unbalanced '}'");
    } else if (c < 0x20 || c > 0x7e) {
      return parseError(text, i, "character outside printable ASCII");
    } else {
      literals.back().push_back(c);
    }
  }
  return KeyPattern(std::string(text), std::move(literals));
}

bool KeyPattern::matches(std::string_view key) const { return match(key, nullptr); }

std::optional<std::vector<std::string>> KeyPattern::bind(std::string_view key) const {
  std::vector<size_t> ends(placeholders());
  if (!match(key, &ends)) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(ends.size());
  size_t start = literals_[0].size();
  for (size_t i = 0; i < ends.size(); ++i) {
    out.emplace_back(key.substr(start, ends[i] - start));
    start = ends[i] + literals_[i + 1].size();
  }
  return out;
}

bool KeyPattern::match(std::string_view key, std::vector<size_t>* seg_ends) const {
  // Cheap rejections first: most keys checked against a pattern do not match it.
  const std::string& first = literals_.front();
  const std::string& last = literals_.back();
  if (!key.starts_with(first)) return false;
  size_t n = placeholders();
  if (n == 0) return key.size() == first.size();
  if (key.size() < first.size() + last.size() + n || !key.ends_with(last)) return false;
  // dead[i * (key.size() + 1) + pos]: placeholder i starting at pos is known not to lead to a
  // match. Remembering failures bounds the search at O(n * |key|^2) instead of exponential.
  std::vector<char> dead(n * (key.size() + 1), 0);
  std::vector<size_t> scratch;
  if (seg_ends == nullptr) {
    scratch.resize(n);
    seg_ends = &scratch;
  }
  return matchFrom(key, 0, first.size(), seg_ends, &dead);
}

bool KeyPattern::matchFrom(std::string_view key, size_t placeholder, size_t pos,
                           std::vector<size_t>* seg_ends, std::vector<char>* dead) const {
  char& is_dead = (*dead)[placeholder * (key.size() + 1) + pos];
  if (is_dead) return false;
  const std::string& next = literals_[placeholder + 1];
  bool is_last = placeholder + 1 == placeholders();
  // Shortest segment first, so earlier placeholders bind the shortest segments that still match.
  for (size_t end = pos + 1; end <= key.size() && isSegmentChar(key[end - 1]); ++end) {
    if (!key.substr(end).starts_with(next)) continue;
    size_t after = end + next.size();
    bool rest_matches =
        is_last ? after == key.size() : matchFrom(key, placeholder + 1, after, seg_ends, dead);
    if (rest_matches) {
      (*seg_ends)[placeholder] = end;
      return true;
    }
  }
  is_dead = 1;
  return false;
}

bool KeyPattern::overlaps(const KeyPattern& other) const {
  // Both patterns are regular languages; they overlap iff the product automaton reaches the pair of
  // accepting states. A state is a pair of positions in the two step lists; kSegmentStar may also
  // be skipped without consuming input.
  std::vector<Step> a = steps(literals_);
  std::vector<Step> b = steps(other.literals_);
  size_t width = b.size() + 1;
  std::vector<char> seen((a.size() + 1) * width, 0);
  std::deque<std::pair<size_t, size_t>> todo;
  auto visit = [&](size_t p, size_t q) {
    char& s = seen[p * width + q];
    if (!s) {
      s = 1;
      todo.emplace_back(p, q);
    }
  };
  visit(0, 0);
  while (!todo.empty()) {
    auto [p, q] = todo.front();
    todo.pop_front();
    if (p == a.size() && q == b.size()) return true;
    if (p < a.size() && a[p].kind == Step::kSegmentStar) visit(p + 1, q);
    if (q < b.size() && b[q].kind == Step::kSegmentStar) visit(p, q + 1);
    if (p < a.size() && q < b.size() && compatible(a[p], b[q])) {
      visit(a[p].kind == Step::kSegmentStar ? p : p + 1,
            b[q].kind == Step::kSegmentStar ? q : q + 1);
    }
  }
  return false;
}

}  // namespace waverless::kv
