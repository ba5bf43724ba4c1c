// A 128-bit non-cryptographic hash (MurmurHash3 x64_128) for dedup keys and stable ids.
#pragma once
#include "cdp/core/pure.hpp"

#include <array>
#include <cstdint>
#include <string_view>

namespace cdp {

using Hash128 = std::array<unsigned char, 16>;

// MurmurHash3_x64_128 of the bytes with the seed, as 16 bytes (h1 then h2, little-endian).
Hash128 hash128(std::string_view bytes, std::uint32_t seed = 0);

}  // namespace cdp
