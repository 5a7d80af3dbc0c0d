#include "absl/synchronization/mutex.h"
#include "cli/cli.h"

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, so every absl::Mutex (gRPC's locks among them) would
  // record lock order in a global graph: ~2% of a replicated write's CPU, for a check that only
  // a debug build of ours should pay for.
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return waverless::cli::run(argc, argv);
}
