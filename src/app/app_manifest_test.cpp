#include "app/app_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

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

AppManifest parseOk(std::string_view yaml) {
  absl::StatusOr<AppManifest> m = parseManifest(yaml, "demo");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : AppManifest{};
}

// The message of a rejection, which must be an InvalidArgumentError.
std::string errorOf(std::string_view yaml) {
  absl::StatusOr<AppManifest> m = parseManifest(yaml, "demo");
  EXPECT_FALSE(m.ok()) << "accepted:\n" << yaml;
  if (m.ok()) return "";
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  return std::string(m.status().message());
}

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

TEST(AppManifestReject, YamlSyntaxError) {
  // yaml-cpp blames the line where it gave up looking for the `]`.
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app\n    args: x\n  g: }\n"),
              StartsWith("app.yaml:4: yaml: end of sequence flow not found"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    kvs: {a: b\n"),
              StartsWith("app.yaml:5: yaml: "));
  EXPECT_THAT(errorOf("fns:\n  f:\n\tevent: x\n"), StartsWith("app.yaml:3: yaml: "));
}

TEST(AppManifestReject, FileNameIsReported) {
  absl::StatusOr<AppManifest> m = parseManifest("fns: {}\n", "demo", "apps/demo/app.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), StartsWith("apps/demo/app.yaml:1: fns: "));
}

TEST(AppManifestReject, UnknownFields) {
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event: [http_app]
memroy: 64MiB
)"),
              StartsWith("app.yaml:4: memroy: unknown field"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event: [http_app]
    arg: [http_text]
)"),
              StartsWith("app.yaml:4: fns.f.arg: unknown field"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http_app:
    - kv_sett: 0
)"),
              StartsWith("app.yaml:5: fns.f.event[1].kv_sett: unknown field"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http:
        method: GET
        paht: /x
)"),
              StartsWith("app.yaml:6: fns.f.event[0].http.paht: unknown field"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - cron
)"),
              StartsWith("app.yaml:4: fns.f.event[0]: unknown trigger \"cron\""));
}

TEST(AppManifestReject, MissingOrEmptyFns) {
  EXPECT_THAT(errorOf(""), StartsWith("app.yaml:1: fns: missing"));
  EXPECT_THAT(errorOf("# nothing\nmemory: 1MiB\n"), StartsWith("app.yaml:1: fns: missing"));
  EXPECT_THAT(errorOf("memory: 1MiB\nfns:\n"), StartsWith("app.yaml:2: fns: empty"));
  EXPECT_THAT(errorOf("\nfns: {}\n"), StartsWith("app.yaml:2: fns: empty"));
  EXPECT_THAT(errorOf("fns: [a, b]\n"), StartsWith("app.yaml:1: fns: must be a map"));
  EXPECT_THAT(errorOf("- fns\n"), StartsWith("app.yaml:1: document: must be a map"));
}

TEST(AppManifestReject, FunctionWithoutEvent) {
  EXPECT_THAT(errorOf("fns:\n  f:\n    args: []\n"),
              StartsWith("app.yaml:2: fns.f.event: missing"));
  EXPECT_THAT(errorOf("fns:\n  f:\n"), StartsWith("app.yaml:2: fns.f.event: missing"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: []\n"), StartsWith("app.yaml:3: fns.f.event: empty"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event:\n"), StartsWith("app.yaml:3: fns.f.event: empty"));
}

TEST(AppManifestReject, KvSetPointsAtNoKvsEntry) {
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http_app:
    - kv_set: 1
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:5: fns.f.event[1].kv_set: kvs entry 1 does not exist"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - kv_set: b_{}
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:4: fns.f.event[0].kv_set: \"b_{}\" is not one of this "
                         "function's kvs patterns (a_{})"));
  // Another function's pattern does not count.
  EXPECT_THAT(errorOf(R"(fns:
  g:
    event: [http_app]
    kvs:
      a_{}: [set]
  f:
    event:
    - kv_set: 0
)"),
              StartsWith("app.yaml:8: fns.f.event[0].kv_set: kvs entry 0 does not exist"));
}

TEST(AppManifestReject, TwoHttpAppFunctions) {
  EXPECT_THAT(errorOf(R"(fns:
  b:
    event: [http_app]
  a:
    event:
    - http_app:
)"),
              StartsWith("app.yaml:6: fns.a.event[0].http_app: only one function per app may "
                         "use http_app, and fns.b (line 2) already does"));
  EXPECT_THAT(errorOf("fns:\n  a:\n    event:\n    - http_app:\n    - http_app:\n"),
              StartsWith("app.yaml:5: fns.a.event[1]: same trigger as event[0] (line 4)"));
}

TEST(AppManifestReject, ClashingHttpTriggers) {
  EXPECT_THAT(errorOf(R"(fns:
  a:
    event:
    - http: {method: POST, path: /stats}
  b:
    event:
    - http: {method: GET, path: /stats}
    - http: {method: POST, path: /stats}
)"),
              StartsWith("app.yaml:8: fns.b.event[1].http: POST /stats clashes with POST /stats "
                         "of fns.a.event[0] (line 4)"));
  // ANY takes every method of its path; the default method is ANY.
  EXPECT_THAT(errorOf(R"(fns:
  a:
    event:
    - http: {method: GET, path: /x}
  b:
    event:
    - http: {path: /x}
)"),
              StartsWith("app.yaml:7: fns.b.event[0].http: ANY /x clashes with GET /x"));
  // Same path, different methods, is fine; so is the same method on another path.
  const AppManifest m = parseOk(R"(fns:
  a:
    event:
    - http: {method: GET, path: /x}
    - http: {method: GET, path: /y}
  b:
    event:
    - http: {method: PUT, path: /x}
  c:
    event:
    - http: {path: /z}
)");
  EXPECT_EQ(m.httpFn("GET", "/x"), m.find("a"));
  EXPECT_EQ(m.httpFn("GET", "/y"), m.find("a"));
  EXPECT_EQ(m.httpFn("PUT", "/x"), m.find("b"));
  EXPECT_EQ(m.httpFn("DELETE", "/x"), nullptr);
  EXPECT_EQ(m.httpFn("DELETE", "/z"), m.find("c"));
  EXPECT_EQ(m.httpAppFn(), nullptr);
}

TEST(AppManifestReject, BadHttpMethodOrPath) {
  EXPECT_THAT(errorOf("fns:\n  a:\n    event:\n    - http: {method: get, path: /x}\n"),
              StartsWith("app.yaml:4: fns.a.event[0].http.method: \"get\" is not one of"));
  EXPECT_THAT(errorOf("fns:\n  a:\n    event:\n    - http:\n        path: stats\n"),
              StartsWith("app.yaml:5: fns.a.event[0].http.path: \"stats\" is not a path"));
  for (const char* path : {"/", "//x", "/x/", "/a/../b", "/a b", "/a?b", "/x/{}"}) {
    EXPECT_THAT(
        errorOf(std::string("fns:\n  a:\n    event:\n    - http: {path: \"") + path + "\"}\n"),
        StartsWith("app.yaml:4: fns.a.event[0].http.path: "))
        << path;
  }
  EXPECT_THAT(errorOf("fns:\n  a:\n    event:\n    - http: {method: GET}\n"),
              StartsWith("app.yaml:4: fns.a.event[0].http.path: missing"));
  EXPECT_THAT(errorOf("fns:\n  a:\n    event:\n    - http:\n"),
              StartsWith("app.yaml:4: fns.a.event[0].http: needs a path"));
}

TEST(AppManifestReject, ArgsTheEventsCannotSupply) {
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - kv_set: 0
    args: [http_text]
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:5: fns.f.args[0]: http_text needs every event to be http_app "
                         "or http, but event[0] (line 4) is kv_set on kvs entry 0"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http_app:
    args:
    - kv_key(0)
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:6: fns.f.args[0]: kv_key(0) needs every event to be a kv_set "
                         "on kvs entry 0, but event[0] (line 4) is http_app"));
  // A kv_set on entry 1 cannot supply the key of entry 0.
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - kv_set: 1
    args:
    - kv_key: 0
    kvs:
      a_{}: [get]
      b_{}: [get]
)"),
              StartsWith("app.yaml:6: fns.f.args[0]: kv_key(0) needs every event to be a kv_set "
                         "on kvs entry 0, but event[0] (line 4) is kv_set on kvs entry 1"));
  // Mixed triggers: the http one has no key to pass.
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - kv_set: 0
    - http: {method: POST, path: /p}
    args: [kv_key(0)]
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:6: fns.f.args[0]: kv_key(0) needs every event to be a kv_set "
                         "on kvs entry 0, but event[1] (line 5) is http POST /p"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - kv_set: 0
    args: [kv_key(3)]
    kvs:
      a_{}: [get]
)"),
              StartsWith("app.yaml:5: fns.f.args[0]: kv_key(3): kvs entry 3 does not exist"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    args: [body]\n"),
              StartsWith("app.yaml:4: fns.f.args[0]: unknown arg \"body\""));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    args: [kv_key(x)]\n"),
              StartsWith("app.yaml:4: fns.f.args[0]: kv_key needs a kvs entry index"));
}

TEST(AppManifestReject, BadKvsOps) {
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event: [http_app]
    kvs:
      a_{}:
      - get
      - list
)"),
              StartsWith("app.yaml:7: fns.f.kvs.a_{}[1]: unknown operation \"list\""));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    kvs:\n      a_{}: get\n"),
              StartsWith("app.yaml:5: fns.f.kvs.a_{}: must be a list of operations"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    kvs:\n      a_{}: []\n"),
              StartsWith("app.yaml:5: fns.f.kvs.a_{}: no operations listed"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    kvs:\n      a_{}:\n"),
              StartsWith("app.yaml:5: fns.f.kvs.a_{}: must be a list of operations"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    kvs: [a]\n"),
              StartsWith("app.yaml:4: fns.f.kvs: must be a map"));
}

TEST(AppManifestReject, BadPattern) {
  const std::string msg = errorOf(R"(fns:
  f:
    event: [http_app]
    kvs:
      ok_{}: [get]
      bad_{x}: [set]
)");
  EXPECT_THAT(msg, StartsWith("app.yaml:6: fns.f.kvs.bad_{x}: "));
  // The KeyPattern's own reason follows.
  absl::StatusOr<kv::KeyPattern> p = kv::KeyPattern::parse("bad_{x}");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(msg, HasSubstr(std::string(p.status().message())));
}

TEST(AppManifestReject, BadTimeout) {
  for (const char* t : {"10h", "-5", "0", "0s", "1.5s", "abc", "10 s", "s", "ms", "25000m",
                        "99999999999999999999"}) {
    EXPECT_THAT(
        errorOf(std::string("fns:\n  f:\n    event: [http_app]\n    timeout: \"") + t + "\"\n"),
        StartsWith("app.yaml:4: fns.f.timeout: "))
        << t;
  }
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    timeout: [1]\n"),
              StartsWith("app.yaml:4: fns.f.timeout: "));
}

TEST(AppManifestReject, BadMemory) {
  for (const char* mem : {"1KiB", "65535", "5GiB", "4097MiB", "0", "1.5GiB", "256MB", "256mib",
                          "MiB", "-1MiB", "99999999999999999999GiB"}) {
    EXPECT_THAT(errorOf(std::string("fns:\n  f:\n    event: [http_app]\nmemory: ") + mem + "\n"),
                StartsWith("app.yaml:4: memory: "))
        << mem;
  }
}

TEST(AppManifestReject, BadTopLevelScalars) {
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nmax_instances: 0\n"),
              StartsWith("app.yaml:4: max_instances: "));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nmax_instances: -3\n"),
              StartsWith("app.yaml:4: max_instances: "));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nscheduler: fifo\n"),
              StartsWith("app.yaml:4: scheduler: \"fifo\" is not a scheduler"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    idempotent: maybe\n"),
              StartsWith("app.yaml:4: fns.f.idempotent: must be true or false"));
}

TEST(AppManifestReject, InvalidFunctionNames) {
  for (const char* name : {"1fn", "my-fn", "fn.x", "\"\"", "\"a b\"", "é"}) {
    EXPECT_THAT(errorOf(std::string("fns:\n  ok:\n    event: [http_app]\n  ") + name +
                        ":\n    event: [kv_set: 0]\n"),
                StartsWith("app.yaml:4: fns."))
        << name;
    EXPECT_THAT(errorOf(std::string("fns:\n  ok:\n    event: [http_app]\n  ") + name +
                        ":\n    event: [kv_set: 0]\n"),
                HasSubstr(": invalid function name"))
        << name;
  }
}

TEST(AppManifestReject, DuplicateKeys) {
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n  f:\n    event: [http_app]\n"),
              StartsWith("app.yaml:4: fns.f: listed twice (first at line 2)"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event: [http_app]
    kvs:
      a_{}: [get]
      a_{}: [set]
)"),
              StartsWith("app.yaml:6: fns.f.kvs.a_{}: listed twice (first at line 5)"));
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
