// JSON string escaping, for the hand-built JSON the control API and the CLI
// print (quotes, backslashes and control characters; bytes >= 0x80 pass
// through, so UTF-8 stays UTF-8).
#pragma once

#include <string>
#include <string_view>

namespace waverless::common {

std::string jsonEscape(std::string_view s);

}  // namespace waverless::common
