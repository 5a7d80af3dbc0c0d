#include "common/status_map.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/include/waverless.h"

namespace waverless::common {

using absl::StatusCode;

bool isRetryable(const absl::Status& s) { return s.code() == StatusCode::kUnavailable; }

int httpStatus(const absl::Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

int32_t guestCode(const absl::Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return WL_OK;
    case StatusCode::kNotFound:
      return WL_ERR_NOT_FOUND;
    case StatusCode::kPermissionDenied:
      return WL_ERR_PERMISSION;
    case StatusCode::kInvalidArgument:
      return WL_ERR_INVALID;
    case StatusCode::kResourceExhausted:
      return WL_ERR_TOO_LARGE;
    case StatusCode::kUnavailable:
      return WL_ERR_UNAVAILABLE;
    case StatusCode::kDeadlineExceeded:
      return WL_ERR_TIMEOUT;
    case StatusCode::kAborted:
      return WL_ERR_FAILED;
    default:
      // Unimplemented included: it will not start working on a retry.
      return WL_ERR_IO;
  }
}

StatusCode fromGuestFail(int32_t wl) {
  switch (wl) {
    case WL_ERR_NOT_FOUND:
      return StatusCode::kNotFound;
    case WL_ERR_PERMISSION:
      return StatusCode::kPermissionDenied;
    case WL_ERR_INVALID:
      return StatusCode::kInvalidArgument;
    case WL_ERR_TOO_LARGE:
      return StatusCode::kResourceExhausted;
    case WL_ERR_UNAVAILABLE:
      return StatusCode::kUnavailable;
    case WL_ERR_TIMEOUT:
      return StatusCode::kDeadlineExceeded;
    default:
      return StatusCode::kInternal;
  }
}

int32_t toWire(const absl::Status& s) { return static_cast<int32_t>(s.code()); }

absl::Status fromWire(int32_t code, absl::string_view message) {
  constexpr int32_t kLast = static_cast<int32_t>(StatusCode::kUnauthenticated);
  if (code < 0 || code > kLast) {
    return absl::UnknownError(absl::StrCat("peer sent status code ", code, ": ", message));
  }
  return absl::Status(static_cast<StatusCode>(code), message);
}

absl::Status fromRpc(int grpc_code, absl::string_view message) {
  switch (grpc_code) {
    case static_cast<int>(StatusCode::kOk):
      return absl::OkStatus();
    case static_cast<int>(StatusCode::kDeadlineExceeded):
      return absl::DeadlineExceededError(message);
    case static_cast<int>(StatusCode::kUnavailable):
    case static_cast<int>(StatusCode::kCancelled):  // the channel shut down mid-call
      return absl::UnavailableError(message);
    default:
      return fromWire(grpc_code, message);
  }
}

}  // namespace waverless::common
