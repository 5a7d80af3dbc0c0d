#include "worker/request_runner.h"

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status_map.h"
#include "worker/request_tree.h"

namespace waverless::worker {

namespace {

// A per-request limit, named as app.yaml names it.
absl::Status limitError(const std::string& req, const std::string& app, const std::string& fn,
                        const char* limit, uint64_t value, const std::string& what) {
  return absl::FailedPreconditionError(
      absl::StrCat("request ", req, " of app ", app, " exceeded limits.", limit, " (", value,
                   "): function ", fn, " ", what, "; the rest of the request was cancelled"));
}

// Entries that ran longer than this on average go to the background threads.
constexpr int64_t kHeavyEntryNs = 2'000'000;
// Error lines per app and second on stderr; the rest are counted, not printed.
constexpr uint32_t kErrorLinesPerSecond = 20;

}  // namespace

RequestRunner::RequestRunner(wasm::Engine& engine, kv::KvStore& kv, metrics::Registry& metrics,
                             AppLogs& logs)
    : engine_(engine), kv_(kv), metrics_(metrics), logs_(logs) {
  permission_denials_ = &metrics_.counter("wl_kv_permission_denied_total",
                                          "Guest KV operations refused by the kvs access list");
  deadline_cancels_ =
      &metrics_.counter("wl_request_deadline_cancels_total",
                        "Requests whose trigger tree was cancelled at the request's deadline");
  limit_failures_ =
      &metrics_.counter("wl_request_limit_failures_total",
                        "Requests failed by a per-request limit (invocations, concurrency, depth)");
  quota_rejections_ = &metrics_.counter(
      "wl_app_quota_rejections_total",
      "Requests and triggers refused because the app was over limits.app_concurrency");
}

RequestRunner::~RequestRunner() { stop(); }

absl::Status RequestRunner::start() {
  deadlines_.start();
  return absl::OkStatus();
}

void RequestRunner::stop() { deadlines_.stop(); }

void RequestRunner::logError(const Request& req, const std::string& fn, const std::string& msg) {
  int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(log_mu_);
    LogBudget& b = log_budget_[req.app->name];
    if (now_ms - b.window_start_ms >= 1000) {
      suppressed = b.suppressed;
      b = LogBudget{now_ms, 0, 0};
    }
    if (++b.lines > kErrorLinesPerSecond) {
      b.suppressed++;
      return;
    }
  }
  if (suppressed > 0) {
    fprintf(stderr, "level=warn app=%s msg=\"%llu error lines suppressed in the last second\"\n",
            req.app->name.c_str(), static_cast<unsigned long long>(suppressed));
  }
  fprintf(stderr, "level=error app=%s fn=%s req=%s msg=\"%s\"\n", req.app->name.c_str(), fn.c_str(),
          req.id.c_str(), msg.c_str());
}

RequestRunner::FnMetrics& RequestRunner::fnMetrics(const std::string& app, const std::string& fn) {
  std::lock_guard lock(metrics_mu_);
  auto a = apps_.find(std::string_view(app));
  if (a == apps_.end()) a = apps_.emplace(app, AppEntry{}).first;
  auto f = a->second.fns.find(std::string_view(fn));
  if (f == a->second.fns.end()) f = a->second.fns.emplace(fn, nullptr).first;
  auto& slot = f->second;
  if (!slot) {
    auto& load = a->second.load;
    metrics::Labels l = {{"app", app}, {"fn", fn}};
    auto with = [&](const char* k, const char* v) {
      auto x = l;
      x.emplace_back(k, v);
      return x;
    };
    slot = std::make_unique<FnMetrics>();
    slot->ok = &metrics_.counter("wl_invocations_total", "Function invocations by result",
                                 with("result", "ok"));
    slot->failed = &metrics_.counter("wl_invocations_total", "Function invocations by result",
                                     with("result", "error"));
    slot->cold =
        &metrics_.counter("wl_cold_starts_total", "Invocations that created a new instance", l);
    slot->latency = &metrics_.histogram("wl_invocation_seconds", "Function execution time", l);
    slot->load = load.get();
  }
  return *slot;
}

void RequestRunner::run(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                        std::string http_text, absl::AnyInvocable<void(RequestOutcome)> done,
                        std::shared_ptr<http::BodyStream> stream,
                        std::shared_ptr<common::CancelScope> scope) {
  std::vector<std::string> args(fn.args.size());
  if (fn.stream_body) {
    // A body that came whole (small, or forwarded by another node) is read the same way.
    if (!stream) stream = http::BodyStream::ofString(std::move(http_text));
  } else {
    // The body may be large: copied into every http_text argument but the
    // last, which takes it.
    size_t last = fn.args.size();
    for (size_t i = 0; i < fn.args.size(); ++i) {
      if (fn.args[i].kind == app::ArgSpec::Kind::kHttpText) last = i;
    }
    for (size_t i = 0; i < last; ++i) {
      if (fn.args[i].kind == app::ArgSpec::Kind::kHttpText) args[i] = http_text;
    }
    if (last < fn.args.size()) args[last] = std::move(http_text);
  }
  start(std::move(app), fn, std::move(args),
        absl::StrCat(id_prefix_, "r", absl::Hex(next_id_.fetch_add(1), absl::kZeroPad8)),
        std::move(done), std::move(stream), std::move(scope));
}

void RequestRunner::runTriggered(std::shared_ptr<const meta::DeployedApp> app,
                                 const app::FnSpec& fn, std::vector<std::string> args,
                                 std::string request_id,
                                 absl::AnyInvocable<void(RequestOutcome)> done,
                                 std::chrono::milliseconds deadline, std::string invocation_id,
                                 uint32_t depth) {
  std::string tree_id =
      !invocation_id.empty()
          ? invocation_id
          : absl::StrCat(request_id, "~", absl::Hex(next_id_.fetch_add(1), absl::kZeroPad8));
  start(std::move(app), fn, std::move(args), std::move(request_id), std::move(done), nullptr,
        nullptr, deadline, std::move(tree_id), std::move(invocation_id), depth);
}

void RequestRunner::start(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                          std::vector<std::string> args, std::string request_id,
                          absl::AnyInvocable<void(RequestOutcome)> done,
                          std::shared_ptr<http::BodyStream> body,
                          std::shared_ptr<common::CancelScope> scope,
                          std::optional<std::chrono::milliseconds> deadline, std::string tree_id,
                          std::string root_id, uint32_t depth) {
  auto req = std::make_shared<Request>();
  req->depth = depth;
  req->body = std::move(body);
  req->root_id = std::move(root_id);
  req->tree_id = tree_id.empty() ? request_id : std::move(tree_id);
  req->id = std::move(request_id);
  req->app = std::move(app);
  req->start = Clock::now();
  req->timeout = deadline.value_or(fn.timeout.value_or(std::chrono::seconds(30)));
  req->deadline = req->start + req->timeout;
  req->scope = scope ? std::move(scope) : std::make_shared<common::CancelScope>();
  req->done = std::move(done);
  inflight_++;
  if (!launch(req, nullptr, fn, std::move(args)).ok()) {
    complete(req);  // nothing started: the tree is over (the refusal answered)
  }
}

absl::StatusOr<RequestRunner::Invocation*> RequestRunner::admit(const std::shared_ptr<Request>& req,
                                                                Invocation* parent,
                                                                const app::FnSpec& fn) {
  const app::AppLimitsSpec& limits = req->app->manifest.limits;
  FnMetrics& m = fnMetrics(req->app->name, fn.name);
  Invocation* inv = nullptr;
  absl::Status refused;
  bool arm_timer = false;
  auto now = Clock::now();
  {
    std::lock_guard lock(req->mu);
    const uint32_t depth = parent == nullptr ? req->depth : parent->depth + 1;
    // Invocations so far, the entry included.
    const uint64_t launched = req->invocations.size();
    if (req->scope->cancelled()) {
      refused = req->scope->reason();  // the request is over: nothing of it starts again
    } else if (depth > limits.trigger_depth) {
      refused = limitError(req->id, req->app->name, fn.name, "trigger_depth", limits.trigger_depth,
                           absl::StrCat("would run at depth ", depth));
    } else if (parent != nullptr && launched > limits.request_invocations) {
      refused = limitError(req->id, req->app->name, fn.name, "request_invocations",
                           limits.request_invocations, "would be one invocation too many");
    } else if (parent != nullptr && req->in_flight >= limits.request_concurrency) {
      refused = limitError(req->id, req->app->name, fn.name, "request_concurrency",
                           limits.request_concurrency,
                           "was triggered while that many of the request's invocations were "
                           "queued or running");
    } else if (m.load->in_flight.load(std::memory_order_relaxed) >= limits.app_concurrency) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "app ", req->app->name, " has ", limits.app_concurrency,
          " invocations queued or running on this node (limits.app_concurrency); function ",
          fn.name, " was not started: retry later"));
      quota_rejections_->add();
    } else if (now >= req->deadline) {
      refused = absl::DeadlineExceededError(
          absl::StrCat("request ", req->id, " passed its deadline (", req->timeout.count(),
                       " ms) before function ", fn.name, " could start"));
    }
    if (refused.ok()) {
      inv = &req->invocations.emplace_back();
      inv->seq = launched;
      inv->parent = parent;
      inv->fn = &fn;
      inv->metrics = &m;
      inv->depth = depth;
      req->in_flight++;
      m.load->in_flight.fetch_add(1, std::memory_order_relaxed);
      for (Invocation* a = parent; a != nullptr; a = a->parent) a->pending++;
      // A tree that outlives its entry's call needs a timer to end it on
      // time; a lone entry is timed by the executor.
      arm_timer = parent != nullptr && !req->timer_armed;
      req->timer_armed = req->timer_armed || arm_timer;
    }
  }
  if (!refused.ok()) {
    if (refused.code() == absl::StatusCode::kFailedPrecondition) limit_failures_->add();
    fail(req, refused);
    return refused;
  }
  if (arm_timer) {
    auto id = deadlines_.schedule(req->deadline, [this, weak = std::weak_ptr<Request>(req)] {
      auto r = weak.lock();
      if (!r) return;
      std::string running;
      {
        std::lock_guard lock(r->mu);
        // The latest invocation still going: what the deadline interrupted.
        for (auto it = r->invocations.rbegin(); it != r->invocations.rend(); ++it) {
          if (!it->ended) {
            running = it->fn->name;
            break;
          }
        }
      }
      if (running.empty()) return;
      deadline_cancels_->add();
      fail(r, absl::DeadlineExceededError(absl::StrCat(
                  "request ", r->id, " of app ", r->app->name, " passed its deadline (",
                  r->timeout.count(), " ms) while function ", running,
                  " was still running or queued; the rest of the request was cancelled")));
    });
    std::lock_guard lock(req->mu);
    req->timer = id;
  }
  return inv;
}

absl::Status RequestRunner::launch(const std::shared_ptr<Request>& req, Invocation* parent,
                                   const app::FnSpec& fn, std::vector<std::string> args,
                                   std::string_view key) {
  absl::StatusOr<Invocation*> admitted = admit(req, parent, fn);
  if (!admitted.ok()) return admitted.status();
  Invocation* inv = *admitted;
  FnMetrics& m = *inv->metrics;
  auto now = Clock::now();
  auto remaining = std::chrono::ceil<std::chrono::milliseconds>(req->deadline - now);
  auto timeout = std::min(fn.timeout.value_or(std::chrono::seconds(30)), remaining);
  if (cluster_ != nullptr && parent != nullptr) {
    if (auto node = cluster_->placeTrigger(*req->app, fn, key)) {
      // Runs there with everything it triggers; we learn only the outcome.
      RemoteTask task{req->app->name, fn.name, std::move(args),
                      static_cast<uint32_t>(timeout.count()), req->id};
      auto started = Clock::now();
      cluster_->invokeRemote(*node, std::move(task), [this, req, inv, started](absl::Status st) {
        wasm::InvocationResult r;
        r.status = std::move(st);
        r.duration = Clock::now() - started;
        onDone(req, inv, std::move(r), /*ran_here=*/false);
      });
      return absl::OkStatus();
    }
  }
  std::unique_ptr<wasm::HostServices> host = makeHost(req, inv);
  wasm::InvocationRequest ir;
  ir.function = fn.name;
  ir.args = std::move(args);
  ir.host = host.get();
  ir.timeout = timeout;
  ir.files_dir = req->app->files_dir;
  ir.cancel = req->scope;
  ir.fresh_instance = fn.fresh_instance;
  // The entry runs where its HTTP request arrived, unless it is known to
  // compute for long; what it triggers waits its app's turn on the
  // background threads. A durable trigger's run (root_id) is triggered work too, and must never
  // run inline on the thread of the host call that fired it.
  ir.background = parent != nullptr || !req->root_id.empty() ||
                  m.avg_ns.load(std::memory_order_relaxed) > kHeavyEntryNs;
  ir.run_on_caller_thread = !ir.background;
  engine_.invoke(req->app->module, std::move(ir),
                 [this, req, inv, host = std::move(host)](wasm::InvocationResult r) mutable {
                   host.reset();
                   onDone(req, inv, std::move(r));
                 });
  return absl::OkStatus();
}

void RequestRunner::onDone(const std::shared_ptr<Request>& req, Invocation* inv,
                           wasm::InvocationResult r, bool ran_here) {
  FnMetrics& m = *inv->metrics;
  if (ran_here) {
    (r.status.ok() ? m.ok : m.failed)->add();
    if (r.cold_start) m.cold->add();
    m.latency->observe(std::chrono::duration<double>(r.duration).count());
    // CPU time, not wall time: a function that mostly waits (for its body,
    // or for what it triggered) is no burden to its thread.
    int64_t avg = m.avg_ns.load(std::memory_order_relaxed);
    m.avg_ns.store(avg + (r.run_time.count() - avg) / 8, std::memory_order_relaxed);
  }
  m.load->in_flight.fetch_sub(1, std::memory_order_relaxed);
  // After the request ended, its invocations fail because they were
  // cancelled: that is no news, and a flood of it must not reach the logs.
  const bool cancelled = req->scope->cancelled();
  if (!r.log.empty() || (!r.status.ok() && !cancelled)) {
    std::string text = r.log;
    if (!r.status.ok()) text += "error: " + std::string(r.status.message()) + "\n";
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    logs_.append(req->app->name, {now_ms, req->id, inv->fn->name, std::move(text)});
  }
  if (!r.status.ok() && !cancelled) logError(*req, inv->fn->name, std::string(r.status.message()));

  const bool root = inv->parent == nullptr;
  // Ends the request now (answer, cancel the rest): the entry failed, or a
  // triggered function ran out of the request's time.
  absl::Status end_now;
  if (!r.status.ok() && !cancelled) {
    if (root) {
      end_now = r.status;
    } else if (r.status.code() == absl::StatusCode::kDeadlineExceeded &&
               Clock::now() >= req->deadline) {
      end_now = absl::DeadlineExceededError(
          absl::StrCat("request ", req->id, " of app ", req->app->name, " passed its deadline (",
                       req->timeout.count(), " ms) while function ", inv->fn->name,
                       " was still running; the rest of the request was cancelled"));
    }
  }

  std::vector<wasm::Resumer> wake;
  bool finish = false;
  {
    std::lock_guard lock(req->mu);
    inv->ended = true;
    req->in_flight--;
    if (!r.status.ok() && !root) {
      if (req->first_failure.ok()) req->first_failure = r.status;
      for (Invocation* a = inv->parent; a != nullptr; a = a->parent) a->descendant_failed = true;
    }
    for (Invocation* a = inv->parent; a != nullptr; a = a->parent) {
      if (--a->pending == 0) {
        for (auto& w : a->waiters) wake.push_back(std::move(w));
        a->waiters.clear();
      }
    }
    if (root) {
      req->root_done = true;
      req->root_result = std::move(r);
    }
    Invocation& entry = req->invocations.front();
    if (req->root_done && entry.pending == 0 && !req->finished) {
      req->finished = true;
      finish = true;
    }
  }
  for (auto& w : wake) w.resume(absl::OkStatus());
  if (!end_now.ok()) fail(req, std::move(end_now));
  if (finish) complete(req);
}

void RequestRunner::fail(const std::shared_ptr<Request>& req, absl::Status why) {
  req->scope->cancel(std::move(why));
  // The first reason wins: a client that went away before the deadline.
  absl::Status reason = req->scope->reason();
  RequestOutcome out;
  out.request_id = req->id;
  out.http_status = common::httpStatus(reason);
  out.body = std::string(reason.message()) + "\n";
  if (reason.code() == absl::StatusCode::kResourceExhausted) out.retry_after_s = 1;
  out.status = std::move(reason);
  answer(req, std::move(out));
}

void RequestRunner::answer(const std::shared_ptr<Request>& req, RequestOutcome out) {
  if (req->answered.exchange(true, std::memory_order_acq_rel)) return;
  auto done = std::move(req->done);
  done(std::move(out));
}

// The whole tree has ended (or never started): answers unless an early end
// did already.
void RequestRunner::complete(const std::shared_ptr<Request>& req) {
  // Only launch() sets the timer, and nothing launches once the tree is
  // over; reading it needs the lock only when one was armed.
  if (req->timer_armed) {
    common::TimerQueue::TimerId timer;
    {
      std::lock_guard lock(req->mu);
      timer = req->timer;
    }
    if (timer != 0) deadlines_.cancel(timer);
  }
  RequestOutcome out;
  out.request_id = req->id;
  const absl::Status& root = req->root_result.status;
  if (!root.ok()) {
    out.status = root;
    out.http_status = common::httpStatus(root);
    out.body = std::string(root.message()) + "\n";
  } else if (!req->first_failure.ok()) {
    // The entry succeeded but something it triggered did not.
    out.status = req->first_failure;
    out.http_status = common::httpStatus(req->first_failure);
    out.body = std::string(req->first_failure.message()) + "\n";
  } else {
    out.body = std::move(req->root_result.output);
  }
  inflight_--;
  answer(req, std::move(out));
}

}  // namespace waverless::worker
