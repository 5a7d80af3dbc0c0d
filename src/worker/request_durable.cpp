// Durable triggers on the runner's side: the functions a set of a replicated key fires enter the
// request's tree, with their invocation ids, before the write is proposed (the write carries their
// records); once it has committed, the cluster runs them (ClusterHooks::runDurable) and the tree
// waits for them as for any triggered function.
#include "absl/strings/str_cat.h"
#include "worker/request_tree.h"

namespace waverless::worker {

std::vector<std::string> triggerArgs(const app::FnSpec& fn, std::string_view key) {
  std::vector<std::string> args;
  args.reserve(fn.args.size());
  for (const auto& a : fn.args) {
    args.push_back(a.kind == app::ArgSpec::Kind::kKvKey ? std::string(key) : std::string());
  }
  return args;
}

absl::StatusOr<std::vector<RequestRunner::Durable>> RequestRunner::admitTriggered(
    const std::shared_ptr<Request>& req, Invocation* parent, std::string_view key) {
  std::vector<Durable> fired;
  for (const auto& [fn, index] : req->app->manifest.triggeredBy(key)) {
    // The limits are checked before the record commits: a trigger the request may not run must
    // not be run later by a group leader either (the trigger_depth limit stops cycles).
    absl::StatusOr<Invocation*> inv = admit(req, parent, *fn);
    if (!inv.ok()) {
      startTriggered(req, std::move(fired), /*committed=*/false);
      return inv.status();
    }
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(req->deadline - Clock::now());
    auto timeout = std::max(std::chrono::milliseconds(1),
                            std::min(fn->timeout.value_or(std::chrono::seconds(30)), remaining));
    TriggerRecord record{
        absl::StrCat(req->tree_id, ".", (*inv)->seq), fn->name,     std::string(key), req->id,
        static_cast<uint32_t>(timeout.count()),       (*inv)->depth};
    fired.push_back({*inv, std::move(record)});
  }
  return fired;
}

void RequestRunner::startTriggered(const std::shared_ptr<Request>& req, std::vector<Durable> fired,
                                   bool committed) {
  for (Durable& d : fired) {
    if (!committed) {
      // The write failed, so (as far as this request knows) no record exists: the invocation
      // leaves the tree as if it had run, unseen. A write whose outcome is unknown may still have
      // committed its records; the group's leader then runs them as orphans.
      onDone(req, d.inv, wasm::InvocationResult{}, /*ran_here=*/false);
      continue;
    }
    auto started = Clock::now();
    cluster_->runDurable(req->app, std::move(d.record),
                         [this, req, inv = d.inv, started](absl::Status st) {
                           wasm::InvocationResult r;
                           r.status = std::move(st);
                           r.duration = Clock::now() - started;
                           onDone(req, inv, std::move(r), /*ran_here=*/false);
                         });
  }
}

}  // namespace waverless::worker
