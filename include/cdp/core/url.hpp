// URLs as the web sends them: parts, query parameters, referrer classification.
#pragma once
#include "cdp/core/pure.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace cdp {

struct UrlParts {
    std::string_view scheme;  // "https" (empty when the text has no scheme)
    std::string_view host;    // lowercase not guaranteed; no port, no user info
    std::string_view path;    // "/a/b" ("" when absent)
    std::string_view query;   // without the "?"
};

// Splits an absolute URL ("https://user@Host:8080/p?q#f") or a path ("/p?q") into parts.
UrlParts split_url(std::string_view url);

// The decoded value of the first query parameter with this name ("+" and %XX decoded), or "".
std::string query_param(std::string_view query, std::string_view name);

// Where a visit came from, by the referrer's host: "search", "social", "email", "internal"
// (the page's own host, its subdomains, or one of internal_domains), or "unknown".
// An empty referrer host is a direct visit and yields "".
std::string_view referrer_medium(std::string_view referrer_host, std::string_view page_host,
                            const std::vector<std::string>& internal_domains);

// Splits "a.com, b.org" into lowercase trimmed entries.
std::vector<std::string> split_domain_list(std::string_view list);

}  // namespace cdp
