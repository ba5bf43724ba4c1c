#include "cdp/core/ip.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace cdp {

namespace {

// Dotted-quad IPv4 in canonical form (no leading zeros, each part 0..255), the common case.
bool parse_ipv4(std::string_view s, unsigned char out[4]) {
    size_t p = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (p >= s.size() || s[p] != '.') return false;
            ++p;
        }
        size_t start = p;
        unsigned v = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9' && p - start < 3) v = v * 10 + static_cast<unsigned>(s[p++] - '0');
        if (p == start || v > 255 || (p - start > 1 && s[start] == '0')) return false;
        out[part] = static_cast<unsigned char>(v);
    }
    return p == s.size();
}

}  // namespace

std::string apply_ip_policy(std::string_view address, IpPolicy policy) {
    if (policy == IpPolicy::Drop || address.empty() || address.size() >= INET6_ADDRSTRLEN) return {};
    unsigned char v4[4];
    if (parse_ipv4(address, v4)) {
        if (policy == IpPolicy::Full) return std::string(address);
        return std::to_string(v4[0]) + "." + std::to_string(v4[1]) + "." + std::to_string(v4[2]) + ".0";
    }
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

std::string scrub_ip_members(std::string_view json, IpPolicy policy) {
    if (policy == IpPolicy::Full || json.find("\"ip\"") == std::string_view::npos) return std::string(json);
    auto space = [&](size_t p) { return p < json.size() && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n' || json[p] == '\r'); };
    std::string out;
    out.reserve(json.size());
    size_t pos = 0;  // copied up to here
    for (size_t key = json.find("\"ip\"", pos); key != std::string_view::npos; key = json.find("\"ip\"", pos)) {
        size_t p = key + 4;
        while (space(p)) ++p;
        if (p < json.size() && json[p] == ':') {
            ++p;
            while (space(p)) ++p;
        }
        if (p >= json.size() || json[p] != '"' || json[p - 1] == '"') {
            out.append(json.substr(pos, key + 4 - pos));  // not a member with a string value
            pos = key + 4;
            continue;
        }
        size_t start = p + 1, end = start;
        while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
        end = std::min(end, json.size());
        out.append(json.substr(pos, start - pos));
        out.append(apply_ip_policy(json.substr(start, end - start), policy));
        pos = end;
    }
    out.append(json.substr(pos));
    return out;
}

}  // namespace cdp
