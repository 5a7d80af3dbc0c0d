// The two expectations the app.yaml tests are written with: a manifest that parses, and the
// message of one that is rejected (always InvalidArgument).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "app/app_manifest.h"

namespace waverless::app {

inline AppManifest parseOk(std::string_view yaml) {
  absl::StatusOr<AppManifest> m = parseManifest(yaml, "demo");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : AppManifest{};
}

// The message of a rejection, which must be an InvalidArgumentError.
inline std::string errorOf(std::string_view yaml) {
  absl::StatusOr<AppManifest> m = parseManifest(yaml, "demo");
  EXPECT_FALSE(m.ok()) << "accepted:\n" << yaml;
  if (m.ok()) return "";
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  return std::string(m.status().message());
}

}  // namespace waverless::app
