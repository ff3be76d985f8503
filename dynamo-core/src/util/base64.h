// Base64 (RFC 4648, padded), for contexts and values in text and JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dynamo {

std::string Base64Encode(std::string_view bytes);
// nullopt when text is not valid padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace dynamo
