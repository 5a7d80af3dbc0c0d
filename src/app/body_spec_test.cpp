// `body: stream|buffer` on a function (fn_spec_parser.cpp, parseFn).
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

TEST(AppManifestBody, StreamAndBufferParse) {
  auto m = parseManifest(R"(fns:
  up:
    event:
    - http_app:
    body: stream
  down:
    event:
    - http: {method: POST, path: /down}
    args: [http_text]
    body: buffer
  plain:
    event:
    - http: {method: GET, path: /plain}
)",
                         "a");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->find("up")->stream_body);
  EXPECT_FALSE(m->find("down")->stream_body);
  EXPECT_FALSE(m->find("plain")->stream_body);
}

TEST(AppManifestBody, RejectsUnknownModesKvTriggersAndHttpTextArgs) {
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http_app:
    body: chunks
)"),
              StartsWith("app.yaml:5: fns.f.body: \"chunks\" is not one of: buffer, stream"));
  EXPECT_THAT(
      errorOf(R"(fns:
  f:
    event:
    - kv_set: 0
    kvs:
      a_{}: [get]
    body: stream
)"),
      StartsWith("app.yaml:7: fns.f.body: stream needs every event to be http_app or http"));
  EXPECT_THAT(errorOf(R"(fns:
  f:
    event:
    - http_app:
    args: [http_text]
    body: stream
)"),
              StartsWith("app.yaml:6: fns.f.body: a streamed body is read with wl_body_read"));
}

}  // namespace
}  // namespace waverless::app
