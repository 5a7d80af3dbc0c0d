#include "cli/cli_common.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "auth/auth.h"

namespace waverless::cli {

namespace fs = std::filesystem;

std::string Args::get(const std::string& k, const std::string& def) const {
  for (const auto& [f, v] : flags) {
    if (f == k) return v;
  }
  return def;
}

bool Args::has(const std::string& k) const {
  for (const auto& [f, v] : flags) {
    if (f == k) return true;
  }
  return false;
}

Args parse(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s.starts_with("--")) {
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        a.flags.emplace_back(s.substr(2, eq - 2), s.substr(eq + 1));
      } else if (s == "--fsync" || s == "--insecure" || s == "--follow" || s == "--list") {
        a.flags.emplace_back(s.substr(2), "1");
      } else if (i + 1 < argc) {
        a.flags.emplace_back(s.substr(2), argv[++i]);
      } else {
        a.flags.emplace_back(s.substr(2), "");
      }
    } else if (s == "-f") {
      a.flags.emplace_back("follow", "1");
    } else if (s == "-o" && i + 1 < argc) {
      a.flags.emplace_back("output", argv[++i]);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

int fail(const std::string& msg) {
  fprintf(stderr, "waverless: %s\n", msg.c_str());
  return kFailed;
}

int usageError(const std::string& msg) {
  fprintf(stderr, "waverless: %s (see `waverless --help`)\n", msg.c_str());
  return kUsage;
}

bool outputOf(const Args& a, Output& out) {
  std::string v = a.get("output", "table");
  if (v == "table") {
    out = Output::kTable;
  } else if (v == "json") {
    out = Output::kJson;
  } else if (v == "name") {
    out = Output::kName;
  } else {
    usageError("--output wants table, json or name, not '" + v + "'");
    return false;
  }
  return true;
}

http::FetchOptions Client::with(const std::string& bearer, const std::string& content_type,
                                std::chrono::milliseconds timeout) const {
  http::FetchOptions o = options;
  o.content_type = content_type;
  o.timeout = timeout;
  if (!bearer.empty()) o.headers.emplace_back("Authorization", "Bearer " + bearer);
  return o;
}

namespace {

Credentials adminCredentials(const Args& a) {
  Credentials c;
  if (const char* env = getenv("WAVERLESS_TOKEN"); env != nullptr && *env != '\0') {
    c.token = env;
    c.source = "$WAVERLESS_TOKEN";
    return c;
  }
  fs::path path = a.has("token-file") ? fs::path(a.get("token-file"))
                                      : fs::path(a.get("data", "waverless-data")) / "admin.token";
  c.source = path.string();
  auto t = auth::AdminToken::read(path);
  if (t.ok()) c.token = std::move(*t);
  return c;
}

}  // namespace

Client clientOf(const Args& a) {
  Client c;
  c.to = a.get("to", "http://127.0.0.1:2501");
  while (c.to.ends_with("/")) c.to.pop_back();
  c.options.insecure = a.has("insecure");
  c.options.ca_file = a.get("ca");
  c.admin = adminCredentials(a);
  c.app_key = a.get("key");
  if (const char* env = getenv("WAVERLESS_APP_KEY"); c.app_key.empty() && env != nullptr) {
    c.app_key = env;
  }
  return c;
}

std::string refusal(int status, bool admin, const Client& c) {
  if (admin) {
    if (c.admin.token.empty()) {
      return "the node wants its admin token, and none was found in " + c.admin.source +
             " (set $WAVERLESS_TOKEN, --token-file PATH or --data DIR)";
    }
    return std::string(status == 401 ? "the node wants its admin token" : "the node refused") +
           " the admin token from " + c.admin.source +
           " (a node started with another --data or --token-file has another token)";
  }
  if (c.app_key.empty()) return "this app needs its invoke key: --key KEY or $WAVERLESS_APP_KEY";
  return "the node refused the invoke key given with --key or $WAVERLESS_APP_KEY";
}

std::string unreachable(const Client& c, const absl::Status& st) {
  std::string why(st.message());
  if (why.empty()) why = absl::StatusCodeToString(st.code());
  return "no node answers at " + c.to + ": " + why +
         " (start one with `waverless dev`, or point --to at a running node)";
}

absl::StatusOr<std::string> adminGet(const Client& c, const std::string& path) {
  auto r = http::fetch("GET", c.to + path, "",
                       c.with(c.admin.token, "application/octet-stream", std::chrono::seconds(30)));
  if (!r.ok()) return absl::UnavailableError(unreachable(c, r.status()));
  if (r->status == 401 || r->status == 403) {
    return absl::PermissionDeniedError(refusal(r->status, true, c));
  }
  if (r->status != 200) {
    std::string body = r->body;
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return absl::UnknownError("GET " + path + " answered " + std::to_string(r->status) +
                              (body.empty() ? "" : ": " + body));
  }
  return std::move(r->body);
}

}  // namespace waverless::cli
