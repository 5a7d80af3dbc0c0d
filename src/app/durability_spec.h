// Private to app/: parsing app.yaml's `durability:` map (key pattern -> replicated | local).
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "app/app_manifest.h"
#include "app/yaml_fields.h"

namespace waverless::app {

absl::StatusOr<std::vector<DurabilityRule>> parseDurability(std::string_view file,
                                                            const yaml::Entry& entry);

}  // namespace waverless::app
