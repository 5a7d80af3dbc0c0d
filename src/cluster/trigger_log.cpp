#include "cluster/trigger_log.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "cluster/peers.h"
#include "cluster/sharded_kv.h"
#include "common/status_map.h"
#include "meta/app_registry.h"
#include "metrics/metrics.h"
#include "shard/raft_host.h"

namespace waverless::cluster {

namespace pb = net::pb;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kFirstBackoff{50};
constexpr milliseconds kMaxBackoff{500};
constexpr size_t kSweepBatch = 64;     // records read per led group and sweep
constexpr size_t kMaxOrphanRuns = 16;  // orphans running here at once
constexpr int kMaxRetriedRuns = 5;     // runs of one record that failed only for want of a resource
// How long a record whose app or function this node does not have waits before it is dropped.
constexpr std::chrono::seconds kDropAfter{30};

// A run that failed for want of a node, a group or a quota may succeed later: its record stays for
// the sweeper. Any other outcome is the record's answer.
bool finalOutcome(const absl::Status& s) {
  return s.code() != absl::StatusCode::kUnavailable &&
         s.code() != absl::StatusCode::kResourceExhausted;
}

}  // namespace

struct TriggerLog::Run {
  std::vector<Answer> waiters;
  bool orphan = false;
  bool finished = false;
  worker::RequestOutcome outcome;
  Clock::time_point finished_at;
};

struct TriggerLog::Attempt {
  std::shared_ptr<const meta::DeployedApp> app;
  const app::FnSpec* fn = nullptr;
  worker::TriggerRecord record;
  absl::AnyInvocable<void(absl::Status)> done;
  Clock::time_point deadline;
  milliseconds backoff = kFirstBackoff;
  uint32_t lost = 0;  // the node the last attempt lost
  uint32_t attempts = 0;
  absl::Status last_error;
};

TriggerLog::TriggerLog(uint32_t self, TriggerLogDeps deps, TriggerLogTiming timing)
    : self_(self), deps_(std::move(deps)), timing_(timing) {}

TriggerLog::~TriggerLog() { stop(); }

absl::Status TriggerLog::start() {
  timers_.start();
  started_ = true;
  if (deps_.host != nullptr) scheduleSweep();
  return absl::OkStatus();
}

void TriggerLog::stop() {
  if (!started_) return;
  started_ = false;
  timers_.stop();
}

TriggerLog::Stats TriggerLog::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t TriggerLog::running() const {
  std::lock_guard lock(mu_);
  return std::count_if(runs_.begin(), runs_.end(),
                       [](const auto& r) { return !r.second.finished; });
}

void TriggerLog::registerMetrics(metrics::Registry& metrics) {
  metrics.gauge("wl_durable_triggers_running", "Durable trigger runs in progress on this node",
                [this] { return double(running()); });
  metrics.gauges("wl_durable_triggers", "Durable trigger events on this node since start", [this] {
    Stats s = stats();
    return metrics::Registry::Samples{{{{"event", "run"}}, double(s.runs)},
                                      {{{"event", "attached"}}, double(s.attached)},
                                      {{{"event", "orphan"}}, double(s.orphans)},
                                      {{{"event", "replaced"}}, double(s.replaced)},
                                      {{{"event", "retired"}}, double(s.retired)}};
  });
}

// ---- Origin side ----

void TriggerLog::runDurable(std::shared_ptr<const meta::DeployedApp> app,
                            worker::TriggerRecord record,
                            absl::AnyInvocable<void(absl::Status)> done) {
  auto a = std::make_shared<Attempt>();
  a->fn = app->manifest.find(record.function);
  if (a->fn == nullptr) {
    return done(
        absl::InternalError(absl::StrCat("app ", app->name, " has no function ", record.function)));
  }
  a->app = std::move(app);
  a->deadline = Clock::now() + milliseconds(record.timeout_ms);
  a->record = std::move(record);
  a->done = std::move(done);
  place(std::move(a));
}

void TriggerLog::place(std::shared_ptr<Attempt> a) {
  const auto now = Clock::now();
  if (now >= a->deadline) {
    return a->done(absl::UnavailableError(absl::StrCat(
        "function ", a->fn->name, " (invocation ", a->record.id,
        "): no node could run it before its deadline; last: ", a->last_error.message())));
  }
  if (a->lost == 0) return send(std::move(a), deps_.kv.dataNode(a->app->name, a->record.key));
  // The node running it was lost, and this node's view of the group may still name it (no
  // election yet): a read of the key is routed to whoever leads the group now, and teaches it.
  const uint32_t group = deps_.kv.groupOf(a->app->name, a->record.key);
  deps_.kv.replicated().get(
      a->app->name, a->record.key, std::min(a->deadline, now + std::chrono::seconds(5)),
      [this, a, group](absl::StatusOr<std::optional<std::string>> r) mutable {
        const uint32_t leader = deps_.kv.replicated().leaderHint(group);
        if (!r.ok() || leader == 0) {
          a->last_error = r.ok() ? absl::UnavailableError("no leader") : r.status();
          auto at = std::min(Clock::now() + a->backoff, a->deadline);
          a->backoff = std::min(a->backoff * 2, kMaxBackoff);
          timers_.schedule(at, [this, a]() mutable { place(std::move(a)); });
          return;
        }
        send(std::move(a), leader);
      });
}

void TriggerLog::send(std::shared_ptr<Attempt> a, uint32_t target) {
  ++a->attempts;
  if (target == self_) {
    return serve(a->app, *a->fn, deps_.kv.recordOf(a->app->name, a->record),
                 [a](worker::RequestOutcome o) { a->done(std::move(o.status)); });
  }
  net::PeerClient* peer = deps_.peers.get(target);
  if (peer == nullptr) {
    return retry(std::move(a), target, absl::UnavailableError(absl::StrCat("no peer ", target)));
  }
  auto left =
      std::max(milliseconds(1), std::chrono::ceil<milliseconds>(a->deadline - Clock::now()));
  pb::Envelope e;
  auto* t = e.mutable_invoke();
  t->set_app(a->app->name);
  t->set_function(a->fn->name);
  for (auto& arg : worker::triggerArgs(*a->fn, a->record.key)) t->add_args(std::move(arg));
  t->set_timeout_ms(static_cast<uint32_t>(left.count()));
  t->set_request_id(a->record.request_id);
  t->set_invocation_id(a->record.id);
  t->set_key(a->record.key);
  t->set_origin(self_);
  t->set_depth(a->record.depth);
  peer->call(std::move(e), left + std::chrono::seconds(5),
             [this, a, target](absl::StatusOr<pb::Envelope> r) mutable {
               // The call failed, not the function (its failure is a reply): the node was lost.
               if (!r.ok()) return retry(std::move(a), target, r.status());
               a->done(common::fromWire(r->done().code(), r->done().message()));
             });
}

void TriggerLog::retry(std::shared_ptr<Attempt> a, uint32_t failed, absl::Status why) {
  fprintf(stderr,
          "level=warn app=%s fn=%s req=%s msg=\"durable trigger %s: node %u lost (%s); placing "
          "it again\"\n",
          a->app->name.c_str(), a->fn->name.c_str(), a->record.request_id.c_str(),
          a->record.id.c_str(), failed, std::string(why.message()).c_str());
  {
    std::lock_guard lock(mu_);
    stats_.replaced++;
  }
  a->lost = failed;
  a->last_error = absl::UnavailableError(absl::StrCat("node ", failed, ": ", why.message()));
  auto at = std::min(Clock::now() + a->backoff, a->deadline);
  a->backoff = std::min(a->backoff * 2, kMaxBackoff);
  timers_.schedule(at, [this, a]() mutable { place(std::move(a)); });
}

// ---- Executing side ----

void TriggerLog::serve(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                       shard::TriggerRecord record, Answer answer) {
  runHere(std::move(app), fn, std::move(record), std::move(answer), /*orphan=*/false);
}

void TriggerLog::runHere(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                         shard::TriggerRecord record, Answer answer, bool orphan) {
  {
    std::unique_lock lock(mu_);
    auto [it, fresh] = runs_.try_emplace(record.id);
    Run& run = it->second;
    if (!fresh) {
      stats_.attached++;
      if (orphan) orphans_running_--;  // reserved by the sweeper, not needed
      if (!run.finished) {
        if (answer) run.waiters.push_back(std::move(answer));
        return;
      }
      worker::RequestOutcome o = run.outcome;
      lock.unlock();
      if (answer) answer(std::move(o));
      return;
    }
    if (answer) run.waiters.push_back(std::move(answer));
    run.orphan = orphan;
    stats_.runs++;
    if (orphan) stats_.orphans++;
    seen_.erase(record.id);
  }
  std::vector<std::string> args = worker::triggerArgs(fn, record.key);
  std::string request_id = record.request_id;
  std::string id = record.id;
  const milliseconds timeout(record.timeout_ms);
  const uint32_t depth = record.depth;
  deps_.runner.runTriggered(
      std::move(app), fn, std::move(args), std::move(request_id),
      [this, record = std::move(record)](worker::RequestOutcome o) {
        finish(record, std::move(o));
      },
      timeout, std::move(id), depth);
}

void TriggerLog::finish(const shard::TriggerRecord& record, worker::RequestOutcome outcome) {
  const bool final = finalOutcome(outcome.status);
  std::vector<Answer> waiters;
  bool give_up = false;
  {
    std::lock_guard lock(mu_);
    Run& run = runs_[record.id];
    waiters = std::move(run.waiters);
    run.waiters.clear();
    if (run.orphan) orphans_running_--;
    if (final) {
      run.finished = true;
      run.outcome = outcome;
      run.finished_at = Clock::now();
      retried_.erase(record.id);
    } else {
      // The record stays pending: the sweeper runs it again, a few times at most.
      runs_.erase(record.id);
      give_up = ++retried_[record.id] >= kMaxRetriedRuns;
      if (give_up) retried_.erase(record.id);
    }
  }
  for (Answer& w : waiters) w(outcome);
  if (!final && !give_up) return;
  if (give_up) {
    fprintf(stderr,
            "level=error app=%s fn=%s req=%s msg=\"durable trigger %s failed %d times (last: %s); "
            "its record is retired\"\n",
            record.app.c_str(), record.function.c_str(), record.request_id.c_str(),
            record.id.c_str(), kMaxRetriedRuns, std::string(outcome.status.message()).c_str());
  }
  retire(record);
}

void TriggerLog::retire(const shard::TriggerRecord& record) {
  deps_.kv.retireTrigger(record, [this, record](absl::Status s) {
    if (!s.ok()) {
      // It stays pending: a leader's sweeper runs it again (at least once, not exactly once).
      fprintf(stderr,
              "level=warn app=%s msg=\"durable trigger %s ran but its record could not be "
              "retired: %s\"\n",
              record.app.c_str(), record.id.c_str(), std::string(s.message()).c_str());
      return;
    }
    std::lock_guard lock(mu_);
    stats_.retired++;
  });
}

// ---- Sweeper ----

void TriggerLog::scheduleSweep() {
  timers_.schedule(Clock::now() + timing_.sweep_every, [this] {
    sweep();
    scheduleSweep();
  });
}

// Said once per record: the sweep runs every second and the record stays until someone repairs
// the store.
void TriggerLog::reportCorrupt(uint32_t group, const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  for (const std::string& k : keys) {
    if (!reported_corrupt_.insert(k).second) continue;
    fprintf(stderr,
            "level=error group=%u msg=\"trigger record %s does not decode (a corrupt store): "
            "skipped; the group's other records still run\"\n",
            group, k.c_str());
  }
}

size_t TriggerLog::sweep() {
  if (deps_.host == nullptr) return 0;
  const auto now = Clock::now();
  std::shared_ptr<const shard::ShardMap> map = deps_.kv.replicated().map();
  std::vector<shard::TriggerRecord> pending;
  for (uint32_t g : map->groupsOn(self_)) {
    if (!deps_.host->leads(g)) continue;
    std::vector<std::string> corrupt;
    auto records = shard::pendingTriggers(deps_.store, g, kSweepBatch, &corrupt);
    reportCorrupt(g, corrupt);
    if (!records.ok()) {
      fprintf(stderr, "level=error msg=\"trigger sweep of group %u: %s\"\n", g,
              std::string(records.status().message()).c_str());
      continue;
    }
    for (auto& r : *records) pending.push_back(std::move(r));
  }
  std::vector<std::pair<shard::TriggerRecord, Clock::time_point>> orphans;  // and first seen
  {
    std::lock_guard lock(mu_);
    std::erase_if(runs_, [&](const auto& kv) {
      return kv.second.finished && now - kv.second.finished_at >= timing_.keep_finished;
    });
    std::set<std::string> present;
    for (auto& r : pending) {
      present.insert(r.id);
      if (runs_.contains(r.id)) continue;
      auto [it, fresh] = seen_.try_emplace(r.id, now);
      if (now - it->second < timing_.grace || orphans_running_ >= kMaxOrphanRuns) continue;
      orphans_running_++;
      orphans.emplace_back(std::move(r), it->second);
    }
    std::erase_if(seen_, [&](const auto& kv) { return !present.contains(kv.first); });
  }
  size_t started = 0;
  for (auto& [r, first_seen] : orphans) {
    auto app = deps_.registry.find(r.app);
    const app::FnSpec* fn = app != nullptr ? app->manifest.find(r.function) : nullptr;
    if (fn == nullptr) {
      {
        std::lock_guard lock(mu_);
        orphans_running_--;
      }
      // A node that just started may not have installed the app's current version yet: only a
      // record whose app or function stays missing is dropped.
      if (now - first_seen < kDropAfter) continue;
      fprintf(stderr,
              "level=warn app=%s msg=\"durable trigger %s: the app or its function %s is gone; "
              "its record is dropped\"\n",
              r.app.c_str(), r.id.c_str(), r.function.c_str());
      retire(r);
      continue;
    }
    fprintf(stderr,
            "level=info app=%s fn=%s req=%s msg=\"durable trigger %s: no run of it is known "
            "(its origin node %llu or its runner was lost); running it here\"\n",
            r.app.c_str(), r.function.c_str(), r.request_id.c_str(), r.id.c_str(),
            static_cast<unsigned long long>(r.origin));
    // The request that wrote it is gone: its run gets the function's own time, not what was
    // left of that request's.
    r.timeout_ms = static_cast<uint32_t>(fn->timeout.value_or(std::chrono::seconds(30)).count());
    runHere(std::move(app), *fn, std::move(r), nullptr, /*orphan=*/true);
    ++started;
  }
  return started;
}

}  // namespace waverless::cluster
