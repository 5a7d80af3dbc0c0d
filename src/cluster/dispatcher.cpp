#include "cluster/dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cluster/membership.h"
#include "cluster/peers.h"
#include "cluster/trigger_log.h"
#include "common/status_map.h"
#include "meta/app_registry.h"
#include "worker/cluster_kv.h"
#include "worker/request_runner.h"

namespace waverless::cluster {

namespace pb = net::pb;
using std::chrono::milliseconds;

namespace {

worker::RequestOutcome unavailable(std::string message) {
  worker::RequestOutcome o;
  o.status = absl::UnavailableError(std::move(message));
  o.http_status = common::httpStatus(o.status);
  o.body = std::string(o.status.message()) + "\n";
  return o;
}

}  // namespace

Dispatcher::Dispatcher(uint32_t self, DispatcherDeps deps)
    : self_(self),
      self_worker_(deps.config.find(self) != nullptr && deps.config.find(self)->worker),
      id_prefix_(absl::StrCat(self, "-",
                              absl::Hex(std::chrono::duration_cast<milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()),
                              "-")),
      deps_(deps),
      rng_(self * 7919u) {}

sched::Policy Dispatcher::policyFor(const meta::DeployedApp& app) const {
  auto p = sched::parsePolicy(app.manifest.scheduler.value_or(deps_.config.scheduler));
  return p.ok() ? *p : sched::Policy::kDataAware;
}

std::vector<sched::WorkerInfo> Dispatcher::workers() const {
  std::vector<sched::WorkerInfo> out = deps_.membership.view()->workers();
  if (deps_.local_load) {
    for (auto& w : out) {
      if (w.id.value == self_) w.load = deps_.local_load();
    }
  }
  return out;
}

uint64_t Dispatcher::random() {
  std::lock_guard lock(rng_mu_);
  return rng_();
}

std::optional<uint32_t> Dispatcher::placeTrigger(const meta::DeployedApp& app,
                                                 const app::FnSpec& fn, std::string_view key) {
  // A key this node alone stores (durability: local) is read by its trigger here, whatever the
  // app's scheduler: nowhere else has it.
  if (deps_.kv.storedHere(app.name, key)) return std::nullopt;
  auto workers = this->workers();
  sched::PlacementRequest req;
  req.app = app.name;
  req.function = fn.name;
  req.key = key;
  req.data_node = sched::NodeId{deps_.kv.dataNode(app.name, key)};
  if (self_worker_) req.local = sched::NodeId{self_};
  req.random = random();
  auto node = sched::makeScheduler(policyFor(app))->place(req, workers);
  if (!node.ok() || node->value == self_) return std::nullopt;
  return node->value;
}

void Dispatcher::invokeRemote(uint32_t node, worker::RemoteTask task,
                              absl::AnyInvocable<void(absl::Status)> done) {
  net::PeerClient* p = deps_.peers.get(node);
  if (p == nullptr) {
    done(absl::InternalError(absl::StrCat("no peer ", node)));
    return;
  }
  pb::Envelope e;
  auto* t = e.mutable_invoke();
  t->set_app(task.app);
  t->set_function(task.function);
  for (auto& a : task.args) t->add_args(std::move(a));
  t->set_timeout_ms(task.timeout_ms);
  t->set_request_id(task.request_id);
  std::string fn = task.function;
  p->call(std::move(e), milliseconds(task.timeout_ms) + std::chrono::seconds(5),
          [done = std::move(done), node, fn](absl::StatusOr<pb::Envelope> r) mutable {
            if (!r.ok()) {
              done(absl::UnavailableError(
                  absl::StrCat("function ", fn, " on node ", node, ": ", r.status().message())));
              return;
            }
            done(common::fromWire(r->done().code(), r->done().message()));
          });
}

void Dispatcher::runDurable(std::shared_ptr<const meta::DeployedApp> app,
                            worker::TriggerRecord record,
                            absl::AnyInvocable<void(absl::Status)> done) {
  deps_.triggers.runDurable(std::move(app), std::move(record), std::move(done));
}

void Dispatcher::serveInvoke(const pb::Envelope& req, net::Reply reply) {
  uint64_t id = req.id();
  auto fail = [&](absl::Status st) {
    pb::Envelope out;
    out.set_id(id);
    out.mutable_done()->set_code(common::toWire(st));
    out.mutable_done()->set_message(std::string(st.message()));
    out.mutable_done()->set_http_status(common::httpStatus(st));
    reply(std::move(out));
  };
  if (!req.has_invoke()) {
    // Every request is answered: the caller would otherwise wait out its deadline.
    fail(absl::InvalidArgumentError("peer message is neither an invoke task nor a KV request"));
    return;
  }
  const auto& task = req.invoke();
  auto app = deps_.registry.find(task.app());
  if (!app) {
    fail(absl::NotFoundError(absl::StrCat("no app named '", task.app(), "' on node ", self_)));
    return;
  }
  const app::FnSpec* fn = app->manifest.find(task.function());
  if (fn == nullptr) {
    fail(absl::NotFoundError(
        absl::StrCat("app ", task.app(), " has no function ", task.function())));
    return;
  }
  auto respond = [id, reply = std::move(reply)](worker::RequestOutcome o) mutable {
    pb::Envelope out;
    out.set_id(id);
    auto* d = out.mutable_done();
    d->set_code(common::toWire(o.status));
    d->set_message(std::string(o.status.message()));
    d->set_http_status(o.http_status);
    d->set_output(std::move(o.body));
    d->set_request_id(o.request_id);
    reply(std::move(out));
  };
  if (task.entry()) {
    deps_.runner.run(app, *fn, task.http_text(), std::move(respond));
  } else if (!task.invocation_id().empty()) {
    // A durable trigger: run once here whoever delivers it, then its record is retired.
    shard::TriggerRecord record{task.invocation_id(), task.app(),    task.function(),
                                task.key(),           task.origin(), task.request_id(),
                                task.timeout_ms(),    task.depth()};
    deps_.triggers.serve(std::move(app), *fn, std::move(record), std::move(respond));
  } else {
    std::vector<std::string> args(task.args().begin(), task.args().end());
    // What is left of the triggering request's deadline, not a fresh one.
    deps_.runner.runTriggered(app, *fn, std::move(args), task.request_id(), std::move(respond),
                              std::chrono::milliseconds(task.timeout_ms()));
  }
}

void Dispatcher::dispatch(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                          std::string body, absl::AnyInvocable<void(worker::RequestOutcome)> done,
                          std::shared_ptr<common::CancelScope> cancel) {
  dispatchTo(std::move(app), &fn, std::move(body), {}, std::move(done), nullptr, std::move(cancel));
}

void Dispatcher::dispatchStream(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec& fn,
                                std::shared_ptr<http::BodyStream> body,
                                absl::AnyInvocable<void(worker::RequestOutcome)> done,
                                std::shared_ptr<common::CancelScope> cancel) {
  dispatchTo(std::move(app), &fn, "", {}, std::move(done), std::move(body), std::move(cancel));
}

void Dispatcher::dispatchTo(std::shared_ptr<const meta::DeployedApp> app, const app::FnSpec* fn,
                            std::string body, std::vector<uint32_t> excluded,
                            absl::AnyInvocable<void(worker::RequestOutcome)> done,
                            std::shared_ptr<http::BodyStream> stream,
                            std::shared_ptr<common::CancelScope> cancel) {
  auto workers = this->workers();
  for (auto& w : workers) {
    if (std::find(excluded.begin(), excluded.end(), w.id.value) != excluded.end()) w.alive = false;
  }
  sched::PlacementRequest req;
  req.app = app->name;
  req.function = fn->name;
  if (self_worker_) req.local = sched::NodeId{self_};
  req.random = random();
  auto node = sched::makeScheduler(policyFor(*app))->place(req, workers);
  if (!node.ok()) {
    done(unavailable("no live worker can run " + app->name + ": " +
                     std::string(node.status().message())));
    return;
  }
  if (node->value == self_) {
    deps_.runner.run(std::move(app), *fn, std::move(body), std::move(done), std::move(stream),
                     std::move(cancel));
    return;
  }
  if (stream) {
    // Another node runs it: the body crosses whole, once it is all here.
    http::BodyStream::readAll(
        std::move(stream), [this, app = std::move(app), fn, excluded = std::move(excluded),
                            done = std::move(done)](absl::StatusOr<std::string> got) mutable {
          if (!got.ok()) {
            worker::RequestOutcome o;
            o.status = got.status();
            o.http_status = common::httpStatus(o.status);
            o.body = std::string(o.status.message()) + "\n";
            done(std::move(o));
            return;
          }
          dispatchTo(std::move(app), fn, *std::move(got), std::move(excluded), std::move(done));
        });
    return;
  }
  pb::Envelope e;
  auto* t = e.mutable_invoke();
  t->set_app(app->name);
  t->set_function(fn->name);
  t->set_entry(true);
  t->set_http_text(body);
  auto timeout = fn->timeout.value_or(std::chrono::seconds(30));
  t->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  uint32_t target = node->value;
  deps_.peers.get(target)->call(
      std::move(e), timeout + std::chrono::seconds(5),
      [this, app, fn, body = std::move(body), excluded = std::move(excluded), target,
       done = std::move(done)](absl::StatusOr<pb::Envelope> r) mutable {
        if (r.ok()) {
          worker::RequestOutcome o;
          o.status = common::fromWire(r->done().code(), r->done().message());
          o.http_status = r->done().http_status();
          o.body = std::move(*r->mutable_done()->mutable_output());
          o.request_id = r->done().request_id();
          done(std::move(o));
          return;
        }
        // The node was lost mid-request (the call itself failed, never the
        // function: its failure is a reply). Only an idempotent function
        // may run again elsewhere: anything else may have had effects.
        excluded.push_back(target);
        if (fn->idempotent && excluded.size() < 3) {
          dispatchTo(app, fn, std::move(body), std::move(excluded), std::move(done));
          return;
        }
        done(unavailable(absl::StrCat("node ", target, " failed while running ", app->name, "/",
                                      fn->name, ": ", r.status().message())));
      });
}

}  // namespace waverless::cluster
