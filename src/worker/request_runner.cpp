#include "worker/request_runner.h"

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"

namespace waverless::worker {

using Clock = std::chrono::steady_clock;

int httpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

// One invocation in a request's trigger tree.
struct RequestRunner::Invocation {
  Invocation* parent = nullptr;
  const app::FnSpec* fn = nullptr;
  int pending = 0;  // unfinished descendants
  bool descendant_failed = false;
  std::vector<wasm::Resumer> waiters;  // wl_wait_triggered callers
};

struct RequestRunner::Request {
  std::string id;
  std::shared_ptr<const meta::DeployedApp> app;
  Clock::time_point start;
  std::mutex mu;
  // Guarded by mu:
  std::deque<Invocation> invocations;  // stable addresses; [0] is the entry
  absl::AnyInvocable<void(RequestOutcome)> done;
  std::shared_ptr<http::BodyStream> body;  // for an entry declared `body: stream`
  bool root_done = false;
  wasm::InvocationResult root_result;
  absl::Status first_failure;  // first failed triggered function
  bool finished = false;
};

// What a guest's host calls reach. One per invocation.
class RequestRunner::Host : public wasm::HostServices {
 public:
  Host(RequestRunner* runner, std::shared_ptr<Request> req, Invocation* inv)
      : runner_(runner), req_(std::move(req)), inv_(inv) {}

  absl::StatusOr<std::optional<std::string>> kvGet(wasm::Fiber& fiber,
                                                   std::string_view key) override {
    if (auto st = check(app::KvOp::kGet, "get", key); !st.ok()) return st;
    if (auto owner = remoteOwner(key)) return remoteKv(fiber, *owner, app::KvOp::kGet, key, {});
    return runner_->kv_.get(req_->app->name, key);
  }

  absl::Status kvSet(wasm::Fiber& fiber, std::string_view key, std::string_view value) override {
    if (auto st = check(app::KvOp::kSet, "set", key); !st.ok()) return st;
    // Stored (and acknowledged by RocksDB's WAL) before anything it triggers
    // runs: a triggered function always finds its key.
    absl::Status st;
    if (auto owner = remoteOwner(key)) {
      st = remoteKv(fiber, *owner, app::KvOp::kSet, key, value).status();
    } else {
      st = runner_->kv_.set(req_->app->name, key, value);
    }
    if (!st.ok()) return st;
    trigger(key);
    return absl::OkStatus();
  }

  absl::Status kvSetBatch(wasm::Fiber& fiber,
                          const std::vector<std::pair<std::string, std::string>>& kvs) override {
    for (const auto& [k, v] : kvs) {
      if (auto st = check(app::KvOp::kSet, "set", k); !st.ok()) return st;
    }
    absl::Status st = storeBatch(fiber, kvs);
    if (!st.ok()) return st;
    for (const auto& [k, v] : kvs) trigger(k);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kvScan(wasm::Fiber& fiber,
                                                                          std::string_view prefix,
                                                                          size_t limit) override {
    absl::StatusOr<ClusterHooks::KvPairs> all;
    if (runner_->cluster_ != nullptr) {
      // Keys live on their owners: every owner is asked.
      all = awaitReply<absl::StatusOr<ClusterHooks::KvPairs>>(fiber, [&](auto reply) {
        runner_->cluster_->kvScanAll(req_->app->name, std::string(prefix), limit, std::move(reply));
      });
    } else {
      all = runner_->kv_.scan(req_->app->name, prefix, limit);
    }
    if (!all.ok()) return all.status();
    // Only what this function may read: other keys are not even listed.
    std::erase_if(*all, [&](const auto& kv) {
      return !req_->app->manifest.allowed(*inv_->fn, app::KvOp::kGet, kv.first);
    });
    return all;
  }

  absl::Status kvDelete(wasm::Fiber& fiber, std::string_view key) override {
    if (auto st = check(app::KvOp::kDelete, "delete", key); !st.ok()) return st;
    if (auto owner = remoteOwner(key)) {
      return remoteKv(fiber, *owner, app::KvOp::kDelete, key, {}).status();
    }
    return runner_->kv_.del(req_->app->name, key);
  }

  absl::StatusOr<size_t> bodyRead(wasm::Fiber& fiber, char* dst, size_t cap) override {
    if (inv_->parent != nullptr || !req_->body) {
      return absl::UnavailableError(absl::StrCat(
          "function ", inv_->fn->name,
          " has no request body to read: only the entry function of a request, declared with "
          "`body: stream`, has one"));
    }
    for (;;) {
      auto r = req_->body->tryRead(dst, cap);
      switch (r.kind) {
        case http::BodyStream::ReadResult::kData:
          return r.bytes;
        case http::BodyStream::ReadResult::kEnd:
          return 0;
        case http::BodyStream::ReadResult::kError:
          return r.error;
        case http::BodyStream::ReadResult::kWait:
          break;
      }
      absl::Status st = fiber.wait([body = req_->body](wasm::Resumer res) {
        body->onReadable([res] { res.resume(absl::OkStatus()); });
      });
      if (!st.ok()) return st;
    }
  }

  absl::Status waitTriggered(wasm::Fiber& fiber) override {
    {
      std::lock_guard lock(req_->mu);
      if (inv_->pending == 0) return result();
    }
    absl::Status st = fiber.wait([req = req_, inv = inv_](wasm::Resumer r) {
      std::lock_guard lock(req->mu);
      if (inv->pending == 0) {
        r.resume(absl::OkStatus());
      } else {
        inv->waiters.push_back(std::move(r));
      }
    });
    if (!st.ok()) return st;
    std::lock_guard lock(req_->mu);
    return result();
  }

 private:
  std::optional<uint32_t> remoteOwner(std::string_view key) {
    if (runner_->cluster_ == nullptr) return std::nullopt;
    return runner_->cluster_->keyOwner(req_->app->name, key);
  }

  // On one node atomically; in a cluster, atomically per owning node (the
  // groups are stored one after the other: no transaction spans nodes).
  absl::Status storeBatch(wasm::Fiber& fiber,
                          const std::vector<std::pair<std::string, std::string>>& kvs) {
    if (runner_->cluster_ == nullptr) return runner_->kv_.setBatch(req_->app->name, kvs);
    std::map<uint32_t, ClusterHooks::KvPairs> by_owner;  // 0: this node (ids start at 1)
    for (const auto& kv : kvs) by_owner[remoteOwner(kv.first).value_or(0)].push_back(kv);
    for (auto& [node, pairs] : by_owner) {
      absl::Status st;
      if (node == 0) {
        st = runner_->kv_.setBatch(req_->app->name, pairs);
      } else {
        st = awaitReply<absl::Status>(fiber, [&](auto reply) {
          runner_->cluster_->kvSetBatchRemote(node, req_->app->name, std::move(pairs),
                                              std::move(reply));
        });
      }
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // Parks the fiber until the callback handed to `start` delivers a Result
  // (an absl::Status or StatusOr). The reply may come after a timeout ended
  // this call, so it lands in shared state, never on the fiber's stack.
  template <class Result, class Start>
  static Result awaitReply(wasm::Fiber& fiber, Start start) {
    auto slot = std::make_shared<Result>(absl::UnavailableError("no reply"));
    absl::Status st = fiber.wait([&start, slot](wasm::Resumer r) {
      start([slot, r](Result got) {
        *slot = std::move(got);
        r.resume(absl::OkStatus());
      });
    });
    if (!st.ok()) return st;
    return std::move(*slot);
  }

  // A KV operation on another node; the fiber parks until the reply.
  absl::StatusOr<std::optional<std::string>> remoteKv(wasm::Fiber& fiber, uint32_t node,
                                                      app::KvOp op, std::string_view key,
                                                      std::string_view value) {
    return awaitReply<absl::StatusOr<std::optional<std::string>>>(fiber, [&](auto reply) {
      runner_->cluster_->kvRemote(node, op, req_->app->name, std::string(key), std::string(value),
                                  std::move(reply));
    });
  }

  void trigger(std::string_view key) {
    for (const auto& [fn, index] : req_->app->manifest.triggeredBy(key)) {
      std::vector<std::string> args;
      for (const auto& a : fn->args) {
        args.push_back(a.kind == app::ArgSpec::Kind::kKvKey ? std::string(key) : std::string());
      }
      runner_->launch(req_, inv_, *fn, std::move(args), key);
    }
  }

  absl::Status result() const {
    return inv_->descendant_failed ? absl::AbortedError("a triggered function failed")
                                   : absl::OkStatus();
  }

  absl::Status check(app::KvOp op, const char* verb, std::string_view key) {
    if (req_->app->manifest.allowed(*inv_->fn, op, key)) return absl::OkStatus();
    runner_->permission_denials_->add();
    std::string msg = absl::StrCat("function ", inv_->fn->name, " may not ", verb, " key '",
                                   std::string(key), "' (not in its kvs list)");
    fprintf(stderr, "level=warn app=%s fn=%s req=%s msg=\"%s\"\n", req_->app->name.c_str(),
            inv_->fn->name.c_str(), req_->id.c_str(), msg.c_str());
    return absl::PermissionDeniedError(msg);
  }

  RequestRunner* runner_;
  std::shared_ptr<Request> req_;
  Invocation* inv_;
};

RequestRunner::RequestRunner(wasm::Engine& engine, kv::KvStore& kv, metrics::Registry& metrics,
                             AppLogs& logs)
    : engine_(engine), kv_(kv), metrics_(metrics), logs_(logs) {
  permission_denials_ = &metrics_.counter("wl_kv_permission_denied_total",
                                          "Guest KV operations refused by the kvs access list");
}

RequestRunner::~RequestRunner() = default;

RequestRunner::FnMetrics& RequestRunner::fnMetrics(const std::string& app, const std::string& fn) {
  std::lock_guard lock(metrics_mu_);
  auto& slot = fn_metrics_[app + '\0' + fn];
  if (!slot) {
    metrics::Labels l = {{"app", app}, {"fn", fn}};
    auto with = [&](const char* k, const char* v) {
      auto x = l;
      x.emplace_back(k, v);
      return x;
    };
    slot = std::make_unique<FnMetrics>(FnMetrics{
        &metrics_.counter("wl_invocations_total", "Function invocations by result",
                          with("result", "ok")),
        &metrics_.counter("wl_invocations_total", "Function invocations by result",
                          with("result", "error")),
        &metrics_.counter("wl_cold_starts_total", "Invocations that created a new instance", l),
        &metrics_.histogram("wl_invocation_seconds", "Function execution time", l),
    });
  }
  return *slot;
}

void RequestRunner::run(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                        std::string http_text, absl::AnyInvocable<void(RequestOutcome)> done,
                        std::shared_ptr<http::BodyStream> stream) {
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
        absl::StrCat("r", absl::Hex(next_id_.fetch_add(1), absl::kZeroPad8)), std::move(done),
        std::move(stream));
}

void RequestRunner::runTriggered(std::shared_ptr<const meta::DeployedApp> app,
                                 const app::FnSpec& fn, std::vector<std::string> args,
                                 std::string request_id,
                                 absl::AnyInvocable<void(RequestOutcome)> done) {
  start(std::move(app), fn, std::move(args), std::move(request_id), std::move(done));
}

void RequestRunner::start(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                          std::vector<std::string> args, std::string request_id,
                          absl::AnyInvocable<void(RequestOutcome)> done,
                          std::shared_ptr<http::BodyStream> body) {
  auto req = std::make_shared<Request>();
  req->body = std::move(body);
  req->id = std::move(request_id);
  req->app = std::move(app);
  req->start = Clock::now();
  req->done = std::move(done);
  inflight_++;
  launch(req, nullptr, fn, std::move(args));
}

void RequestRunner::launch(const std::shared_ptr<Request>& req, Invocation* parent,
                           const app::FnSpec& fn, std::vector<std::string> args,
                           std::string_view key) {
  Invocation* inv;
  {
    std::lock_guard lock(req->mu);
    inv = &req->invocations.emplace_back();
    inv->parent = parent;
    inv->fn = &fn;
    for (Invocation* a = parent; a != nullptr; a = a->parent) a->pending++;
  }
  if (cluster_ != nullptr && parent != nullptr) {
    if (auto node = cluster_->placeTrigger(*req->app, fn, key)) {
      // Runs there with everything it triggers; we learn only the outcome.
      RemoteTask task{req->app->name, fn.name, std::move(args),
                      static_cast<uint32_t>(fn.timeout.value_or(std::chrono::seconds(30)).count()),
                      req->id};
      auto started = Clock::now();
      cluster_->invokeRemote(*node, std::move(task), [this, req, inv, started](absl::Status st) {
        wasm::InvocationResult r;
        r.status = std::move(st);
        r.duration = Clock::now() - started;
        onDone(req, inv, std::move(r), /*ran_here=*/false);
      });
      return;
    }
  }
  auto host = std::make_unique<Host>(this, req, inv);
  wasm::InvocationRequest ir;
  ir.function = fn.name;
  ir.args = std::move(args);
  ir.host = host.get();
  ir.timeout = fn.timeout.value_or(std::chrono::seconds(30));
  ir.files_dir = req->app->files_dir;
  // The entry runs where its HTTP request arrived; what it triggers spreads.
  ir.run_on_caller_thread = parent == nullptr;
  engine_.invoke(req->app->module, std::move(ir),
                 [this, req, inv, host = std::move(host)](wasm::InvocationResult r) mutable {
                   host.reset();
                   onDone(req, inv, std::move(r));
                 });
}

void RequestRunner::onDone(const std::shared_ptr<Request>& req, Invocation* inv,
                           wasm::InvocationResult r, bool ran_here) {
  if (ran_here) {
    FnMetrics& m = fnMetrics(req->app->name, inv->fn->name);
    (r.status.ok() ? m.ok : m.failed)->add();
    if (r.cold_start) m.cold->add();
    m.latency->observe(std::chrono::duration<double>(r.duration).count());
  }
  if (!r.log.empty() || !r.status.ok()) {
    std::string text = r.log;
    if (!r.status.ok()) text += "error: " + std::string(r.status.message()) + "\n";
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    logs_.append(req->app->name, {now_ms, req->id, inv->fn->name, std::move(text)});
  }
  if (!r.status.ok()) {
    fprintf(stderr, "level=error app=%s fn=%s req=%s msg=\"%s\"\n", req->app->name.c_str(),
            inv->fn->name.c_str(), req->id.c_str(), std::string(r.status.message()).c_str());
  }

  std::vector<wasm::Resumer> wake;
  bool finish = false;
  {
    std::lock_guard lock(req->mu);
    bool root = inv->parent == nullptr;
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
  if (finish) complete(req);
}

void RequestRunner::complete(const std::shared_ptr<Request>& req) {
  RequestOutcome out;
  out.request_id = req->id;
  const absl::Status& root = req->root_result.status;
  if (!root.ok()) {
    out.status = root;
    out.http_status = httpStatus(root);
    out.body = std::string(root.message()) + "\n";
  } else if (!req->first_failure.ok()) {
    // The entry succeeded but something it triggered did not.
    out.status = req->first_failure;
    out.http_status = httpStatus(req->first_failure);
    out.body = std::string(req->first_failure.message()) + "\n";
  } else {
    out.body = std::move(req->root_result.output);
  }
  auto done = std::move(req->done);
  inflight_--;
  done(std::move(out));
}

}  // namespace waverless::worker
