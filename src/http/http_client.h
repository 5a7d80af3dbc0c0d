// A small blocking HTTP/1.1 client for the CLI and tests; http:// and
// https:// URLs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  // case-insensitive, "" if absent
};

struct FetchOptions {
  std::string content_type = "application/octet-stream";
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::chrono::milliseconds timeout = std::chrono::seconds(120);
  // https: trust this CA bundle (PEM) instead of the system's.
  std::string ca_file;
  // https: do not verify the server's certificate (self-signed, tests).
  bool insecure = false;
};

// url: http[s]://host:port/path?query
absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body, const FetchOptions& options);

absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body = "",
                                     const std::string& content_type = "application/octet-stream",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace waverless::http
