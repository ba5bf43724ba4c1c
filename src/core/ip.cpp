#include "cdp/core/ip.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace cdp {

std::string apply_ip_policy(std::string_view address, IpPolicy policy) {
    if (policy == IpPolicy::Drop || address.empty() || address.size() >= INET6_ADDRSTRLEN) return {};
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, address.data(), address.size());
    buf[address.size()] = '\0';
    unsigned char bytes[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, buf, bytes) == 1) {
        if (policy == IpPolicy::Truncate) bytes[3] = 0;
        return inet_ntop(AF_INET, bytes, out, sizeof out) ? std::string(out) : std::string{};
    }
    if (inet_pton(AF_INET6, buf, bytes) == 1) {
        if (policy == IpPolicy::Truncate) std::memset(bytes + 6, 0, 10);
        return inet_ntop(AF_INET6, bytes, out, sizeof out) ? std::string(out) : std::string{};
    }
    return {};
}

}  // namespace cdp
