#include "workload.h"

#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "app_fixtures.h"

namespace waverless::faults {

namespace {
constexpr int kHotKeys = 3;
constexpr int kCounters = 2;
constexpr auto kRegisterTimeout = std::chrono::seconds(5);
constexpr auto kAppTimeout = std::chrono::seconds(15);
}  // namespace

const char* kindName(ReqKind k) {
  switch (k) {
    case ReqKind::kWordCount:
      return "word_count";
    case ReqKind::kLongchain:
      return "longchain";
    case ReqKind::kGet:
      return "reg_get";
    case ReqKind::kSet:
      return "reg_set";
    case ReqKind::kCas:
      return "reg_cas";
    case ReqKind::kIncr:
      return "reg_incr";
  }
  return "?";
}

std::string snippet(const std::string& body) {
  std::string s = body.substr(0, 160);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Workload::Workload(std::vector<std::unique_ptr<NodeProc>>& nodes, std::string run_id, unsigned seed)
    : nodes_(nodes), run_(std::move(run_id)), seed_(seed) {
  // Small enough to keep a 2-core machine responsive, large enough for several slices.
  text_ = testing::generateText(96 << 10, seed);
  text_counts_ = testing::nativeWordCount(text_);
  acked_delta_.assign(kCounters, 0);
  maybe_delta_.assign(kCounters, 0);
}

Workload::~Workload() { stop(); }

void Workload::start(int register_clients) {
  threads_.emplace_back([this] { wordCountClient(seed_ + 101); });
  threads_.emplace_back([this] { longchainClient(seed_ + 202); });
  for (int c = 0; c < register_clients; ++c) {
    threads_.emplace_back([this, c] { registerClient(c, seed_ + 303 + c); });
  }
}

void Workload::stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

NodeProc& Workload::pickEntry(std::mt19937& rng) { return *nodes_[rng() % nodes_.size()]; }

void Workload::record(RequestRecord r) {
  std::lock_guard lock(mu_);
  requests_.push_back(std::move(r));
}

void Workload::recordOp(RegisterOp op) {
  std::lock_guard lock(mu_);
  history_.push_back(std::move(op));
}

std::vector<RequestRecord> Workload::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<RegisterOp> Workload::history() const {
  std::lock_guard lock(mu_);
  return history_;
}

void Workload::wordCountClient(unsigned seed) {
  std::mt19937 rng(seed);
  while (!stop_) {
    NodeProc& n = pickEntry(rng);
    RequestRecord r{ReqKind::kWordCount, n.id(), nowNs()};
    auto got = n.call("POST", "/word_count", text_, kAppTimeout);
    r.end_ns = nowNs();
    r.status = got.status;
    if (got.status == 200 && got.body != text_counts_) {
      r.wrong = true;
      r.detail = absl::StrCat("answer differs from the native count: ", got.body.substr(0, 120));
    } else if (got.status != 200) {
      r.detail = snippet(got.body);
    }
    record(std::move(r));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Workload::longchainClient(unsigned seed) {
  std::mt19937 rng(seed);
  while (!stop_) {
    NodeProc& n = pickEntry(rng);
    std::string data = absl::StrCat("Chain", rng() % 100000);
    std::string want =
        absl::StrCat("{\"hops\":100,\"final\":\"", testing::rotate(data, 100), "\"}");
    RequestRecord r{ReqKind::kLongchain, n.id(), nowNs()};
    auto got = n.call("POST", "/longchain", data, kAppTimeout);
    r.end_ns = nowNs();
    r.status = got.status;
    if (got.status == 200 && got.body != want) {
      r.wrong = true;
      r.detail = absl::StrCat("want ", want, ", got ", got.body.substr(0, 120));
    } else if (got.status != 200) {
      r.detail = snippet(got.body);
    }
    record(std::move(r));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Values are the writing operation's token, unique in the run, so every read names the one write
// it saw. Non-200 answers make a write "maybe happened": sound whatever the platform did.
void Workload::registerClient(int client, unsigned seed) {
  std::mt19937 rng(seed);
  std::optional<std::string> last_seen;
  for (int n = 0; !stop_; ++n) {
    NodeProc& node = pickEntry(rng);
    RegisterOp op;
    op.client = client;
    std::string token = absl::StrCat(run_, "-c", client, "-", n);
    int dice = rng() % 10;
    int k = rng() % kHotKeys;
    std::string key = absl::StrCat(run_, "k", k);
    op.key = key;
    std::string path, body;
    ReqKind kind;
    int counter = -1;
    if (dice < 4) {
      kind = ReqKind::kGet;
      op.kind = OpKind::kGet;
      path = "/register/get";
      body = key;
    } else if (dice < 7) {
      kind = ReqKind::kSet;
      op.kind = OpKind::kSet;
      op.value = token;
      path = "/register/set";
      body = absl::StrCat(key, "\n", token, "\n", token);
    } else if (dice < 9) {
      kind = ReqKind::kCas;
      op.kind = OpKind::kCas;
      op.value = token;
      // Mostly from what this client saw last (often current, so often stored), sometimes
      // create-only.
      if (rng() % 4 != 0 && last_seen) op.expected = last_seen;
      path = "/register/cas";
      body =
          absl::StrCat(key, "\n", token, "\n", op.expected ? "=" + *op.expected : "!", "\n", token);
    } else {
      kind = ReqKind::kIncr;
      op.kind = OpKind::kIncr;
      counter = static_cast<int>(rng() % kCounters);
      op.key = absl::StrCat("ctr:", run_, "n", counter);
      op.delta = 1 + static_cast<int64_t>(rng() % 5);
      path = "/register/incr";
      body = absl::StrCat(run_, "n", counter, "\n", op.delta);
    }
    RequestRecord r{kind, node.id(), nowNs()};
    op.call_ns = r.start_ns;
    auto got = node.call("POST", path, body, kRegisterTimeout);
    r.end_ns = op.return_ns = nowNs();
    r.status = got.status;
    bool acked = false;
    // A request whose connection never opened never reached the cluster: it did nothing, and
    // leaving it out of the history spares the checker a "maybe happened" op.
    bool never_sent = got.status == -1 && got.body.starts_with("connect ");
    if (got.status != 200) {
      op.indeterminate = true;
      r.detail = snippet(got.body);
    } else if (op.kind == OpKind::kGet) {
      if (got.body == "absent") {
        op.got.reset();
      } else if (got.body.starts_with("=")) {
        op.got = got.body.substr(1);
      } else {
        r.wrong = true;
      }
      last_seen = op.got;
    } else if (op.kind == OpKind::kSet) {
      r.wrong = got.body != "ok";
      acked = !r.wrong;
      last_seen = token;
    } else if (op.kind == OpKind::kCas) {
      r.wrong = got.body != "stored" && got.body != "conflict";
      op.cas_stored = got.body == "stored";
      acked = op.cas_stored;
      if (acked) last_seen = token;
    } else {
      r.wrong = !absl::SimpleAtoi(got.body, &op.sum);
    }
    if (r.wrong) {
      // A malformed answer is counted as wrong; for the history it is unknown.
      r.detail = absl::StrCat("malformed answer: ", got.body.substr(0, 120));
      op.indeterminate = true;
    }
    {
      std::lock_guard lock(mu_);
      if (acked) acked_tokens_.push_back(token);
      // A write whose answer was lost may still have committed, and with it its trigger.
      if (!acked && op.indeterminate && !never_sent &&
          (op.kind == OpKind::kSet || op.kind == OpKind::kCas)) {
        unknown_tokens_.push_back(token);
      }
      if (counter >= 0 && !never_sent) {
        (op.indeterminate ? maybe_delta_ : acked_delta_)[counter] += op.delta;
      }
    }
    record(std::move(r));
    if (!never_sent) recordOp(std::move(op));
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 20));
  }
}

bool Workload::finalReads(Probe* probe) {
  // Any node: all of them are up again. Retried, since a restarted cluster may still settle.
  auto ask = [&](const std::string& path, const std::string& body,
                 std::string* out) -> std::pair<int64_t, int64_t> {
    for (int attempt = 0; attempt < 40; ++attempt) {
      NodeProc& n = *nodes_[1 + attempt % (nodes_.size() - 1)];
      int64_t call = nowNs();
      auto got = n.call("POST", path, body, kRegisterTimeout);
      if (got.status == 200) {
        *out = got.body;
        return {call, nowNs()};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return {-1, -1};
  };
  for (int k = 0; k < kHotKeys; ++k) {
    RegisterOp op;
    op.client = -1;
    op.kind = OpKind::kGet;
    op.key = absl::StrCat(run_, "k", k);
    std::string body;
    auto [call, ret] = ask("/register/get", op.key, &body);
    if (call < 0) return false;
    op.call_ns = call;
    op.return_ns = ret;
    if (body != "absent") op.got = body.substr(1);
    recordOp(std::move(op));
  }
  // The clients have stopped: a copy of what they acknowledged, then no lock across the calls.
  std::vector<std::string> tokens;
  std::vector<int64_t> acked, maybe;
  size_t n_acked = 0;
  {
    std::lock_guard lock(mu_);
    tokens = acked_tokens_;
    n_acked = tokens.size();
    // Then the writes of unknown outcome: those that committed (their ev_ exists) must have had
    // their trigger run too, although no request waited for it to the end (durable triggers).
    tokens.insert(tokens.end(), unknown_tokens_.begin(), unknown_tokens_.end());
    acked = acked_delta_;
    maybe = maybe_delta_;
  }
  for (int c = 0; c < kCounters; ++c) {
    std::string body;
    int64_t value = 0;
    // Adding 0 reads the counter atomically, and goes into the history like any incr.
    auto [call, ret] = ask("/register/incr", absl::StrCat(run_, "n", c, "\n0"), &body);
    if (call < 0 || !absl::SimpleAtoi(body, &value)) return false;
    RegisterOp op;
    op.client = -1;
    op.kind = OpKind::kIncr;
    op.key = absl::StrCat("ctr:", run_, "n", c);
    op.sum = value;
    op.call_ns = call;
    op.return_ns = ret;
    recordOp(std::move(op));
    if (value < acked[c] || value > acked[c] + maybe[c]) {
      probe->counters_wrong++;
      probe->examples.push_back(absl::StrCat("counter ", c, " is ", value, ", acknowledged sum ",
                                             acked[c], ", unknown outcomes ", maybe[c]));
    }
  }
  probe->acked_writes = n_acked;
  // Committed writes whose trigger had not run yet: no request waited for it, so a group leader
  // may still be about to run it as an orphan (after its grace period).
  std::vector<std::string> late;
  for (size_t at = 0; at < tokens.size(); at += 200) {
    std::string body;
    size_t end = std::min(tokens.size(), at + 200);
    for (size_t i = at; i < end; ++i) absl::StrAppend(&body, tokens[i], "\n");
    std::string out;
    if (ask("/register/probe", body, &out).first < 0 || out.size() != 3 * (end - at)) return false;
    for (size_t i = at; i < end; ++i) {
      char ev = out[3 * (i - at)], done = out[3 * (i - at) + 1];
      if (i >= n_acked) {
        if (ev != '1') continue;  // it did not commit: nothing to trigger
        probe->committed_unacked++;
        if (done != '1') late.push_back(tokens[i]);
        continue;
      }
      if (ev != '1') {
        probe->missing_writes++;
        if (probe->examples.size() < 10) {
          probe->examples.push_back("acknowledged write " + tokens[i] + " is gone");
        }
      }
      if (done != '1') {
        probe->missing_triggers++;
        if (probe->examples.size() < 10) {
          probe->examples.push_back("the trigger of acknowledged write " + tokens[i] +
                                    " never ran");
        }
      }
    }
  }
  for (int round = 0; round < 20 && !late.empty(); ++round) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::string body, out;
    for (const auto& t : late) absl::StrAppend(&body, t, "\n");
    if (ask("/register/probe", body, &out).first < 0 || out.size() != 3 * late.size()) continue;
    std::vector<std::string> still;
    for (size_t i = 0; i < late.size(); ++i) {
      if (out[3 * i + 1] != '1') still.push_back(late[i]);
    }
    late = std::move(still);
  }
  probe->missing_triggers += late.size();
  for (const auto& t : late) {
    if (probe->examples.size() >= 10) break;
    probe->examples.push_back("the trigger of committed write " + t +
                              " (its request failed) never ran");
  }
  return true;
}

}  // namespace waverless::faults
