#include "app/app_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "app/manifest_expect.h"

namespace waverless::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::StartsWith;

// The format's reference example. Lines are counted from 1 at "fns:".
constexpr std::string_view kExample = R"(fns:
  split_file:
    event:
    - http_app:
    args: [http_text]
    kvs:
      wordcount_slice_{}: [set]
  handle_one_slice:
    event:
    - kv_set: 0
    args: [kv_key(0)]
    kvs:
      wordcount_slice_{}: [get, delete]
      wordcount_{}: [set]
    timeout: 10s
    idempotent: true
  api_fn:
    event:
    - http: {method: POST, path: /stats}
    args: [http_text]
memory: 256MiB
max_instances: 100
scheduler: hash
)";

TEST(AppManifestParse, ExampleParsesToModel) {
  const AppManifest m = parseOk(kExample);
  EXPECT_EQ(m.name, "demo");
  ASSERT_THAT(m.fns, SizeIs(3));
  // Sorted by name, not document order.
  EXPECT_EQ(m.fns[0].name, "api_fn");
  EXPECT_EQ(m.fns[1].name, "handle_one_slice");
  EXPECT_EQ(m.fns[2].name, "split_file");

  const FnSpec& api = m.fns[0];
  EXPECT_EQ(api.line, 17);
  ASSERT_THAT(api.events, SizeIs(1));
  EXPECT_EQ(api.events[0].kind, EventSpec::Kind::kHttp);
  EXPECT_EQ(api.events[0].method, "POST");
  EXPECT_EQ(api.events[0].path, "/stats");
  EXPECT_EQ(api.events[0].line, 19);
  ASSERT_THAT(api.args, SizeIs(1));
  EXPECT_EQ(api.args[0].kind, ArgSpec::Kind::kHttpText);
  EXPECT_THAT(api.kvs, IsEmpty());
  EXPECT_FALSE(api.timeout.has_value());
  EXPECT_FALSE(api.idempotent);

  const FnSpec& slice = m.fns[1];
  EXPECT_EQ(slice.line, 8);
  ASSERT_THAT(slice.events, SizeIs(1));
  EXPECT_EQ(slice.events[0].kind, EventSpec::Kind::kKvSet);
  EXPECT_EQ(slice.events[0].kv_index, 0u);
  EXPECT_EQ(slice.events[0].line, 10);
  ASSERT_THAT(slice.args, SizeIs(1));
  EXPECT_EQ(slice.args[0].kind, ArgSpec::Kind::kKvKey);
  EXPECT_EQ(slice.args[0].kv_index, 0u);
  ASSERT_THAT(slice.kvs, SizeIs(2));
  EXPECT_EQ(slice.kvs[0].pattern.text(), "wordcount_slice_{}");
  EXPECT_TRUE(slice.kvs[0].get);
  EXPECT_FALSE(slice.kvs[0].set);
  EXPECT_TRUE(slice.kvs[0].del);
  EXPECT_EQ(slice.kvs[0].line, 13);
  EXPECT_EQ(slice.kvs[1].pattern.text(), "wordcount_{}");
  EXPECT_FALSE(slice.kvs[1].get);
  EXPECT_TRUE(slice.kvs[1].set);
  EXPECT_FALSE(slice.kvs[1].del);
  EXPECT_EQ(slice.kvs[1].line, 14);
  EXPECT_EQ(slice.timeout, std::chrono::seconds(10));
  EXPECT_TRUE(slice.idempotent);

  const FnSpec& split = m.fns[2];
  EXPECT_EQ(split.line, 2);
  ASSERT_THAT(split.events, SizeIs(1));
  EXPECT_EQ(split.events[0].kind, EventSpec::Kind::kHttpApp);
  EXPECT_EQ(split.events[0].line, 4);
  ASSERT_THAT(split.args, SizeIs(1));
  EXPECT_EQ(split.args[0].kind, ArgSpec::Kind::kHttpText);
  ASSERT_THAT(split.kvs, SizeIs(1));
  EXPECT_TRUE(split.kvs[0].set);
  EXPECT_FALSE(split.kvs[0].get);

  EXPECT_EQ(m.memory_pages, 256u * 16);  // 256 MiB / 64 KiB
  EXPECT_EQ(m.max_instances, 100u);
  EXPECT_EQ(m.scheduler, "hash");
  // `{}` segments may contain '_', so wordcount_{} (which handle_one_slice
  // sets) also matches wordcount_slice_7, its own trigger: a real cycle.
  ASSERT_THAT(m.warnings, SizeIs(1));
  EXPECT_THAT(m.warnings[0], StartsWith("app.yaml:8: fns.handle_one_slice: kv_set trigger cycle "
                                        "handle_one_slice -> handle_one_slice: "));

  EXPECT_EQ(m.find("split_file"), &m.fns[2]);
  EXPECT_EQ(m.find("handle_one_slice"), &m.fns[1]);
  EXPECT_EQ(m.find("nope"), nullptr);
  EXPECT_EQ(m.httpAppFn(), &m.fns[2]);
  EXPECT_EQ(m.httpFn("POST", "/stats"), &m.fns[0]);
  EXPECT_EQ(m.httpFn("GET", "/stats"), nullptr);
  EXPECT_EQ(m.httpFn("POST", "/other"), nullptr);
}

// apps/word_count/app.yaml of the original Waverless, with the trigger named
// by pattern: bare `args:`, one-key-map args and comments all parse.
TEST(AppManifestParse, OriginalWordCountParses) {
  const AppManifest m = parseOk(R"(fns:
  split_file:
    event:
    - http_app: 
    args:
    # - http_text: 
    kvs:
      wordcount_slice_{}: [set]

  handle_one_slice:
    # the trigger's key is the argument
    event:
    - kv_set: wordcount_slice_{}
    args: 
    - kv_key: 0
    kvs: 
      wordcount_slice_{}: [delete]
      wordcount_{}: [set]
)");
  ASSERT_THAT(m.fns, SizeIs(2));
  const FnSpec* slice = m.find("handle_one_slice");
  ASSERT_NE(slice, nullptr);
  ASSERT_THAT(slice->events, SizeIs(1));
  EXPECT_EQ(slice->events[0].kind, EventSpec::Kind::kKvSet);
  EXPECT_EQ(slice->events[0].kv_index, 0u);
  ASSERT_THAT(slice->args, SizeIs(1));
  EXPECT_EQ(slice->args[0].kind, ArgSpec::Kind::kKvKey);
  EXPECT_THAT(m.find("split_file")->args, IsEmpty());
  EXPECT_EQ(m.httpAppFn(), m.find("split_file"));
  EXPECT_FALSE(m.memory_pages.has_value());
  EXPECT_FALSE(m.max_instances.has_value());
  EXPECT_FALSE(m.scheduler.has_value());
  EXPECT_THAT(m.warnings, ElementsAre(HasSubstr("handle_one_slice -> handle_one_slice")));
}

TEST(AppManifestParse, KvSetByNameBindsThatEntry) {
  const AppManifest m = parseOk(R"(fns:
  f:
    event:
    - kv_set: b_{}
    args: [kv_key(1)]
    kvs:
      a_{}: [get]
      b_{}: [get]
)");
  EXPECT_EQ(m.fns[0].events[0].kv_index, 1u);
}

TEST(AppManifestParse, QuotedNumberIsPatternTextNotIndex) {
  const AppManifest m = parseOk(R"(fns:
  f:
    event:
    - kv_set: "7"
    kvs:
      x: [get]
      "7": [get]
)");
  EXPECT_EQ(m.fns[0].events[0].kv_index, 1u);
}

TEST(AppManifestParse, NeverThrowsOnHostileInput) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string inputs[] = {
      deep,
      std::string("\0\xff\xfe garbage", 12),
      "fns: &a [*a]\n",
      "fns:\n  f: &x\n    event: [http_app]\n  g: *x\n",
      "? [a, b]\n: c\n",
      "fns:\n  ? [f]\n  : {event: [http_app]}\n",
      "fns:\n  f:\n    event: [{kv_set: [0]}]\n",
      "fns:\n  f:\n    event: [http_app]\n    kvs:\n      a_{}: [[get]]\n",
      "--- a\n--- b\n",
      std::string(2 << 20, '#'),
  };
  for (const std::string& in : inputs) {
    absl::StatusOr<AppManifest> m = parseManifest(in, "demo");
    // The alias case is well-formed YAML but gives two functions http_app.
    EXPECT_FALSE(m.ok()) << in.substr(0, 80);
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
    }
  }
}

TEST(AppManifestQuery, TriggeredByOrder) {
  const AppManifest m = parseOk(R"(fns:
  zeta:
    event:
    - kv_set: 0
    kvs:
      item_{}: [get]
  alpha:
    event:
    - kv_set: 1
    - kv_set: 0
    kvs:
      item_{}_{}: [get]
      "{}_x": [get]  # a plain scalar cannot start with {
  mid:
    event:
    - kv_set: 0
    kvs:
      other_{}: [get]
)");
  const FnSpec* alpha = m.find("alpha");
  const FnSpec* zeta = m.find("zeta");
  // "item_x" matches alpha's {}_x (entry 1, its first event) and zeta's item_{};
  // "item_a_x" also matches alpha's item_{}_{} (entry 0, its second event).
  EXPECT_THAT(m.triggeredBy("item_x"), ElementsAre(Pair(alpha, 1u), Pair(zeta, 0u)));
  EXPECT_THAT(m.triggeredBy("item_a_x"),
              ElementsAre(Pair(alpha, 1u), Pair(alpha, 0u), Pair(zeta, 0u)));
  EXPECT_THAT(m.triggeredBy("other_1"), ElementsAre(Pair(m.find("mid"), 0u)));
  EXPECT_THAT(m.triggeredBy("unrelated"), IsEmpty());
}

TEST(AppManifestQuery, AllowedPerOp) {
  const AppManifest m = parseOk(R"(fns:
  f:
    event: [http_app]
    kvs:
      r_{}: [get]
      w_{}: [set]
      d_{}: [delete]
      rw_{}: [get, set]
)");
  const FnSpec& f = m.fns[0];
  EXPECT_TRUE(m.allowed(f, KvOp::kGet, "r_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kSet, "r_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kDelete, "r_1"));
  EXPECT_TRUE(m.allowed(f, KvOp::kSet, "w_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kGet, "w_1"));
  EXPECT_TRUE(m.allowed(f, KvOp::kDelete, "d_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kSet, "d_1"));
  EXPECT_TRUE(m.allowed(f, KvOp::kGet, "rw_1"));
  EXPECT_TRUE(m.allowed(f, KvOp::kSet, "rw_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kDelete, "rw_1"));
  // Unlisted keys and non-matching shapes are denied for every op.
  EXPECT_FALSE(m.allowed(f, KvOp::kGet, "x_1"));
  EXPECT_FALSE(m.allowed(f, KvOp::kGet, "r_"));
  EXPECT_FALSE(m.allowed(f, KvOp::kGet, "r_a/b"));
}

TEST(AppManifestParse, TimeoutForms) {
  auto timeoutOf = [](const std::string& t) {
    const AppManifest m = parseOk("fns:\n  f:\n    event: [http_app]\n    timeout: " + t + "\n");
    return m.fns.empty() ? std::nullopt : m.fns[0].timeout;
  };
  EXPECT_EQ(timeoutOf("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(timeoutOf("10s"), std::chrono::milliseconds(10000));
  EXPECT_EQ(timeoutOf("2m"), std::chrono::milliseconds(120000));
  EXPECT_EQ(timeoutOf("1500"), std::chrono::milliseconds(1500));
  EXPECT_EQ(timeoutOf("1440m"), std::chrono::hours(24));
}

TEST(AppManifestParse, MemoryFormsRoundUpToPages) {
  auto pagesOf = [](const std::string& mem) {
    const AppManifest m = parseOk("fns:\n  f:\n    event: [http_app]\nmemory: " + mem + "\n");
    return m.memory_pages;
  };
  EXPECT_EQ(pagesOf("64KiB"), 1u);
  EXPECT_EQ(pagesOf("65536"), 1u);
  EXPECT_EQ(pagesOf("65537"), 2u);  // rounded up
  EXPECT_EQ(pagesOf("100KiB"), 2u);
  EXPECT_EQ(pagesOf("1MiB"), 16u);
  EXPECT_EQ(pagesOf("1GiB"), 16384u);
  EXPECT_EQ(pagesOf("4GiB"), 65536u);
  EXPECT_EQ(pagesOf("4096MiB"), 65536u);
}

TEST(AppManifestExports, CheckExports) {
  const AppManifest m = parseOk(kExample);
  EXPECT_TRUE(checkExports(m, {"split_file", "handle_one_slice", "api_fn", "_start"}).ok());

  const absl::Status one = checkExports(m, {"split_file", "api_fn"});
  EXPECT_EQ(one.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(one.message()),
            "app.yaml:8: fns.handle_one_slice: not exported by app.wasm");

  const absl::Status all = checkExports(m, {}, "apps/demo/app.yaml");
  EXPECT_EQ(std::string(all.message()),
            "apps/demo/app.yaml:2: fns.split_file: not exported by app.wasm\n"
            "apps/demo/app.yaml:8: fns.handle_one_slice: not exported by app.wasm\n"
            "apps/demo/app.yaml:17: fns.api_fn: not exported by app.wasm");
}

}  // namespace
}  // namespace waverless::app
