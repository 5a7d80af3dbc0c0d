// app.yaml documents parseManifest() refuses, and the file:line: field: message each gets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "app/app_manifest.h"
#include "app/manifest_expect.h"

namespace waverless::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::StartsWith;

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

}  // namespace
}  // namespace waverless::app
