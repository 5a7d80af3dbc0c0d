// Script mode: requests one after another on one keep-alive connection,
// each timed from just before its first byte is written to its last byte
// read. For latencies of single operations (cold starts, deploys, long
// chains, word counts) where open-loop load would measure queueing instead.
//
// A script line is:  TAG METHOD PATH [@BODY_FILE] [>SAVE_FILE]
// Blank lines and lines starting with '#' are skipped. Latencies are
// summarised per TAG. --header adds one header to every request (the admin
// token of a node's /api/* calls).
#pragma once

#include <cstdint>
#include <string>

namespace wlbench {

struct ScriptOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string script_path;
  std::string samples_path;  // optional: "<tag> <latency_us> <status>" per request
  std::string header;        // optional: one "Name: value" sent with every request
};

// Prints a JSON summary on stdout; returns a process exit code.
int runScript(const ScriptOptions& options);

}  // namespace wlbench
