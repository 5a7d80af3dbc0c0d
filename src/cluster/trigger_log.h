// Durable triggers (docs/replication.md, "Durable triggers"): the runs of the trigger records a
// replicated kv_set commits with its value.
//
//   origin side     runDurable: the request that wrote the record waits for one run of it. It
//                   runs on its group's leader, whatever the app's scheduler (the value is local
//                   there, and the leader's sweeper knows what it runs), and again, with the same
//                   invocation id, on the group's next leader when the node running it is lost,
//                   until the record's timeout: the request still gets one answer.
//   executing side  serve: a record runs at most once at a time on this node; a second delivery
//                   of a running (or just finished) id waits for that run instead of starting
//                   another. When the run and its whole tree have finished, the waiters get the
//                   outcome and the record is retired (kTriggerDone, proposed to its group).
//   sweeper         every sweep_every, on each group this node leads: the records nobody here
//                   runs, once seen for `grace`, run with no waiter (their origin or runner died).
//
// At-least-once: a record can run twice (its runner lost under its waiter, a leader change
// during a run, a run on a node that is not the leader outlasting the grace), never zero times
// while its group has a leader. Must not: store keys or run anything but trigger records.
//
// Threading: thread-safe. Outcomes and retries run on the peer stream's, the runner's or the
// timer thread; none blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "app/app_manifest.h"
#include "common/timer_queue.h"
#include "shard/shard_command.h"
#include "worker/cluster_kv.h"
#include "worker/request_runner.h"

namespace waverless::kv {
class KvStore;
}
namespace waverless::meta {
class AppRegistry;
struct DeployedApp;
}  // namespace waverless::meta
namespace waverless::shard {
class RaftHost;
}
namespace waverless::metrics {
class Registry;
}

namespace waverless::cluster {

class Peers;
class ShardedKv;

struct TriggerLogTiming {
  std::chrono::milliseconds sweep_every{1000};
  // How long a leader leaves a record it does not run alone before it runs it: the origin's
  // own re-placement comes first (it has a waiter).
  std::chrono::milliseconds grace{2000};
  // How long a finished run's outcome answers late deliveries of its id.
  std::chrono::milliseconds keep_finished{10000};
};

struct TriggerLogDeps {
  Peers& peers;
  meta::AppRegistry& registry;
  worker::RequestRunner& runner;
  ShardedKv& kv;          // retires records; the shard map
  kv::KvStore& store;     // the records of the groups this node leads
  shard::RaftHost* host;  // this node's groups; null: none (no sweeping)
};

class TriggerLog {
 public:
  TriggerLog(uint32_t self, TriggerLogDeps deps, TriggerLogTiming timing = {});
  ~TriggerLog();

  absl::Status start();  // the timer: retries and sweeps
  void stop();           // idempotent

  // Origin side (worker::ClusterHooks::runDurable).
  void runDurable(std::shared_ptr<const meta::DeployedApp> app, worker::TriggerRecord record,
                  absl::AnyInvocable<void(absl::Status)> done);
  // Executing side: runs record here (or attaches to its run) and answers once it has finished.
  using Answer = absl::AnyInvocable<void(worker::RequestOutcome)>;
  void serve(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
             shard::TriggerRecord record, Answer answer);

  // One sweep now (the timer's, also for tests): how many orphaned records it started.
  size_t sweep();

  struct Stats {
    uint64_t runs = 0;      // runs started here
    uint64_t attached = 0;  // deliveries of an id already running (or just run) here
    uint64_t orphans = 0;   // runs the sweeper started
    uint64_t replaced = 0;  // origin: runs placed again after their node was lost
    uint64_t retired = 0;   // records retired by runs here
  };
  Stats stats() const;
  size_t running() const;  // runs in progress here
  // wl_durable_triggers_running and wl_durable_triggers{event}.
  void registerMetrics(metrics::Registry& metrics);

 private:
  struct Run;
  struct Attempt;
  void place(std::shared_ptr<Attempt> a);
  void send(std::shared_ptr<Attempt> a, uint32_t target);
  void retry(std::shared_ptr<Attempt> a, uint32_t failed, absl::Status why);
  void runHere(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
               shard::TriggerRecord record, Answer answer, bool orphan);
  void finish(const shard::TriggerRecord& record, worker::RequestOutcome outcome);
  void retire(const shard::TriggerRecord& record);
  void scheduleSweep();
  void reportCorrupt(uint32_t group, const std::vector<std::string>& keys);

  const uint32_t self_;
  TriggerLogDeps deps_;
  const TriggerLogTiming timing_;
  common::TimerQueue timers_;
  mutable std::mutex mu_;
  std::map<std::string, Run> runs_ ABSL_GUARDED_BY(mu_);  // by invocation id
  // Records the sweeper saw pending and not running here, and since when.
  std::map<std::string, std::chrono::steady_clock::time_point> seen_ ABSL_GUARDED_BY(mu_);
  size_t orphans_running_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> reported_corrupt_ ABSL_GUARDED_BY(mu_);  // trigger record keys
  // Runs of a record that ended for want of a resource (its record left pending), by id.
  std::map<std::string, int> retried_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  bool started_ = false;
};

}  // namespace waverless::cluster
