#include "cluster/peers.h"

#include "metrics/metrics.h"

namespace waverless::cluster {

Peers::Peers(const ClusterConfig& config, uint32_t self) {
  for (const auto& n : config.nodes) {
    if (n.id != self) clients_[n.id] = std::make_unique<net::PeerClient>(n.addr);
  }
}

net::PeerClient* Peers::get(uint32_t id) const {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void Peers::registerMetrics(metrics::Registry& metrics) {
  metrics.gauges("wl_net_bytes", "Bytes sent to / received from each peer on the stream", [this] {
    metrics::Registry::Samples out;
    for (const auto& [id, p] : clients_) {
      auto s = p->stats();
      out.push_back({{{"peer", std::to_string(id)}, {"dir", "sent"}}, double(s.bytes_sent)});
      out.push_back(
          {{{"peer", std::to_string(id)}, {"dir", "received"}}, double(s.bytes_received)});
    }
    return out;
  });
}

void Peers::shutdown() {
  for (auto& [id, p] : clients_) p->shutdown();
}

}  // namespace waverless::cluster
