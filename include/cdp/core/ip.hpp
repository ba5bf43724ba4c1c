// The IP address policy: keep, truncate to a network, or drop.
#pragma once
#include "cdp/core/pure.hpp"

#include <string>
#include <string_view>

namespace cdp {

enum class IpPolicy { Full, Truncate, Drop };

// Applies the policy to an address as sent. Truncation keeps the /24 of IPv4 and the /48 of
// IPv6 (the precision of city-level geolocation, as Google Analytics does). Returns "" for
// Drop and for text that is not an IP address.
std::string apply_ip_policy(std::string_view address, IpPolicy policy);

// JSON text (perhaps malformed) with the string value of every "ip" member replaced by what the
// policy keeps of it: the raw text of a rejected event must not keep what an accepted one
// would not. Replaying the result gives the same stored address as replaying the original.
std::string scrub_ip_members(std::string_view json, IpPolicy policy);

}  // namespace cdp
