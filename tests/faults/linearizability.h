// A linearizability checker for histories of a key-value register, written for the fault-injection
// harness (tests/faults/). It answers: could every operation of the history have taken effect at
// one instant between its call and its return, in an order that a single correct register per key
// would produce?
//
// The search is Wing & Gong's, with the two refinements Porcupine (Athalye, 2017) made practical:
//  - memoisation: a (set of operations linearized so far, register state) pair seen once is never
//    explored again (Lowe's cache), which turns the worst case from n! into the number of
//    distinct reachable pairs;
//  - P-compositionality: a history is linearizable iff each key's sub-history is (Herlihy & Wing's
//    locality), so each key is checked on its own.
//
// Operations whose outcome the client never learned (timed out, connection lost, 503) are
// "maybe happened": their return time is infinity and any result is accepted for them, so the
// search may place them anywhere after their call, including after everything else (which is the
// same as never).
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace waverless::faults {

enum class OpKind { kGet, kSet, kCas, kIncr };

struct RegisterOp {
  int client = 0;
  std::string key;
  OpKind kind = OpKind::kGet;
  // Inputs.
  std::string value;                    // kSet; kCas: the new value
  std::optional<std::string> expected;  // kCas; nullopt: the key must be absent
  int64_t delta = 0;                    // kIncr
  // What the client saw, when `indeterminate` is false.
  std::optional<std::string> got;  // kGet; nullopt: not found
  bool cas_stored = false;         // kCas: stored, or refused as a mismatch
  int64_t sum = 0;                 // kIncr: the new value
  // The call never answered clearly: it may or may not have taken effect.
  bool indeterminate = false;
  // Any monotonic clock, same for all clients. return_ns is ignored when indeterminate.
  int64_t call_ns = 0;
  int64_t return_ns = 0;
};

struct CheckResult {
  enum class Verdict { kLinearizable, kNotLinearizable, kGaveUp };
  Verdict verdict = Verdict::kLinearizable;
  // kNotLinearizable: the first key whose history is not; kGaveUp: the key the budget ran out on.
  std::string key;
  std::string explanation;
  size_t keys = 0;
  size_t ops = 0;  // counted: indeterminate gets are left out (they change nothing)
  uint64_t states_explored = 0;
  // Counters (keys with only increments and reads) whose exact search ran out of budget and that
  // passed Jepsen's weaker counter check instead (see checkLinearizable).
  std::vector<std::string> counters_bounds_only;
};

struct CheckOptions {
  // Per key: a search that explores more (linearized set, state) pairs than this gives up
  // (kGaveUp) rather than run for hours on a pathological history.
  uint64_t max_states_per_key = 50'000'000;
  std::chrono::milliseconds max_time_per_key{60'000};
};

// Every key's history. Keys start absent.
//
// A counter with many maybe-happened increments makes the exact search exponential (which of
// them took effect is a subset-sum question). For such a key, when the search runs out of its
// (smaller) budget, the checker falls back to Jepsen's counter check: every observed value lies
// between the increments surely done before it and those that may have been. The key is then
// listed in counters_bounds_only: it is consistent, not proven linearizable.
CheckResult checkLinearizable(const std::vector<RegisterOp>& history, CheckOptions options = {});

// One operation as one line, for logs and failure messages.
std::string describe(const RegisterOp& op);

// One operation as one tab-separated line (no newline), and back: a run's history.tsv can be
// checked again later (fault_driver --check-history FILE). Keys and values must not contain tabs
// or newlines. nullopt: not such a line.
std::string toTsv(const RegisterOp& op);
std::optional<RegisterOp> fromTsv(std::string_view line);

}  // namespace waverless::faults
