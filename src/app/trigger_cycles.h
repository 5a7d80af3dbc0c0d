// kv_set trigger cycles in an app: allowed (a chain may stop itself), but
// worth a warning at deploy. Private to src/app.
#pragma once

#include <string_view>

#include "app/app_manifest.h"

namespace waverless::app {

// Appends one warning per self-triggering function and one per larger cycle
// group (showing its shortest cycle) to m.warnings, as "<file>:<line>: ...".
void addTriggerCycleWarnings(AppManifest& m, std::string_view file);

}  // namespace waverless::app
