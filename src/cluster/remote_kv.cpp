#include "cluster/remote_kv.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "cluster/peers.h"
#include "common/status_map.h"
#include "kv/kv_store.h"

namespace waverless::cluster {

namespace pb = net::pb;

namespace {
constexpr auto kKvTimeout = std::chrono::seconds(10);
}

RemoteKv::RemoteKv(const ClusterConfig& config, uint32_t self, Peers& peers, kv::KvStore& store)
    : self_(self), peers_(peers), store_(store) {
  for (const auto& n : config.nodes) {
    if (n.worker) workers_.push_back({sched::NodeId{n.id}, n.weight, true, 0});
  }
}

uint32_t RemoteKv::owner(std::string_view app, std::string_view key) const {
  return sched::straw2Pick(absl::StrCat(std::string(app), "/", std::string(key)), workers_).value;
}

bool RemoteKv::storedHere(std::string_view app, std::string_view key) {
  return owner(app, key) == self_;
}

uint32_t RemoteKv::dataNode(std::string_view app, std::string_view key) { return owner(app, key); }

void RemoteKv::call(uint32_t node, pb::Envelope request,
                    absl::AnyInvocable<void(absl::StatusOr<pb::KvReply>)> done) {
  net::PeerClient* p = peers_.get(node);
  if (p == nullptr) {
    done(absl::InternalError(absl::StrCat("no peer ", node)));
    return;
  }
  p->call(std::move(request), kKvTimeout,
          [done = std::move(done), node](absl::StatusOr<pb::Envelope> r) mutable {
            if (!r.ok()) {
              done(absl::UnavailableError(
                  absl::StrCat("key owner node ", node, " unreachable: ", r.status().message())));
              return;
            }
            done(std::move(*r->mutable_kv_reply()));
          });
}

void RemoteKv::single(pb::KvRequest::Op op, std::string app, std::string key, std::string value,
                      ValueDone done) {
  uint32_t node = owner(app, key);
  if (node == self_) {
    // What serve() would answer, without the round trip.
    pb::KvRequest req;
    req.set_op(op);
    req.set_app(std::move(app));
    req.set_key(std::move(key));
    req.set_value(std::move(value));
    pb::KvReply reply;
    serve(req, reply);
    if (reply.code() != 0) {
      done(common::fromWire(reply.code(), reply.message()));
    } else {
      done(reply.found() ? std::optional<std::string>(std::move(*reply.mutable_value()))
                         : std::nullopt);
    }
    return;
  }
  pb::Envelope e;
  auto* kv = e.mutable_kv();
  kv->set_op(op);
  kv->set_app(std::move(app));
  kv->set_key(std::move(key));
  kv->set_value(std::move(value));
  call(node, std::move(e), [done = std::move(done)](absl::StatusOr<pb::KvReply> r) mutable {
    if (!r.ok()) {
      done(r.status());
    } else if (r->code() != 0) {
      done(common::fromWire(r->code(), r->message()));
    } else if (!r->found()) {
      done(std::optional<std::string>());
    } else {
      done(std::optional<std::string>(std::move(*r->mutable_value())));
    }
  });
}

void RemoteKv::get(std::string app, std::string key, ValueDone done) {
  single(pb::KvRequest::GET, std::move(app), std::move(key), {}, std::move(done));
}

void RemoteKv::set(std::string app, std::string key, std::string value, StatusDone done) {
  single(pb::KvRequest::SET, std::move(app), std::move(key), std::move(value),
         [done = std::move(done)](auto r) mutable { done(r.status()); });
}

void RemoteKv::del(std::string app, std::string key, StatusDone done) {
  single(pb::KvRequest::DELETE, std::move(app), std::move(key), {},
         [done = std::move(done)](auto r) mutable { done(r.status()); });
}

void RemoteKv::setBatch(std::string app, KvPairs pairs, StatusDone done) {
  // One SET_BATCH per owner, this node's first, then in node order; the
  // next starts when the previous one has succeeded.
  struct Batch {
    RemoteKv* kv;
    std::string app;
    std::map<uint32_t, KvPairs> by_owner;  // 0: this node (ids start at 1)
    StatusDone done;
    static void next(std::shared_ptr<Batch> b) {
      if (b->by_owner.empty()) {
        b->done(absl::OkStatus());
        return;
      }
      auto first = b->by_owner.begin();
      uint32_t node = first->first;
      KvPairs pairs = std::move(first->second);
      b->by_owner.erase(first);
      if (node == 0) {
        absl::Status st = b->kv->store_.setBatch(b->app, pairs);
        if (!st.ok()) return b->done(st);
        return next(std::move(b));
      }
      pb::Envelope e;
      auto* req = e.mutable_kv();
      req->set_op(pb::KvRequest::SET_BATCH);
      req->set_app(b->app);
      for (auto& [k, v] : pairs) {
        auto* p = req->add_pairs();
        p->set_key(std::move(k));
        p->set_value(std::move(v));
      }
      RemoteKv* kv = b->kv;
      kv->call(node, std::move(e), [b = std::move(b)](absl::StatusOr<pb::KvReply> r) mutable {
        absl::Status st = r.ok() ? common::fromWire(r->code(), r->message()) : r.status();
        if (!st.ok()) return b->done(st);
        next(std::move(b));
      });
    }
  };
  auto b = std::make_shared<Batch>();
  b->kv = this;
  b->app = std::move(app);
  b->done = std::move(done);
  for (auto& kv : pairs) {
    uint32_t node = owner(b->app, kv.first);
    b->by_owner[node == self_ ? 0 : node].push_back(std::move(kv));
  }
  Batch::next(std::move(b));
}

void RemoteKv::scan(std::string app, std::string prefix, size_t limit, PairsDone done) {
  // Each owner answers its own first `limit`; the merged first `limit` is
  // among them. Replies arrive on reader threads: gathered under a mutex.
  struct Gather {
    std::mutex mu;
    size_t waiting;
    KvPairs pairs;
    absl::Status error;
    size_t limit;
    PairsDone done;
    void add(absl::StatusOr<KvPairs> part) {
      std::unique_lock lock(mu);
      if (!part.ok()) {
        if (error.ok()) error = part.status();
      } else {
        for (auto& kv : *part) pairs.push_back(std::move(kv));
      }
      if (--waiting > 0) return;
      lock.unlock();
      if (!error.ok()) {
        done(error);
        return;
      }
      std::sort(pairs.begin(), pairs.end());
      if (pairs.size() > limit) pairs.resize(limit);
      done(std::move(pairs));
    }
  };
  auto g = std::make_shared<Gather>();
  g->waiting = workers_.size();
  g->limit = limit;
  g->done = std::move(done);
  for (const auto& w : workers_) {
    uint32_t node = w.id.value;
    if (node == self_) {
      g->add(store_.scan(app, prefix, limit));
      continue;
    }
    pb::Envelope e;
    auto* kv = e.mutable_kv();
    kv->set_op(pb::KvRequest::SCAN);
    kv->set_app(app);
    kv->set_key(prefix);
    kv->set_limit(static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
    peers_.get(node)->call(std::move(e), kKvTimeout, [g, node](absl::StatusOr<pb::Envelope> r) {
      if (!r.ok()) {
        g->add(absl::UnavailableError(
            absl::StrCat("scan: node ", node, " unreachable: ", r.status().message())));
        return;
      }
      const auto& kr = r->kv_reply();
      if (kr.code() != 0) {
        g->add(common::fromWire(kr.code(), kr.message()));
        return;
      }
      KvPairs part;
      for (const auto& p : kr.pairs()) part.emplace_back(p.key(), p.value());
      g->add(std::move(part));
    });
  }
}

void RemoteKv::serve(const pb::KvRequest& kv, pb::KvReply& kr) {
  absl::Status st;
  if (kv.op() == pb::KvRequest::GET) {
    auto got = store_.get(kv.app(), kv.key());
    st = got.status();
    if (got.ok() && got->has_value()) {
      kr.set_found(true);
      kr.set_value(std::move(**got));
    }
  } else if (kv.op() == pb::KvRequest::SCAN) {
    auto got = store_.scan(kv.app(), kv.key(), kv.limit());
    st = got.status();
    if (got.ok()) {
      for (auto& [k, v] : *got) {
        auto* p = kr.add_pairs();
        p->set_key(std::move(k));
        p->set_value(std::move(v));
      }
    }
  } else if (kv.op() == pb::KvRequest::SET_BATCH) {
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& p : kv.pairs()) pairs.emplace_back(p.key(), p.value());
    st = store_.setBatch(kv.app(), pairs);
  } else if (kv.op() == pb::KvRequest::SET) {
    st = store_.set(kv.app(), kv.key(), kv.value());
  } else {
    st = store_.del(kv.app(), kv.key());
  }
  kr.set_code(common::toWire(st));
  kr.set_message(std::string(st.message()));
}

}  // namespace waverless::cluster
