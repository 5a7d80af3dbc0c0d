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
      st = awaitReply<absl::Status>(fiber, [&](auto reply) {
        kv->set(req_->app->name, std::string(key), std::string(value), std::move(reply));
      });
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
      if (absl::Status t = trigger(k); !t.ok()) return t;
    }
    return absl::OkStatus();
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
    return awaitReply<absl::Status>(fiber, [&](auto reply) {
      runner_->cluster_kv_->setBatch(req_->app->name, kvs, std::move(reply));
    });
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
      std::vector<std::string> args;
      for (const auto& a : fn->args) {
        args.push_back(a.kind == app::ArgSpec::Kind::kKvKey ? std::string(key) : std::string());
      }
      if (absl::Status st = runner_->launch(req_, inv_, *fn, std::move(args), key); !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
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
