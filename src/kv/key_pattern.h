// Key patterns: the `{}` templates app.yaml uses to name the KV keys a function reads, writes or is
// triggered by (e.g. "wordcount_slice_{}_{}").
//
// A pattern is literal text with `{}` placeholders. Each `{}` matches one non-empty segment made
// only of segment characters [A-Za-z0-9._-]. Because '_', '.' and '-' are segment characters, a
// literal next to a placeholder may also be read as part of the segment, so matching tries every
// split rather than scanning greedily. Patterns know nothing about the store; they are pure values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::kv {

// True for the characters a `{}` segment may contain: [A-Za-z0-9._-].
bool isSegmentChar(char c);

class KeyPattern {
 public:
  // Rejects empty text, unbalanced braces, anything but "{}" between braces ("{x}"), adjacent
  // placeholders ("{}{}", whose split would be ambiguous) and characters outside printable ASCII.
  static absl::StatusOr<KeyPattern> parse(std::string_view text);

  bool matches(std::string_view key) const;

  // The segment bound to each `{}`, in order, or nullopt if `key` does not match. When several
  // splits match, the one where earlier placeholders take the shortest segments wins
  // (lexicographically shortest-first): "wordcount_slice_{}_{}" binds "wordcount_slice_a_b_c" to
  // ["a", "b_c"].
  std::optional<std::vector<std::string>> bind(std::string_view key) const;

  // True iff some key matches both patterns. Exact: decided on the product of the two patterns'
  // automata, in O(|this| * |other|) time and space.
  bool overlaps(const KeyPattern& other) const;

  const std::string& text() const { return text_; }
  size_t placeholders() const { return literals_.size() - 1; }

 private:
  KeyPattern(std::string text, std::vector<std::string> literals)
      : text_(std::move(text)), literals_(std::move(literals)) {}

  // On a match, fills seg_ends[i] with the end offset of placeholder i's segment (its start is the
  // end of the literal before it).
  bool match(std::string_view key, std::vector<size_t>* seg_ends) const;
  bool matchFrom(std::string_view key, size_t placeholder, size_t pos,
                 std::vector<size_t>* seg_ends, std::vector<char>* dead) const;

  std::string text_;
  // The literal runs around the placeholders: placeholders() + 1 of them. The first and last may be
  // empty; the inner ones never are (parse() rejects "{}{}").
  std::vector<std::string> literals_;
};

}  // namespace waverless::kv
