// A small blocking HTTP/1.1 client for the CLI and tests.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace waverless::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// url: http://host:port/path?query
absl::StatusOr<ClientResponse> fetch(const std::string& method, const std::string& url,
                                     const std::string& body = "",
                                     const std::string& content_type = "application/octet-stream",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace waverless::http
