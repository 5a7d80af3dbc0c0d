// A load run's result as JSON, shared by `waverless load --output json` and
// the console's experiments: counts by outcome, throughput, the latency
// summary, a per-second timeline and points of the latency CDF.
#pragma once

#include <string>

#include "load/open_loop.h"

namespace waverless::load {

// {"scheduled":N,"answered":N,"ok":N,"errors":{"<status>":N},
//  "failed_connections":N,"unanswered":N,"seconds":S,"throughput":R,
//  "latency_us":{"n","min","mean","p50","p90","p99","p999","max"},"timeline":[{"s":K,"due":N,"ok":N,"p50_us":X,"p99_us":Y}],
//  "cdf":[[latency_us,percentile],...]}   (ok answers only in latency and cdf)
std::string resultJson(const OpenLoopResult& r);

}  // namespace waverless::load
