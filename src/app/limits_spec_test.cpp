// `limits:`, `auth:` and `instance:` in app.yaml (manifest_parser.cpp, fn_spec_parser.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "app/app_manifest.h"

namespace waverless::app {
namespace {

using ::testing::StartsWith;

std::string errorOf(std::string_view yaml) {
  auto m = parseManifest(yaml, "a");
  return m.ok() ? "ok" : std::string(m.status().message());
}

TEST(AppManifestLimits, DefaultsWhenAbsent) {
  auto m = parseManifest("fns:\n  f:\n    event: [http_app]\n", "a");
  ASSERT_TRUE(m.ok()) << m.status();
  AppLimitsSpec defaults;
  EXPECT_EQ(m->limits.request_invocations, defaults.request_invocations);
  EXPECT_EQ(m->limits.request_concurrency, defaults.request_concurrency);
  EXPECT_EQ(m->limits.trigger_depth, defaults.trigger_depth);
  EXPECT_EQ(m->limits.app_concurrency, defaults.app_concurrency);
  EXPECT_EQ(m->auth, AuthMode::kNone);
  EXPECT_FALSE(m->fns[0].fresh_instance);
}

TEST(AppManifestLimits, AllFieldsParse) {
  auto m = parseManifest(R"(fns:
  f:
    event: [http_app]
    instance: fresh
  g:
    event: [http: {method: GET, path: /g}]
    instance: reuse
limits:
  request_invocations: 50
  request_concurrency: 7
  trigger_depth: 3
  app_concurrency: 9
auth: key
)",
                         "a");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->limits.request_invocations, 50u);
  EXPECT_EQ(m->limits.request_concurrency, 7u);
  EXPECT_EQ(m->limits.trigger_depth, 3u);
  EXPECT_EQ(m->limits.app_concurrency, 9u);
  EXPECT_EQ(m->auth, AuthMode::kKey);
  EXPECT_TRUE(m->find("f")->fresh_instance);
  EXPECT_FALSE(m->find("g")->fresh_instance);
}

TEST(AppManifestLimits, BadValuesNameTheLine) {
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nlimits:\n  trigger_depth: 0\n"),
              StartsWith("app.yaml:5: limits.trigger_depth: \"0\" is not an integer between 1"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nlimits:\n  request_concurrency: -3\n"),
              StartsWith("app.yaml:5: limits.request_concurrency: "));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nlimits:\n  request_invocations: "
                      "99999999999999999999\n"),
              StartsWith("app.yaml:5: limits.request_invocations: "));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nlimits:\n  depth: 3\n"),
              StartsWith("app.yaml:5: limits.depth: unknown field"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nlimits: 5\n"),
              StartsWith("app.yaml:4: limits: "));
}

TEST(AppManifestLimits, BadAuthAndInstance) {
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\nauth: password\n"),
              StartsWith("app.yaml:4: auth: \"password\" is not one of: none, key"));
  EXPECT_THAT(errorOf("fns:\n  f:\n    event: [http_app]\n    instance: new\n"),
              StartsWith("app.yaml:4: fns.f.instance: \"new\" is not one of: reuse, fresh"));
}

}  // namespace
}  // namespace waverless::app
