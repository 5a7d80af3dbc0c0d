// A request's trigger tree, shared by request_runner.cpp (which launches and
// completes invocations) and request_host.cpp (what the guests' host calls
// do). Private to src/worker.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "worker/request_runner.h"

namespace waverless::worker {

using Clock = std::chrono::steady_clock;

// One invocation in a request's trigger tree.
struct RequestRunner::Invocation {
  Invocation* parent = nullptr;
  const app::FnSpec* fn = nullptr;
  FnMetrics* metrics = nullptr;
  uint32_t depth = 0;  // 0: the entry
  uint64_t seq = 0;    // its index in the request's invocations (wl_invocation_id)
  int pending = 0;     // unfinished descendants
  bool descendant_failed = false;
  bool ended = false;
  std::vector<wasm::Resumer> waiters;  // wl_wait_triggered callers
};

struct RequestRunner::Request {
  std::string id;
  // What invocation ids start with: the request id, and for a part of a
  // request run for another node a node-local segment too, so that the ids
  // of two parts run here never collide (see wl_invocation_id).
  std::string tree_id;
  // A durable trigger's run: the entry's wl_invocation_id is its record's id.
  std::string root_id;
  uint32_t depth = 0;  // of the entry: a part of a tree run elsewhere continues its depth
  std::shared_ptr<const meta::DeployedApp> app;
  Clock::time_point start;
  Clock::time_point deadline;  // of the whole tree: the entry's timeout
  std::chrono::milliseconds timeout{0};
  // Cancelled when the request ends early; every invocation carries it.
  std::shared_ptr<common::CancelScope> scope;
  std::mutex mu;
  // Guarded by mu:
  std::deque<Invocation> invocations;             // stable addresses; [0] is the entry
  absl::AnyInvocable<void(RequestOutcome)> done;  // moved out by the one who answers
  std::shared_ptr<http::BodyStream> body;         // for an entry declared `body: stream`
  bool root_done = false;
  wasm::InvocationResult root_result;
  absl::Status first_failure;  // first failed triggered function
  bool finished = false;       // every invocation has ended
  uint32_t in_flight = 0;      // invocations queued or running
  bool timer_armed = false;
  common::TimerQueue::TimerId timer = 0;
  // Not guarded: whoever flips it first answers, and only it touches done.
  std::atomic<bool> answered{false};
};

}  // namespace waverless::worker
