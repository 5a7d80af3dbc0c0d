// The one place status codes are converted. Inside a node errors are
// absl::Status; at each edge a status becomes something else, and back:
//
//   absl <-> WL_ERR_*   a host call's return code to a guest (guestCode), and
//                       the code a guest passes to wl_fail (fromGuestFail);
//   absl  -> HTTP       the status of an HTTP answer (httpStatus);
//   absl <-> wire       the `code` of Ack, KvReply and InvokeDone (toWire /
//                       fromWire): absl's code number; a number a peer sends
//                       that is not one becomes Unknown, never a valid code;
//   gRPC  -> absl       a failed unary peer call (fromRpc).
//
// The codes callers act on: NotFound, PermissionDenied, InvalidArgument,
// ResourceExhausted (too large / over quota), DeadlineExceeded, and
// Unavailable, the only retryable one. A permanent failure is never mapped to
// Unavailable or WL_ERR_UNAVAILABLE: a retry of it can only fail again, or
// run twice what should run once.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace waverless::common {

// True only for Unavailable: the operation did not happen (or is not known to
// have happened) for a reason that may pass.
bool isRetryable(const absl::Status& status);

// absl -> HTTP: 200, 400 InvalidArgument, 403 PermissionDenied, 404 NotFound,
// 409 AlreadyExists, 429 ResourceExhausted, 503 Unavailable,
// 504 DeadlineExceeded, 500 anything else.
int httpStatus(const absl::Status& status);

// absl -> the WL_ERR_* code a host call returns (sdk/include/waverless.h).
// WL_ERR_UNAVAILABLE exactly when isRetryable(status).
int32_t guestCode(const absl::Status& status);

// wl_fail's code -> the status the invocation ends with; its HTTP status is
// the one waverless.h documents for that code (unknown codes: Internal, 500).
absl::StatusCode fromGuestFail(int32_t wl_code);

// absl <-> the code field of Ack / KvReply / InvokeDone.
int32_t toWire(const absl::Status& status);
absl::Status fromWire(int32_t code, absl::string_view message);

// A unary peer call that failed with gRPC status `grpc_code` (gRPC's code
// numbers are absl's). Transport failures (the peer is down, the channel
// broke) are Unavailable and DeadlineExceeded stays; a failure the peer or
// the message caused (too large, unimplemented, not found) keeps its code, so
// it is not retried.
absl::Status fromRpc(int grpc_code, absl::string_view message);

}  // namespace waverless::common
