// The load the harness drives while it injects faults, and what it records: every request with
// its entry node, times and outcome, and the register operations as a history for the
// linearizability checker.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster_procs.h"
#include "linearizability.h"

namespace waverless::faults {

enum class ReqKind { kWordCount, kLongchain, kGet, kSet, kCas, kIncr };
const char* kindName(ReqKind k);
constexpr int kKinds = 6;

struct RequestRecord {
  ReqKind kind;
  int entry = 0;  // node id
  int64_t start_ns = 0, end_ns = 0;
  int status = 0;      // HTTP status; -1: no answer (connection refused, reset, timed out)
  bool wrong = false;  // a 200 whose answer is not the correct one
  std::string detail;  // what was wrong, or the start of a failure's body
  bool ok() const { return status == 200 && !wrong; }
};

int64_t nowNs();
// The start of an answer's body, for a one-line report.
std::string snippet(const std::string& body);

class Workload {
 public:
  Workload(std::vector<std::unique_ptr<NodeProc>>& nodes, std::string run_id, unsigned seed);
  ~Workload();
  void start(int register_clients);
  void stop();  // joins the clients

  // Final phase, on a healed cluster: reads of every hot key and counter appended to the history
  // (so lost writes show up as non-linearizable), and the marker probe of every acknowledged
  // write. Returns false if the cluster would not answer them.
  struct Probe {
    size_t acked_writes = 0;
    size_t missing_writes = 0;     // check 1: acknowledged, ev_<token> absent
    size_t committed_unacked = 0;  // writes whose request failed but whose ev_<token> exists
    size_t missing_triggers = 0;   // check 4: acknowledged or committed, done_<token> absent
    size_t counters_wrong = 0;     // check 1: a counter outside [acked sum, acked + maybe sum]
    std::vector<std::string> examples;
  };
  bool finalReads(Probe* probe);

  std::vector<RequestRecord> requests() const;
  std::vector<RegisterOp> history() const;

 private:
  void wordCountClient(unsigned seed);
  void longchainClient(unsigned seed);
  void registerClient(int client, unsigned seed);
  NodeProc& pickEntry(std::mt19937& rng);
  void record(RequestRecord r);
  void recordOp(RegisterOp op);

  std::vector<std::unique_ptr<NodeProc>>& nodes_;
  std::string run_;
  unsigned seed_;
  std::string text_, text_counts_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<RequestRecord> requests_;
  std::vector<RegisterOp> history_;
  std::vector<std::string> acked_tokens_;
  std::vector<std::string> unknown_tokens_;  // set/cas whose outcome the client never learned
  std::vector<int64_t> acked_delta_, maybe_delta_;  // per counter
};

}  // namespace waverless::faults
