// A load to run, as a user describes it (CLI flags, the console's form),
// checked and turned into the open-loop engine's options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "load/open_loop.h"

namespace waverless::load {

struct LoadSpec {
  std::string method = "POST";
  std::string path;  // "/app" or "/app/fn"
  std::string body;
  std::string extra_headers;        // whole lines, e.g. an invoke key's Authorization
  std::string arrival = "poisson";  // poisson | constant | burst | trace
  double rate = 100;                // req/s (burst: burst * 1000 / period_ms)
  double duration_s = 10;
  int connections = 16;
  int burst = 10;          // burst: requests at once
  double period_ms = 100;  // burst: every period
  // trace: req/s during each second (Poisson within it); the duration is
  // its length.
  std::vector<double> trace;
  uint64_t seed = 1;
};

// InvalidArgument naming the field for what cannot run: an unknown
// arrival, a rate, duration or connection count out of range
// (max_duration_s bounds the duration).
absl::StatusOr<OpenLoopOptions> openLoopOptions(const LoadSpec& spec, const std::string& host,
                                                uint16_t port, double max_duration_s);

std::string specJson(const LoadSpec& spec);

// A trace's per-second rates from text: numbers separated by newlines,
// commas or spaces ('#' starts a comment). InvalidArgument naming the bad
// entry.
absl::StatusOr<std::vector<double>> parseTrace(std::string_view text);

}  // namespace waverless::load
