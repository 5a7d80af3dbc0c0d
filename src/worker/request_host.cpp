// The HostServices a guest's host calls reach: KV access checks, triggers,
// wait_triggered and body reads, for one invocation of a request's tree.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kv/kv_store.h"
#include "worker/request_tree.h"

namespace waverless::worker {

// What a guest's host calls reach. One per invocation.
class RequestRunner::Host : public wasm::HostServices {
 public:
  Host(RequestRunner* runner, std::shared_ptr<Request> req, Invocation* inv)
      : runner_(runner), req_(std::move(req)), inv_(inv) {}

  absl::StatusOr<std::optional<std::string>> kvGet(wasm::Fiber& fiber,
                                                   std::string_view key) override {
    if (auto st = check(app::KvOp::kGet, "get", key); !st.ok()) return st;
    if (ClusterKv* kv = elsewhere(key)) {
      return awaitReply<absl::StatusOr<std::optional<std::string>>>(
          fiber, [&](auto reply) { kv->get(req_->app->name, std::string(key), std::move(reply)); });
    }
    return runner_->kv_.get(req_->app->name, key);
  }

  absl::Status kvSet(wasm::Fiber& fiber, std::string_view key, std::string_view value) override {
    if (auto st = check(app::KvOp::kSet, "set", key); !st.ok()) return st;
    // Stored (and acknowledged by RocksDB's WAL) before anything it triggers
    // runs: a triggered function always finds its key.
    absl::Status st;
    if (ClusterKv* kv = elsewhere(key)) {
      // A replicated key: its triggers are durable, committed with the value.
      auto fired = runner_->admitTriggered(req_, inv_, key);
      if (!fired.ok()) return fired.status();
      st = awaitReply<absl::Status>(fiber, [&](auto reply) {
        kv->set(req_->app->name, std::string(key), std::string(value), records(*fired),
                std::move(reply));
      });
      runner_->startTriggered(req_, *std::move(fired), st.ok());
      return st;
    } else {
      st = runner_->kv_.set(req_->app->name, key, value);
    }
    if (!st.ok()) return st;
    return trigger(key);
  }

  absl::Status kvSetBatch(wasm::Fiber& fiber,
                          const std::vector<std::pair<std::string, std::string>>& kvs) override {
    for (const auto& [k, v] : kvs) {
      if (auto st = check(app::KvOp::kSet, "set", k); !st.ok()) return st;
    }
    absl::Status st = storeBatch(fiber, kvs);
    if (!st.ok()) return st;
    for (const auto& [k, v] : kvs) {
      if (elsewhere(k) != nullptr) continue;  // durable: storeBatch started them
      if (absl::Status t = trigger(k); !t.ok()) return t;
    }
    return absl::OkStatus();
  }

  // A stored cas or an incr is a write like kvSet: the same access check
  // (`set` on the key), and it triggers the key's kv_set functions.
  absl::StatusOr<bool> kvCas(wasm::Fiber& fiber, std::string_view key,
                             std::optional<std::string_view> expected,
                             std::string_view value) override {
    if (auto st = check(app::KvOp::kSet, "cas", key); !st.ok()) return st;
    absl::StatusOr<bool> stored;
    if (ClusterKv* kv = elsewhere(key)) {
      std::optional<std::string> want;
      if (expected) want.emplace(*expected);
      auto fired = runner_->admitTriggered(req_, inv_, key);
      if (!fired.ok()) return fired.status();
      stored = awaitReply<absl::StatusOr<bool>>(fiber, [&](auto reply) {
        kv->cas(req_->app->name, std::string(key), std::move(want), std::string(value),
                records(*fired), std::move(reply));
      });
      runner_->startTriggered(req_, *std::move(fired), stored.ok() && *stored);
      return stored;
    } else {
      stored = runner_->kv_.cas(req_->app->name, key, expected, value);
    }
    if (!stored.ok() || !*stored) return stored;
    if (absl::Status t = trigger(key); !t.ok()) return t;
    return true;
  }

  absl::StatusOr<int64_t> kvIncr(wasm::Fiber& fiber, std::string_view key, int64_t delta) override {
    if (auto st = check(app::KvOp::kSet, "incr", key); !st.ok()) return st;
    absl::StatusOr<int64_t> sum;
    if (ClusterKv* kv = elsewhere(key)) {
      auto fired = runner_->admitTriggered(req_, inv_, key);
      if (!fired.ok()) return fired.status();
      sum = awaitReply<absl::StatusOr<int64_t>>(fiber, [&](auto reply) {
        kv->incr(req_->app->name, std::string(key), delta, records(*fired), std::move(reply));
      });
      runner_->startTriggered(req_, *std::move(fired), sum.ok());
      return sum;
    } else {
      sum = runner_->kv_.incr(req_->app->name, key, delta);
    }
    if (!sum.ok()) return sum;
    if (absl::Status t = trigger(key); !t.ok()) return t;
    return sum;
  }

  std::string invocationId() override {
    // A durable trigger's run keeps its record's id, whichever node runs it and how often.
    if (inv_->parent == nullptr && !req_->root_id.empty()) return req_->root_id;
    return absl::StrCat(req_->tree_id, ".", inv_->seq);
  }

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kvScan(wasm::Fiber& fiber,
                                                                          std::string_view prefix,
                                                                          size_t limit) override {
    absl::StatusOr<ClusterKv::KvPairs> all;
    if (runner_->cluster_kv_ != nullptr) {
      // Keys live on their owners: every owner is asked.
      all = awaitReply<absl::StatusOr<ClusterKv::KvPairs>>(fiber, [&](auto reply) {
        runner_->cluster_kv_->scan(req_->app->name, std::string(prefix), limit, std::move(reply));
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
    if (ClusterKv* kv = elsewhere(key)) {
      return awaitReply<absl::Status>(
          fiber, [&](auto reply) { kv->del(req_->app->name, std::string(key), std::move(reply)); });
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
  // The cluster's KV when key is not kept in this node's own store alone;
  // null: this node's store has it (or there is no cluster).
  ClusterKv* elsewhere(std::string_view key) {
    ClusterKv* kv = runner_->cluster_kv_;
    return kv != nullptr && !kv->storedHere(req_->app->name, key) ? kv : nullptr;
  }

  // On one node atomically; in a cluster, atomically per owning node (the
  // groups are stored one after the other: no transaction spans nodes).
  absl::Status storeBatch(wasm::Fiber& fiber,
                          const std::vector<std::pair<std::string, std::string>>& kvs) {
    bool here = std::none_of(kvs.begin(), kvs.end(),
                             [&](const auto& kv) { return elsewhere(kv.first) != nullptr; });
    if (here) return runner_->kv_.setBatch(req_->app->name, kvs);
    // The replicated keys' triggers are durable: admitted now, committed with their groups'
    // writes, started once the batch is stored.
    std::vector<Durable> fired;
    for (const auto& [k, v] : kvs) {
      if (elsewhere(k) == nullptr) continue;
      auto more = runner_->admitTriggered(req_, inv_, k);
      if (!more.ok()) {
        runner_->startTriggered(req_, std::move(fired), /*committed=*/false);
        return more.status();
      }
      for (Durable& d : *more) fired.push_back(std::move(d));
    }
    absl::Status st = awaitReply<absl::Status>(fiber, [&](auto reply) {
      runner_->cluster_kv_->setBatch(req_->app->name, kvs, records(fired), std::move(reply));
    });
    runner_->startTriggered(req_, std::move(fired), st.ok());
    return st;
  }

  using Durable = RequestRunner::Durable;
  static TriggerRecords records(const std::vector<Durable>& fired) {
    TriggerRecords out;
    out.reserve(fired.size());
    for (const Durable& d : fired) out.push_back(d.record);
    return out;
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

  // An error: the trigger hit a limit or the request is over; the request
  // has been failed and this invocation stops when the host call returns.
  absl::Status trigger(std::string_view key) {
    for (const auto& [fn, index] : req_->app->manifest.triggeredBy(key)) {
      if (absl::Status st = runner_->launch(req_, inv_, *fn, triggerArgs(*fn, key), key);
          !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  }

  // Under req_->mu. A tree that failed because a node or a key's group could not be reached
  // failed transiently: the waiter is told so (WL_ERR_UNAVAILABLE, 503 if it passes it on)
  // rather than of a permanent failure (500).
  absl::Status result() const {
    if (!inv_->descendant_failed) return absl::OkStatus();
    if (req_->first_failure.code() == absl::StatusCode::kUnavailable) {
      return absl::UnavailableError(
          absl::StrCat("a triggered function failed: ", req_->first_failure.message()));
    }
    return absl::AbortedError("a triggered function failed");
  }

  absl::Status check(app::KvOp op, const char* verb, std::string_view key) {
    if (req_->app->manifest.allowed(*inv_->fn, op, key)) return absl::OkStatus();
    runner_->permission_denials_->add();
    std::string msg = absl::StrCat("function ", inv_->fn->name, " may not ", verb, " key '",
                                   std::string(key), "' (not in its kvs list)");
    runner_->logError(*req_, inv_->fn->name, msg);
    return absl::PermissionDeniedError(msg);
  }

  RequestRunner* runner_;
  std::shared_ptr<Request> req_;
  Invocation* inv_;
};

std::unique_ptr<wasm::HostServices> RequestRunner::makeHost(const std::shared_ptr<Request>& req,
                                                            Invocation* inv) {
  return std::make_unique<Host>(this, req, inv);
}

}  // namespace waverless::worker
