#include "wasm/compiler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "wasm/engine.h"
#include "wasm/test_support.h"

namespace waverless::wasm {
namespace {

using ::testing::HasSubstr;
using testing::readGuest;

std::filesystem::path freshDir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() / ("wl-" + tag + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TEST(Compiler, RejectsMalformedModuleWithWabtMessage) {
  ModuleCompiler c({.cache_dir = WL_TEST_CACHE});
  std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'w', 'a', 's', 'm'};
  auto r = c.compile(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("bad magic value"));
}

TEST(Compiler, RejectsUnknownImportByName) {
  ModuleCompiler c({.cache_dir = WL_TEST_CACHE});
  auto r = c.compile(readGuest("bad_import_unknown.wasm"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("waverless.teleport"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not provided"));
}

TEST(Compiler, RejectsImportWithWrongSignature) {
  ModuleCompiler c({.cache_dir = WL_TEST_CACHE});
  auto r = c.compile(readGuest("bad_import_signature.wasm"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("waverless.kv_get"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("signature (ii:i)"));
}

TEST(Compiler, CachesByContentAcrossRestarts) {
  auto dir = freshDir("cache");
  auto wasm = readGuest("version_a.wasm");
  {
    ModuleCompiler c({.cache_dir = dir});
    auto first = c.compile(wasm);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_FALSE(first->from_cache);
    EXPECT_GT(first->compile_ms, 0);
    auto second = c.compile(wasm);
    ASSERT_TRUE(second.ok());
    EXPECT_TRUE(second->from_cache);
    EXPECT_EQ(second->path, first->path);
  }
  ModuleCompiler restarted({.cache_dir = dir});
  auto third = restarted.compile(wasm);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->from_cache);
  // Another optimisation level is another build.
  ModuleCompiler o1({.cache_dir = dir, .opt_level = 1});
  auto other = o1.compile(wasm);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->from_cache);
  EXPECT_NE(other->path, third->path);
  std::filesystem::remove_all(dir);
}

TEST(Compiler, DamagedCacheEntryIsRebuiltOnLoad) {
  auto dir = freshDir("damaged");
  auto wasm = readGuest("version_b.wasm");
  std::filesystem::path so;
  {
    ModuleCompiler c({.cache_dir = dir});
    auto obj = c.compile(wasm);
    ASSERT_TRUE(obj.ok());
    so = obj->path;
  }
  std::filesystem::resize_file(so, 100);  // a torn write or disk damage
  EngineOptions o;
  o.cache_dir = dir;
  o.executor.threads = 1;
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  LoadInfo info;
  auto app = engine.load("b", wasm, AppLimits{}, &info);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_FALSE(info.from_cache);
  InvocationRequest req;
  req.function = "which";
  EXPECT_EQ(engine.invokeSync(*app, req).output, "version B");
  engine.stop();
  std::filesystem::remove_all(dir);
}

// Found by the spec testsuite (tests/spec): at -O2 cc turned unbounded
// recursion into a loop (assert_exhaustion ran to the deadline) and folded
// x * 1.0 to x, keeping a signalling NaN signalling.
TEST(Compiler, CompiledCodeKeepsWasmCallAndNanSemantics) {
  EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  o.executor.threads = 1;
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto app = engine.load("semantics", readGuest("wasm_semantics.wasm"), AppLimits{});
  ASSERT_TRUE(app.ok()) << app.status();
  InvocationRequest req;
  req.function = "recurse";
  req.timeout = std::chrono::seconds(20);
  auto r = engine.invokeSync(*app, req);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("call stack exhausted"));
  req.function = "quiet_nan";
  r = engine.invokeSync(*app, req);
  EXPECT_TRUE(r.status.ok()) << r.status;
  engine.stop();
}

// Found by the spec testsuite (table_copy, linking): an import reached
// through call_indirect got the address of its env's field, not the env.
TEST(Compiler, HostImportCalledThroughTableGetsItsInstance) {
  EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  o.executor.threads = 1;
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto app = engine.load("in_table", readGuest("import_in_table.wasm"), AppLimits{});
  ASSERT_TRUE(app.ok()) << app.status();
  InvocationRequest req;
  req.function = "run";
  auto r = engine.invokeSync(*app, req);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.output, "via table");
  engine.stop();
}

TEST(Compiler, CompilingOneAppDoesNotBlockInvocationsOfAnother) {
  auto dir = freshDir("parallel");
  EngineOptions o;
  o.cache_dir = WL_TEST_CACHE;
  o.executor.threads = 2;
  Engine engine(o);
  ASSERT_TRUE(engine.start().ok());
  auto hello = engine.load("a", readGuest("version_a.wasm"), AppLimits{});
  ASSERT_TRUE(hello.ok());
  // A second engine compiling into an empty cache: a real, slow compile.
  EngineOptions o2 = o;
  o2.cache_dir = dir;
  Engine other(o2);
  std::atomic<bool> compiled{false};
  std::thread loader([&] {
    auto r = other.load("kernel", readGuest("kernel.wasm"), AppLimits{});
    EXPECT_TRUE(r.ok());
    compiled = true;
  });
  int served_during_compile = 0;
  InvocationRequest req;
  req.function = "which";
  while (!compiled) {
    auto r = engine.invokeSync(*hello, req);
    EXPECT_EQ(r.output, "version A");
    served_during_compile += !compiled;
  }
  loader.join();
  EXPECT_GT(served_during_compile, 10);
  engine.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace waverless::wasm
