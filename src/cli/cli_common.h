// What the `waverless` subcommands share: flags, exit codes, and how a
// client call reaches a node and says why it failed. Private to src/cli/.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_text.h"
#include "http/http_client.h"

namespace waverless::cli {

// Exit codes, as spin and wash use them: 1 the command failed, 2 it was
// called wrongly (unknown command, missing argument, bad flag value).
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;

struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
  std::string get(const std::string& k, const std::string& def = "") const;
  bool has(const std::string& k) const;
};

Args parse(int argc, char** argv, int from);

// "waverless: <msg>" on stderr; kFailed.
int fail(const std::string& msg);
// The same for a wrong call, pointing at the help; kUsage.
int usageError(const std::string& msg);

// --output of the listing commands.
enum class Output { kTable, kJson, kName };
// False (and a message printed) for an unknown value.
bool outputOf(const Args& a, Output& out);

struct Credentials {
  std::string token;  // empty: none found
  std::string source;
};

// How a client call is made: where to, with which credentials.
struct Client {
  std::string to;
  http::FetchOptions options;
  Credentials admin;
  std::string app_key;  // for invoke

  http::FetchOptions with(const std::string& bearer, const std::string& content_type,
                          std::chrono::milliseconds timeout) const;
};

Client clientOf(const Args& a);

// What to tell the user when the node refused the credentials.
std::string refusal(int status, bool admin, const Client& c);

// A call to the node's control API with the admin token. Every failure,
// the node not answering included, comes back as a message a user can act
// on: the node's own text for an HTTP error, what to check otherwise.
absl::StatusOr<std::string> adminGet(const Client& c, const std::string& path);
// The message for a node that could not be reached.
std::string unreachable(const Client& c, const absl::Status& st);

using common::jsonEscape;

// Client commands (client_commands.cpp).
int runApps(const Args& a, const Client& c);
int runLogs(const Args& a, const Client& c);
int runStatus(const Args& a, const Client& c);
// `load` (load.cpp).
int runLoad(const Args& a, const Client& c);
// `new` (templates.cpp) and `completion` (completion.cpp).
int runNew(const Args& a);
int runCompletion(const Args& a);

}  // namespace waverless::cli
