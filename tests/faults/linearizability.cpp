#include "linearizability.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace waverless::faults {

namespace {

using State = std::optional<std::string>;

std::optional<int64_t> asInt(const State& s) {
  if (!s) return int64_t{0};
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (s->empty() || ec != std::errc() || end != s->data() + s->size()) return std::nullopt;
  return v;
}

// The register's sequential specification: whether op, applied to `state`, could have produced
// what the client saw, and the state after it.
bool step(const RegisterOp& op, const State& state, State* next) {
  *next = state;
  switch (op.kind) {
    case OpKind::kGet:
      return op.indeterminate || op.got == state;
    case OpKind::kSet:
      *next = op.value;
      return true;
    case OpKind::kCas: {
      bool matches = op.expected ? state == op.expected : !state.has_value();
      if (matches) *next = op.value;
      return op.indeterminate || op.cas_stored == matches;
    }
    case OpKind::kIncr: {
      std::optional<int64_t> base = asInt(state);
      int64_t sum = 0;
      if (!base || __builtin_add_overflow(*base, op.delta, &sum)) {
        // The store refuses it and writes nothing; a client that saw a sum cannot be explained.
        return op.indeterminate;
      }
      *next = absl::StrCat(sum);
      return op.indeterminate || op.sum == sum;
    }
  }
  return false;
}

// The call and return events of one key's operations as a doubly linked list in time order; a
// linearized operation is lifted out of it (both its events) and put back on backtracking.
struct Entry {
  int op = -1;          // index into the key's ops
  bool is_call = true;  //
  Entry* match = nullptr;
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

struct Bitset {
  std::vector<uint64_t> words;
  explicit Bitset(size_t n) : words((n + 63) / 64, 0) {}
  void set(int i) { words[i / 64] |= uint64_t{1} << (i % 64); }
  void clear(int i) { words[i / 64] &= ~(uint64_t{1} << (i % 64)); }
  bool operator==(const Bitset&) const = default;
  bool subsetOf(const Bitset& o) const {
    for (size_t i = 0; i < words.size(); ++i) {
      if ((words[i] & ~o.words[i]) != 0) return false;
    }
    return true;
  }
  size_t hash() const {
    size_t h = 0xcbf29ce484222325ull;
    for (uint64_t w : words) h = (h ^ w) * 0x100000001b3ull + (h >> 29);
    return h;
  }
};

// The determinate operations linearized so far, the state, and whether the last operation
// linearized was a maybe-happened one (what may come next depends on it, below).
struct CacheKey {
  Bitset linearized;
  State state;
  bool after_maybe = false;
  bool operator==(const CacheKey&) const = default;
};
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    size_t h = k.linearized.hash() + k.after_maybe;
    return h ^ (k.state ? std::hash<std::string>{}(*k.state) * 31 + 1 : 0);
  }
};

void lift(Entry* call) {
  call->prev->next = call->next;
  if (call->next) call->next->prev = call->prev;
  Entry* ret = call->match;
  ret->prev->next = ret->next;
  if (ret->next) ret->next->prev = ret->prev;
}

void unlift(Entry* call) {
  Entry* ret = call->match;
  ret->prev->next = ret;
  if (ret->next) ret->next->prev = ret;
  call->prev->next = call;
  if (call->next) call->next->prev = call;
}

struct KeyResult {
  CheckResult::Verdict verdict = CheckResult::Verdict::kLinearizable;
  uint64_t states = 0;
  size_t longest_prefix = 0;  // most operations linearized at once: how far the search got
};

KeyResult checkKey(const std::vector<const RegisterOp*>& ops, const CheckOptions& options) {
  KeyResult out;
  const size_t n = ops.size();
  if (n == 0) return out;
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  struct Event {
    int64_t t;
    bool is_call;
    int op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const RegisterOp& op = *ops[i];
    events.push_back({op.call_ns, true, static_cast<int>(i)});
    // A return never earlier than its call, whatever the clock said.
    int64_t ret = op.indeterminate ? kNever : std::max(op.return_ns, op.call_ns);
    events.push_back({ret, false, static_cast<int>(i)});
  }
  // At equal times calls come first: the operations are then taken as overlapping, which only
  // ever allows more orders (never rejects a correct history for a clock tie).
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.t != b.t) return a.t < b.t;
    return a.is_call && !b.is_call;
  });
  std::vector<Entry> entries(2 * n + 1);  // [0] is the head
  std::vector<Entry*> call_of(n), ret_of(n);
  Entry* head = &entries[0];
  Entry* prev = head;
  for (size_t i = 0; i < events.size(); ++i) {
    Entry* e = &entries[i + 1];
    e->op = events[i].op;
    e->is_call = events[i].is_call;
    e->prev = prev;
    prev->next = e;
    prev = e;
    (e->is_call ? call_of : ret_of)[e->op] = e;
  }
  for (size_t i = 0; i < n; ++i) {
    call_of[i]->match = ret_of[i];
    ret_of[i]->match = call_of[i];
  }

  // Porcupine's cache, with one refinement for maybe-happened operations. Two configurations with
  // the same determinate operations linearized and the same state differ only in which
  // maybe-happened ones were applied; the one that applied a subset of the other's dominates it,
  // since its extra pending ones can always be placed at the very end (their return is at
  // infinity, and any outcome is accepted for them). So a configuration is skipped when one seen
  // before applied a subset of its maybe-happened operations. Without this a history with many
  // timed-out writes explores every subset of them.
  std::unordered_map<CacheKey, std::vector<Bitset>, CacheKeyHash> cache;
  Bitset applied_maybe(n);
  // The operations that may be linearized next are the calls before the first return in the
  // list. Any order of trying them keeps the search complete; trying the determinate ones first
  // (pass 0) and the maybe-happened ones only when those are exhausted (pass 1) means a timed-out
  // write is assumed to have taken effect only when some later observation needs it, which keeps
  // histories with many of them (a counter under faults) from exploring every subset.
  struct Frame {
    Entry* call;
    State state;
    int pass;
  };
  std::vector<Frame> calls;
  Bitset linearized(n);
  State state;  // absent
  Entry* entry = head->next;
  int pass = 0;
  bool skipped = false;  // pass 0 passed over a maybe-happened call
  // Whether a maybe-happened call comes before `stop` among the candidates.
  auto maybeBefore = [&](Entry* stop) {
    for (Entry* e = head->next; e != nullptr && e != stop && e->is_call; e = e->next) {
      if (ops[e->op]->indeterminate) return true;
    }
    return false;
  };
  auto started = std::chrono::steady_clock::now();
  // Once every determinate operation is placed, the maybe-happened ones left can all go at the
  // end (any outcome is accepted for them): the history is linearizable.
  size_t determinate_left = 0;
  for (const RegisterOp* op : ops) determinate_left += !op->indeterminate;
  while (determinate_left > 0) {
    if (entry->is_call) {
      const RegisterOp& op = *ops[entry->op];
      if (op.indeterminate != (pass == 1)) {
        skipped = skipped || op.indeterminate;
        entry = entry->next;
        continue;
      }
      // A maybe-happened blind write right after another maybe-happened op: the earlier one is
      // overwritten unobserved, so the same order without it (that op moved to the very end)
      // reaches this state with fewer maybe-happened ops applied. Only that order is explored.
      if (op.indeterminate && op.kind == OpKind::kSet && !calls.empty() &&
          ops[calls.back().call->op]->indeterminate) {
        entry = entry->next;
        continue;
      }
      State next;
      if (step(op, state, &next)) {
        CacheKey key{linearized, next, op.indeterminate};
        Bitset maybe = applied_maybe;
        (op.indeterminate ? maybe : key.linearized).set(entry->op);
        std::vector<Bitset>& seen = cache[std::move(key)];
        bool fresh = std::none_of(seen.begin(), seen.end(),
                                  [&](const Bitset& b) { return b.subsetOf(maybe); });
        if (fresh) {
          seen.push_back(std::move(maybe));
          if (++out.states > options.max_states_per_key ||
              ((out.states & 0xfff) == 0 &&
               std::chrono::steady_clock::now() - started > options.max_time_per_key)) {
            out.verdict = CheckResult::Verdict::kGaveUp;
            return out;
          }
          calls.push_back({entry, state, pass});
          determinate_left -= !op.indeterminate;
          state = std::move(next);
          (op.indeterminate ? applied_maybe : linearized).set(entry->op);
          lift(entry);
          out.longest_prefix = std::max(out.longest_prefix, calls.size());
          entry = head->next;
          pass = 0;
          skipped = false;
          continue;
        }
      }
      entry = entry->next;
    } else if (pass == 0 && skipped) {
      // The determinate candidates are exhausted here: now the maybe-happened ones.
      pass = 1;
      entry = head->next;
    } else {
      // No candidate works: undo the last choice and try the next candidate after it.
      if (calls.empty()) {
        out.verdict = CheckResult::Verdict::kNotLinearizable;
        return out;
      }
      Frame f = std::move(calls.back());
      calls.pop_back();
      determinate_left += !ops[f.call->op]->indeterminate;
      state = std::move(f.state);
      linearized.clear(f.call->op);
      applied_maybe.clear(f.call->op);
      unlift(f.call);
      entry = f.call->next;
      pass = f.pass;
      // Resuming pass 0 part-way: whether it skips a maybe-happened call is seen again, except
      // for one before this point; such a call makes pass 1 needed as well.
      skipped = pass == 0 && maybeBefore(f.call);
    }
  }
  return out;
}

// Only increments (deltas >= 0) and reads: a counter.
bool isCounter(const std::vector<const RegisterOp*>& ops) {
  for (const RegisterOp* op : ops) {
    if (op->kind == OpKind::kIncr ? op->delta < 0 : op->kind != OpKind::kGet) return false;
  }
  return true;
}

// Jepsen's counter check: every value a client saw lies between the increments that had surely
// happened (acknowledged before its call, plus its own) and those that may have (called before
// its answer). Necessary for linearizability, not sufficient; used when the exact search of a
// counter with many maybe-happened increments (exponential in their number) runs out of budget.
// An empty explanation: it holds.
std::string counterBounds(const std::vector<const RegisterOp*>& ops) {
  for (const RegisterOp* o : ops) {
    if (o->indeterminate) continue;
    int64_t seen = 0;
    if (o->kind == OpKind::kIncr) {
      seen = o->sum;
    } else {
      std::optional<int64_t> v = asInt(o->got);
      if (!v) return absl::StrCat(describe(*o), ": not an integer");
      seen = *v;
    }
    int64_t low = 0, high = 0;
    for (const RegisterOp* i : ops) {
      if (i->kind != OpKind::kIncr) continue;
      if (i == o || (!i->indeterminate && i->return_ns < o->call_ns)) low += i->delta;
      if (i == o || i->call_ns < o->return_ns) high += i->delta;
    }
    if (seen < low || seen > high) {
      return absl::StrCat(describe(*o), ": outside [", low, ", ", high, "]");
    }
  }
  return "";
}

std::string quote(const std::optional<std::string>& v) {
  return v ? absl::StrCat("\"", *v, "\"") : "absent";
}

}  // namespace

std::string describe(const RegisterOp& op) {
  std::string what;
  switch (op.kind) {
    case OpKind::kGet:
      what = absl::StrCat("get(", op.key, ") -> ", op.indeterminate ? "?" : quote(op.got));
      break;
    case OpKind::kSet:
      what = absl::StrCat("set(", op.key, ", \"", op.value, "\")", op.indeterminate ? " ?" : "");
      break;
    case OpKind::kCas:
      what = absl::StrCat("cas(", op.key, ", ", quote(op.expected), " -> \"", op.value, "\") -> ",
                          op.indeterminate ? "?" : (op.cas_stored ? "stored" : "mismatch"));
      break;
    case OpKind::kIncr:
      what = absl::StrCat("incr(", op.key, ", ", op.delta, ") -> ",
                          op.indeterminate ? "?" : absl::StrCat(op.sum));
      break;
  }
  return absl::StrCat("client ", op.client, " [", op.call_ns, ", ",
                      op.indeterminate ? std::string("inf") : absl::StrCat(op.return_ns), "] ",
                      what);
}

namespace {
constexpr std::string_view kKinds[] = {"get", "set", "cas", "incr"};
// An absent value in a TSV field; values are harness tokens, never this.
constexpr std::string_view kAbsent =
    "\x01"
    "absent";  // split: \x01a would be one escape

std::string field(const std::optional<std::string>& v) { return v ? *v : std::string(kAbsent); }
std::optional<std::string> unfield(std::string_view f) {
  if (f == kAbsent) return std::nullopt;
  return std::string(f);
}
template <typename T>
bool number(std::string_view f, T* out) {
  auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), *out);
  return ec == std::errc() && end == f.data() + f.size() && !f.empty();
}
}  // namespace

std::string toTsv(const RegisterOp& op) {
  return absl::StrJoin(
      {absl::StrCat(op.client), op.key, std::string(kKinds[static_cast<int>(op.kind)]), op.value,
       field(op.expected), absl::StrCat(op.delta), field(op.got),
       absl::StrCat(op.cas_stored ? 1 : 0), absl::StrCat(op.sum),
       absl::StrCat(op.indeterminate ? 1 : 0), absl::StrCat(op.call_ns),
       absl::StrCat(op.return_ns)},
      "\t");
}

std::optional<RegisterOp> fromTsv(std::string_view line) {
  std::vector<std::string_view> f;
  for (size_t at = 0;;) {
    size_t tab = line.find('\t', at);
    f.push_back(line.substr(at, tab == std::string_view::npos ? std::string_view::npos : tab - at));
    if (tab == std::string_view::npos) break;
    at = tab + 1;
  }
  if (f.size() != 12) return std::nullopt;
  RegisterOp op;
  int kind = -1;
  for (int i = 0; i < 4; ++i) {
    if (f[2] == kKinds[i]) kind = i;
  }
  int stored = 0, maybe = 0;
  if (kind < 0 || !number(f[0], &op.client) || !number(f[5], &op.delta) || !number(f[7], &stored) ||
      !number(f[8], &op.sum) || !number(f[9], &maybe) || !number(f[10], &op.call_ns) ||
      !number(f[11], &op.return_ns)) {
    return std::nullopt;
  }
  op.key = std::string(f[1]);
  op.kind = static_cast<OpKind>(kind);
  op.value = std::string(f[3]);
  op.expected = unfield(f[4]);
  op.got = unfield(f[6]);
  op.cas_stored = stored != 0;
  op.indeterminate = maybe != 0;
  return op;
}

CheckResult checkLinearizable(const std::vector<RegisterOp>& history, CheckOptions options) {
  CheckResult out;
  std::map<std::string, std::vector<const RegisterOp*>> by_key;
  for (const RegisterOp& op : history) {
    // A read that never answered changed nothing and constrains nothing.
    if (op.kind == OpKind::kGet && op.indeterminate) continue;
    by_key[op.key].push_back(&op);
    out.ops++;
  }
  out.keys = by_key.size();
  for (const auto& [key, ops] : by_key) {
    const bool counter = isCounter(ops);
    CheckOptions o = options;
    if (counter) {
      // The exact search first, on a small budget: the bounds check below is the fallback.
      o.max_states_per_key = std::min<uint64_t>(o.max_states_per_key, 2'000'000);
      o.max_time_per_key = std::min(o.max_time_per_key, std::chrono::milliseconds(5000));
    }
    KeyResult r = checkKey(ops, o);
    out.states_explored += r.states;
    if (r.verdict == CheckResult::Verdict::kLinearizable) continue;
    if (r.verdict == CheckResult::Verdict::kGaveUp && counter) {
      std::string why = counterBounds(ops);
      if (why.empty()) {
        out.counters_bounds_only.push_back(key);
        continue;
      }
      out.verdict = CheckResult::Verdict::kNotLinearizable;
      out.key = key;
      out.explanation = absl::StrCat("counter ", key, ": ", why);
      return out;
    }
    out.verdict = r.verdict;
    out.key = key;
    out.explanation = r.verdict == CheckResult::Verdict::kGaveUp
                          ? absl::StrCat("the search of key ", key, "'s ", ops.size(),
                                         " operations gave up after ", r.states, " states (budget)")
                          : absl::StrCat("key ", key, ": no order of its ", ops.size(),
                                         " operations explains what the clients saw (at most ",
                                         r.longest_prefix, " could be placed in one order)");
    return out;
  }
  return out;
}

}  // namespace waverless::faults
