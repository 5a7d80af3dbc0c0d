#include "common/status_map.h"

#include <gtest/gtest.h>

#include "sdk/include/waverless.h"

namespace waverless::common {
namespace {

using absl::StatusCode;

std::vector<StatusCode> allCodes() {
  std::vector<StatusCode> out;
  for (int c = 0; c <= static_cast<int>(StatusCode::kUnauthenticated); ++c) {
    out.push_back(static_cast<StatusCode>(c));
  }
  return out;
}

absl::Status of(StatusCode c) { return absl::Status(c, "why"); }

TEST(StatusMap, HttpStatusOfEachCodeCallersActOn) {
  EXPECT_EQ(httpStatus(absl::OkStatus()), 200);
  EXPECT_EQ(httpStatus(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(httpStatus(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(httpStatus(absl::NotFoundError("x")), 404);
  EXPECT_EQ(httpStatus(absl::AlreadyExistsError("x")), 409);
  EXPECT_EQ(httpStatus(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(httpStatus(absl::UnavailableError("x")), 503);
  EXPECT_EQ(httpStatus(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(httpStatus(absl::InternalError("x")), 500);
  EXPECT_EQ(httpStatus(absl::FailedPreconditionError("x")), 500);
}

TEST(StatusMap, OnlyUnavailableIsRetryableAtEveryEdge) {
  for (StatusCode c : allCodes()) {
    SCOPED_TRACE(absl::StatusCodeToString(c));
    bool retryable = c == StatusCode::kUnavailable;
    EXPECT_EQ(isRetryable(of(c)), retryable);
    EXPECT_EQ(guestCode(of(c)) == WL_ERR_UNAVAILABLE, retryable);
    EXPECT_EQ(httpStatus(of(c)) == 503, retryable);
  }
  // In particular: a host call the platform does not implement is permanent.
  EXPECT_EQ(guestCode(absl::UnimplementedError("x")), WL_ERR_IO);
}

TEST(StatusMap, GuestCodes) {
  EXPECT_EQ(guestCode(absl::OkStatus()), WL_OK);
  EXPECT_EQ(guestCode(absl::NotFoundError("x")), WL_ERR_NOT_FOUND);
  EXPECT_EQ(guestCode(absl::PermissionDeniedError("x")), WL_ERR_PERMISSION);
  EXPECT_EQ(guestCode(absl::InvalidArgumentError("x")), WL_ERR_INVALID);
  EXPECT_EQ(guestCode(absl::ResourceExhaustedError("x")), WL_ERR_TOO_LARGE);
  EXPECT_EQ(guestCode(absl::DeadlineExceededError("x")), WL_ERR_TIMEOUT);
  EXPECT_EQ(guestCode(absl::AbortedError("x")), WL_ERR_FAILED);
  EXPECT_EQ(guestCode(absl::InternalError("x")), WL_ERR_IO);
}

// waverless.h documents wl_fail's HTTP status per code; the mapping keeps it.
TEST(StatusMap, WlFailCodeGivesTheDocumentedHttpStatus) {
  auto http = [](int32_t wl) { return httpStatus(absl::Status(fromGuestFail(wl), "x")); };
  EXPECT_EQ(http(WL_ERR_INVALID), 400);
  EXPECT_EQ(http(WL_ERR_PERMISSION), 403);
  EXPECT_EQ(http(WL_ERR_NOT_FOUND), 404);
  EXPECT_EQ(http(WL_ERR_TOO_LARGE), 429);
  EXPECT_EQ(http(WL_ERR_UNAVAILABLE), 503);
  EXPECT_EQ(http(WL_ERR_TIMEOUT), 504);
  EXPECT_EQ(http(WL_ERR_IO), 500);
  EXPECT_EQ(http(WL_ERR_FAILED), 500);
  EXPECT_EQ(http(WL_OK), 500);  // wl_fail(WL_OK, ...) still fails the invocation
  EXPECT_EQ(http(-3), 500);
  EXPECT_EQ(http(1000), 500);
}

TEST(StatusMap, GuestCodesRoundTrip) {
  for (StatusCode c :
       {StatusCode::kNotFound, StatusCode::kPermissionDenied, StatusCode::kInvalidArgument,
        StatusCode::kResourceExhausted, StatusCode::kUnavailable, StatusCode::kDeadlineExceeded}) {
    EXPECT_EQ(fromGuestFail(guestCode(of(c))), c) << absl::StatusCodeToString(c);
  }
}

TEST(StatusMap, WireRoundTripsEveryCode) {
  for (StatusCode c : allCodes()) {
    absl::Status back = fromWire(toWire(of(c)), "why");
    EXPECT_EQ(back.code(), c);
    if (c != StatusCode::kOk) {
      EXPECT_EQ(back.message(), "why");
    }
  }
}

TEST(StatusMap, UnknownWireCodeIsUnknownNotRetryable) {
  for (int32_t bad : {-1, 17, 1000, INT32_MIN, INT32_MAX}) {
    absl::Status st = fromWire(bad, "boom");
    EXPECT_EQ(st.code(), StatusCode::kUnknown) << bad;
    EXPECT_NE(st.message().find(std::to_string(bad)), absl::string_view::npos) << st;
    EXPECT_NE(st.message().find("boom"), absl::string_view::npos) << st;
    EXPECT_FALSE(isRetryable(st));
  }
}

TEST(StatusMap, RpcTransportFailuresAreRetryablePeerFailuresAreNot) {
  EXPECT_TRUE(fromRpc(0, "").ok());
  EXPECT_EQ(fromRpc(static_cast<int>(StatusCode::kUnavailable), "m").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(fromRpc(static_cast<int>(StatusCode::kCancelled), "m").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(fromRpc(static_cast<int>(StatusCode::kDeadlineExceeded), "m").code(),
            StatusCode::kDeadlineExceeded);
  // A message over the size limit, a method the peer lacks, a missing app.
  for (StatusCode c :
       {StatusCode::kResourceExhausted, StatusCode::kUnimplemented, StatusCode::kNotFound,
        StatusCode::kInvalidArgument, StatusCode::kInternal, StatusCode::kUnknown}) {
    absl::Status st = fromRpc(static_cast<int>(c), "m");
    EXPECT_EQ(st.code(), c);
    EXPECT_FALSE(isRetryable(st));
  }
  EXPECT_EQ(fromRpc(99, "m").code(), StatusCode::kUnknown);
}

}  // namespace
}  // namespace waverless::common
