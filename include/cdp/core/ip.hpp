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

}  // namespace cdp
