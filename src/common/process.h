// Runs a child program to completion, capturing its combined output.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless {

struct ProcessResult {
  int exit_code = 0;
  std::string output;  // stdout and stderr interleaved
};

// Runs argv[0] (searched in PATH) with argv; never throws. An error status
// means the program could not be started; a nonzero exit is a result.
absl::StatusOr<ProcessResult> runProcess(const std::vector<std::string>& argv);

}  // namespace waverless
