// Trigger-cycle warnings (trigger_cycles.cpp), through parseManifest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "app/app_manifest.h"

namespace waverless::app {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

AppManifest parseOk(std::string_view yaml) {
  absl::StatusOr<AppManifest> m = parseManifest(yaml, "demo");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : AppManifest{};
}

TEST(AppManifestWarnings, SelfLoop) {
  const AppManifest m = parseOk(R"(fns:
  start:
    event: [http_app]
    kvs:
      chain_{}: [set]
  loop:
    event:
    - kv_set: 0
    args: [kv_key(0)]
    kvs:
      chain_{}: [get, set, delete]
)");
  ASSERT_THAT(m.warnings, SizeIs(1));
  EXPECT_THAT(m.warnings[0], StartsWith("app.yaml:6: fns.loop: kv_set trigger cycle loop -> loop"));
}

TEST(AppManifestWarnings, TwoFunctionCycle) {
  const AppManifest m = parseOk(R"(fns:
  ping:
    event:
    - kv_set: 0
    kvs:
      ping_{}: [get]
      pong_{}: [set]
  pong:
    event:
    - kv_set: 0
    kvs:
      pong_{}: [get]
      ping_{}: [set]
)");
  ASSERT_THAT(m.warnings, SizeIs(1));
  EXPECT_THAT(m.warnings[0],
              StartsWith("app.yaml:2: fns.ping: kv_set trigger cycle ping -> pong -> ping"));
}

TEST(AppManifestWarnings, OverlapNotEqualityMakesTheEdge) {
  // a sets x_{}, which overlaps b's trigger {}_y (both match "x_y"); b sets
  // start_now, which a's trigger start_{} matches.
  const AppManifest m = parseOk(R"(fns:
  a:
    event:
    - kv_set: 0
    kvs:
      start_{}: [get]
      x_{}: [set]
  b:
    event:
    - kv_set: 0
    kvs:
      "{}_y": [get]
      start_now: [set]
)");
  ASSERT_THAT(m.warnings, SizeIs(1));
  EXPECT_THAT(m.warnings[0], HasSubstr("a -> b -> a"));
}

TEST(AppManifestWarnings, AcyclicChainHasNone) {
  const AppManifest m = parseOk(R"(fns:
  a:
    event: [http_app]
    kvs:
      s1_{}: [set]
  b:
    event:
    - kv_set: 0
    kvs:
      s1_{}: [get, delete]
      s2_{}: [set]
  c:
    event:
    - kv_set: 0
    kvs:
      s2_{}: [get]
      s1_done: [get]
)");
  EXPECT_THAT(m.warnings, IsEmpty());
  // Getting or deleting a trigger pattern is no edge; only set is.
}

TEST(AppManifestWarnings, ThreeCycleAndSeparateSelfLoop) {
  const AppManifest m = parseOk(R"(fns:
  c:
    event: [kv_set: 0]
    kvs:
      c_{}: [get]
      a_{}: [set]
  b:
    event: [kv_set: 0]
    kvs:
      b_{}: [get]
      c_{}: [set]
  a:
    event: [kv_set: 0]
    kvs:
      a_{}: [get]
      b_{}: [set]
  s:
    event: [kv_set: 0]
    kvs:
      s_{}: [get, set]
)");
  ASSERT_THAT(m.warnings, SizeIs(2));
  EXPECT_THAT(m.warnings[0],
              StartsWith("app.yaml:12: fns.a: kv_set trigger cycle a -> b -> c -> a"));
  EXPECT_THAT(m.warnings[1], StartsWith("app.yaml:17: fns.s: kv_set trigger cycle s -> s"));
}

}  // namespace
}  // namespace waverless::app
