// Fuzzes the peer protocol's message handling: the input is a serialized
// net::pb::Envelope (ParseFromArray), sent over a real peer stream to a real
// node started in-process once (one cluster.yaml node with the master and
// worker roles, with an app deployed), where the RPC server hands it to
// Cluster::onEnvelope: KV requests on the node's RocksDB store, invoke tasks
// through the request runner and the engine. The node must not crash, and
// must still answer a good KV round trip afterwards.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "net/peer.h"
#include "node/node.h"
#include "shard/replicated_kv.h"

namespace fs = std::filesystem;
namespace pb = waverless::net::pb;

namespace {

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "peer_fuzz: %s\n", what.c_str());
    std::abort();
  }
}

// A port p with p+1 (the node's HTTP port) free too, at the time of asking.
uint16_t freePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int a = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    getsockname(a, reinterpret_cast<sockaddr*>(&addr), &len);
    uint16_t port = ntohs(addr.sin_port);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = htons(static_cast<uint16_t>(port + 1));
    bool ok = port < 65000 && bind(b, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(a);
    close(b);
    if (ok) return port;
  }
  check(false, "no free port pair");
  return 0;
}

fs::path g_dir;  // <tmp>/wl-fuzz-peer-<pid>
waverless::node::Node* g_node;
waverless::net::PeerClient* g_client;
uint64_t g_inputs = 0;

absl::StatusOr<pb::Envelope> send(pb::Envelope e, std::chrono::milliseconds timeout) {
  std::promise<absl::StatusOr<pb::Envelope>> done;
  auto got = done.get_future();
  g_client->call(std::move(e), timeout,
                 [&done](absl::StatusOr<pb::Envelope> r) { done.set_value(std::move(r)); });
  return got.get();
}

// A write and a read of one key through the replicated KV's peer calls: the
// one worker leads every placement group of its one-node cluster. Group 0
// takes any key once the request names it.
absl::StatusOr<waverless::shard::ShardReply> shardCall(waverless::shard::ShardRequest q) {
  pb::Envelope e;
  e.set_shard_request(waverless::shard::encodeRequest(q));
  auto r = send(std::move(e), std::chrono::seconds(10));
  if (!r.ok()) return r.status();
  auto reply = waverless::shard::decodeReply(r->shard_reply());
  if (!reply) return absl::InternalError("malformed shard reply");
  return *reply;
}

void checkAlive() {
  using waverless::shard::ShardRequest;
  const std::string value = std::to_string(g_inputs);
  ShardRequest set{ShardRequest::Kind::kWrite,
                   0,
                   "fuzz",
                   "",
                   0,
                   {{waverless::shard::OpKind::kSet, "fuzz", "alive", value}}};
  auto r = shardCall(set);
  // Right after start the group may still be electing its (only) replica.
  for (int i = 0; i < 100 && r.ok() && !r->status.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = shardCall(set);
  }
  check(r.ok() && r->status.ok() && r->result.status.ok(), "the node no longer stores a key");
  ShardRequest get{ShardRequest::Kind::kRead, 0, "fuzz", "alive", 0, {}};
  r = shardCall(get);
  check(r.ok() && r->status.ok() && r->value == value, "the node no longer reads a key back");
}

void cleanup() {
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

// On the first input (like host_abi_fuzz: the engine's fault handler must
// be installed after libFuzzer's).
void setUp() {
  g_dir = fs::temp_directory_path() / ("wl-fuzz-peer-" + std::to_string(getpid()));
  fs::remove_all(g_dir);
  fs::create_directories(g_dir / "apps" / "fuzz");
  std::atexit(cleanup);
  fs::copy_file(WL_FUZZ_GUEST, g_dir / "apps" / "fuzz" / "app.wasm");
  std::ofstream(g_dir / "apps" / "fuzz" / "app.yaml") << R"(fns:
  run:
    event:
    - http_app:
    args: [http_text]
    kvs:
      "{}": [get, set, delete]
    timeout: 2s
  ping:
    event:
    - kv_set: 0
    args: [kv_key(0)]
    kvs:
      ping_{}: [get, set]
)";
  uint16_t port = freePortPair();
  std::string addr = "127.0.0.1:" + std::to_string(port);
  std::ofstream(g_dir / "cluster.yaml")
      << "nodes:\n  1: {addr: " << addr << ", spec: [master, worker]}\n";
  waverless::node::NodeOptions o;
  o.data_dir = g_dir / "data";
  o.apps_dir = g_dir / "apps";
  o.cache_dir = WL_FUZZ_CACHE;
  o.executor_threads = 1;
  o.cluster_config = g_dir / "cluster.yaml";
  o.node_id = 1;
  g_node = new waverless::node::Node(o);
  auto st = g_node->start();
  check(st.ok(), "node start: " + st.ToString());
  g_client = new waverless::net::PeerClient(addr);
  checkAlive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool started = (setUp(), true);
  (void)started;
  pb::Envelope e;
  if (!e.ParseFromArray(data, static_cast<int>(size))) return -1;  // not a message: not kept
  // Invocations of the app run guest code for up to its 2 s timeout.
  auto r = send(std::move(e), std::chrono::seconds(5));
  check(r.ok(), "no answer to a peer message: " + r.status().ToString());
  check(r->body_case() == pb::Envelope::kShardReply || r->has_done(),
        "an answer that is neither done nor shard_reply");
  if (++g_inputs % 32 == 0) checkAlive();
  return 0;
}
