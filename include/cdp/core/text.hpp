// Small text helpers shared by the core.
#pragma once
#include "cdp/core/pure.hpp"

#include <string>
#include <string_view>

namespace cdp {

// True when s is well-formed UTF-8 without NUL bytes, i.e. PostgreSQL text can hold it as is.
bool storable_text(std::string_view s);

// Lowercase ASCII copy.
std::string lowercase(std::string_view s);

// Lowercase hexadecimal of the bytes.
std::string to_hex(const unsigned char* bytes, size_t n);

}  // namespace cdp
