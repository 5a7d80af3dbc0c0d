// Cluster: KV operations on the node that owns the keys — the client side
// a guest's host calls use (get/set/delete, batch per owner, scan over every
// owner) and the serving side, on the peer stream.
#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "cluster/cluster.h"
#include "cluster/cluster_util.h"
#include "kv/kv_store.h"

namespace waverless::cluster {

namespace pb = net::pb;

void Cluster::kvRemote(uint32_t node, app::KvOp op, std::string app, std::string key,
                       std::string value,
                       absl::AnyInvocable<void(absl::StatusOr<std::optional<std::string>>)> done) {
  net::PeerClient* p = peer(node);
  pb::Envelope e;
  auto* kv = e.mutable_kv();
  kv->set_op(op == app::KvOp::kGet   ? pb::KvRequest::GET
             : op == app::KvOp::kSet ? pb::KvRequest::SET
                                     : pb::KvRequest::DELETE);
  kv->set_app(std::move(app));
  kv->set_key(std::move(key));
  kv->set_value(std::move(value));
  p->call(std::move(e), std::chrono::seconds(10),
          [done = std::move(done), node](absl::StatusOr<pb::Envelope> r) mutable {
            if (!r.ok()) {
              done(absl::UnavailableError(
                  absl::StrCat("key owner node ", node, " unreachable: ", r.status().message())));
              return;
            }
            const auto& kr = r->kv_reply();
            if (kr.code() != 0) {
              done(statusOf(kr.code(), kr.message()));
            } else if (!kr.found()) {
              done(std::optional<std::string>());
            } else {
              done(std::optional<std::string>(kr.value()));
            }
          });
}

void Cluster::kvSetBatchRemote(uint32_t node, std::string app, KvPairs pairs,
                               absl::AnyInvocable<void(absl::Status)> done) {
  pb::Envelope e;
  auto* kv = e.mutable_kv();
  kv->set_op(pb::KvRequest::SET_BATCH);
  kv->set_app(std::move(app));
  for (auto& [k, v] : pairs) {
    auto* p = kv->add_pairs();
    p->set_key(std::move(k));
    p->set_value(std::move(v));
  }
  peer(node)->call(std::move(e), std::chrono::seconds(10),
                   [done = std::move(done), node](absl::StatusOr<pb::Envelope> r) mutable {
                     if (!r.ok()) {
                       done(absl::UnavailableError(absl::StrCat(
                           "key owner node ", node, " unreachable: ", r.status().message())));
                       return;
                     }
                     done(statusOf(r->kv_reply().code(), r->kv_reply().message()));
                   });
}

void Cluster::kvAtomicRemote(uint32_t node, KvAtomic op,
                             absl::AnyInvocable<void(absl::StatusOr<KvAtomicResult>)> done) {
  pb::Envelope e;
  auto* kv = e.mutable_kv();
  kv->set_op(op.kind == KvAtomic::Kind::kCas ? pb::KvRequest::CAS : pb::KvRequest::INCR);
  kv->set_app(std::move(op.app));
  kv->set_key(std::move(op.key));
  kv->set_value(std::move(op.value));
  kv->set_expect_absent(!op.expected.has_value());
  if (op.expected) kv->set_expected(std::move(*op.expected));
  kv->set_delta(op.delta);
  peer(node)->call(std::move(e), std::chrono::seconds(10),
                   [done = std::move(done), node](absl::StatusOr<pb::Envelope> r) mutable {
                     if (!r.ok()) {
                       done(absl::UnavailableError(absl::StrCat(
                           "key owner node ", node, " unreachable: ", r.status().message())));
                       return;
                     }
                     const auto& kr = r->kv_reply();
                     if (kr.code() != 0) {
                       done(statusOf(kr.code(), kr.message()));
                       return;
                     }
                     done(KvAtomicResult{kr.found(), kr.sum()});
                   });
}

void Cluster::kvScanAll(std::string app, std::string prefix, size_t limit,
                        absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done) {
  // Each owner answers its own first `limit`; the merged first `limit` is
  // among them. Replies arrive on reader threads: gathered under a mutex.
  struct Gather {
    std::mutex mu;
    size_t waiting;
    KvPairs pairs;
    absl::Status error;
    size_t limit;
    absl::AnyInvocable<void(absl::StatusOr<KvPairs>)> done;
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
  g->waiting = all_workers_.size();
  g->limit = limit;
  g->done = std::move(done);
  for (const auto& w : all_workers_) {
    uint32_t node = w.id.value;
    if (node == self_->id) {
      g->add(deps_.kv.scan(app, prefix, limit));
      continue;
    }
    pb::Envelope e;
    auto* kv = e.mutable_kv();
    kv->set_op(pb::KvRequest::SCAN);
    kv->set_app(app);
    kv->set_key(prefix);
    kv->set_limit(static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
    peer(node)->call(
        std::move(e), std::chrono::seconds(10), [g, node](absl::StatusOr<pb::Envelope> r) {
          if (!r.ok()) {
            g->add(absl::UnavailableError(
                absl::StrCat("scan: node ", node, " unreachable: ", r.status().message())));
            return;
          }
          const auto& kr = r->kv_reply();
          if (kr.code() != 0) {
            g->add(statusOf(kr.code(), kr.message()));
            return;
          }
          KvPairs part;
          for (const auto& p : kr.pairs()) part.emplace_back(p.key(), p.value());
          g->add(std::move(part));
        });
  }
}

void Cluster::serveKv(const pb::KvRequest& kv, pb::KvReply& kr) {
  absl::Status st;
  if (kv.op() == pb::KvRequest::GET) {
    auto got = deps_.kv.get(kv.app(), kv.key());
    st = got.status();
    if (got.ok() && got->has_value()) {
      kr.set_found(true);
      kr.set_value(std::move(**got));
    }
  } else if (kv.op() == pb::KvRequest::SCAN) {
    auto got = deps_.kv.scan(kv.app(), kv.key(), kv.limit());
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
    st = deps_.kv.setBatch(kv.app(), pairs);
  } else if (kv.op() == pb::KvRequest::SET) {
    st = deps_.kv.set(kv.app(), kv.key(), kv.value());
  } else if (kv.op() == pb::KvRequest::CAS) {
    auto stored = deps_.kv.cas(
        kv.app(), kv.key(),
        kv.expect_absent() ? std::nullopt : std::optional<std::string_view>(kv.expected()),
        kv.value());
    st = stored.status();
    kr.set_found(stored.ok() && *stored);
  } else if (kv.op() == pb::KvRequest::INCR) {
    auto sum = deps_.kv.incr(kv.app(), kv.key(), kv.delta());
    st = sum.status();
    if (sum.ok()) kr.set_sum(*sum);
  } else {
    st = deps_.kv.del(kv.app(), kv.key());
  }
  kr.set_code(static_cast<int32_t>(st.code()));
  kr.set_message(std::string(st.message()));
}

}  // namespace waverless::cluster
