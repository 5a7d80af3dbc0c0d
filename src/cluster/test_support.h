// What the cluster tests that run or ship a wasm app share (cluster_apps_test).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "net/peer.h"
#include "wasm/engine.h"

namespace waverless::cluster::testing {

// A node's peer service that serves nothing a test does not override: a stream envelope gets an
// empty reply, a control call an empty (OK) answer or NotFound.
class PeerHandlerBase : public net::PeerHandler {
 public:
  void onEnvelope(net::pb::Envelope, net::Reply reply) override { reply({}); }
  net::pb::HeartbeatReply heartbeat(const net::pb::HeartbeatRequest&) override { return {}; }
  net::pb::Ack installApp(const net::pb::AppPackage&) override { return {}; }
  absl::StatusOr<net::pb::AppPackage> fetchApp(const std::string& name) override {
    return absl::NotFoundError(name);
  }
  net::pb::Ack removeApp(const std::string&, net::Removal) override { return {}; }
  net::pb::Ack metaPut(const net::pb::MetaEntry&) override { return {}; }
};

// One engine for a test suite. Its compiled-object cache is the build's, so the app compiles once
// per build, not once per test or node.
inline std::unique_ptr<wasm::Engine> startEngine() {
  wasm::EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  auto engine = std::make_unique<wasm::Engine>(o);
  EXPECT_TRUE(engine->start().ok());
  return engine;
}

// The register test app (tests/apps/register) as a deploy receives it: dir/app.yaml and the
// built dir/app.wasm.
inline void copyRegisterApp(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  fs::copy_file(fs::path(WL_SOURCE_DIR) / "tests/apps/register/app.yaml", dir / "app.yaml");
  fs::copy_file(fs::path(WL_BUILD_DIR) / "tests/apps/register/app.wasm", dir / "app.wasm");
}

}  // namespace waverless::cluster::testing
