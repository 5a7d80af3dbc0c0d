#include "absl/synchronization/mutex.h"
#include "cli/cli.h"

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, so every absl::Mutex (gRPC's locks among them) would
  // record lock order in a global graph: ~2% of a replicated write's CPU, for a check that only
  // our Debug builds (WL_LOCK_ORDER_CHECKS, CMakeLists.txt) should pay for.
#ifndef WL_LOCK_ORDER_CHECKS
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return waverless::cli::run(argc, argv);
}
