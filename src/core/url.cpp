#include "cdp/core/url.hpp"

#include "cdp/core/text.hpp"

#include <algorithm>
#include <array>

namespace cdp {

UrlParts split_url(std::string_view url) {
    UrlParts parts;
    std::string_view rest = url;
    size_t colon = rest.find("://");
    bool has_authority = false;
    if (colon != std::string_view::npos && colon > 0 && rest.find_first_of("/?#") > colon) {
        parts.scheme = rest.substr(0, colon);
        rest.remove_prefix(colon + 3);
        has_authority = true;
    } else if (rest.rfind("//", 0) == 0) {  // protocol-relative: "//host/path"
        rest.remove_prefix(2);
        has_authority = true;
    }
    if (has_authority) {
        size_t end = rest.find_first_of("/?#");
        std::string_view authority = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        size_t at = authority.rfind('@');
        if (at != std::string_view::npos) authority.remove_prefix(at + 1);
        if (!authority.empty() && authority.front() == '[') {  // IPv6 literal keeps its brackets
            size_t close = authority.find(']');
            parts.host = authority.substr(0, close == std::string_view::npos ? authority.size() : close + 1);
        } else {
            parts.host = authority.substr(0, authority.find(':'));
        }
    }
    size_t hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    size_t q = rest.find('?');
    parts.path = rest.substr(0, q);
    if (q != std::string_view::npos) parts.query = rest.substr(q + 1);
    return parts;
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

bool ends_with_domain(std::string_view host, std::string_view domain) {
    if (domain.empty() || host.size() < domain.size()) return false;
    if (host.compare(host.size() - domain.size(), domain.size(), domain) != 0) return false;
    return host.size() == domain.size() || host[host.size() - domain.size() - 1] == '.';
}

std::string_view strip_www(std::string_view host) {
    if (host.rfind("www.", 0) == 0) host.remove_prefix(4);
    return host;
}

}  // namespace

std::string query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (key != name) continue;
        if (eq == std::string_view::npos) return {};
        std::string value = percent_decode(pair.substr(eq + 1));
        // A value that does not decode to text (%FF, %00) is kept as it was sent.
        return storable_text(value) ? value : std::string(pair.substr(eq + 1));
    }
    return {};
}

std::vector<std::string> split_domain_list(std::string_view list) {
    std::vector<std::string> out;
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!item.empty()) out.push_back(lowercase(item));
    }
    return out;
}

namespace {
// s in lowercase: s itself when it has no capitals, else a lowercased copy kept in storage.
std::string_view lower_view(std::string_view s, std::string& storage) {
    for (char c : s) {
        if (c >= 'A' && c <= 'Z') {
            storage = lowercase(s);
            return storage;
        }
    }
    return s;
}
}  // namespace

std::string_view referrer_medium(std::string_view referrer_host, std::string_view page_host,
                            const std::vector<std::string>& internal_domains) {
    if (referrer_host.empty()) return {};
    std::string host_lc, page_lc;  // used only when the hosts hold capitals (callers mostly pass lowercase)
    std::string_view host = strip_www(lower_view(referrer_host, host_lc));
    std::string_view page = strip_www(lower_view(page_host, page_lc));
    if (!page.empty() && (ends_with_domain(host, page) || ends_with_domain(page, host))) return "internal";
    for (const std::string& d : internal_domains)
        if (ends_with_domain(host, strip_www(d))) return "internal";

    // Web mail first: mail.google.com is email, not search.
    static const std::array<std::string_view, 10> kEmail = {
        "mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.yahoo.com",
        "mail.aol.com", "mail.proton.me", "mail.zoho.com", "mail.yandex.ru", "webmail"};
    for (std::string_view d : kEmail)
        if (ends_with_domain(host, d) || host.rfind(d, 0) == 0) return "email";

    // Search engines are matched by their registered name, whatever the country suffix.
    static const std::array<std::string_view, 12> kSearch = {
        "google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "qwant", "naver", "seznam",
        "startpage", "search.brave"};
    static const std::array<std::string_view, 18> kSocial = {
        "facebook.com", "m.facebook.com", "l.facebook.com", "instagram.com", "t.co", "twitter.com", "x.com",
        "linkedin.com", "lnkd.in", "pinterest.com", "reddit.com", "youtube.com", "tiktok.com",
        "snapchat.com", "threads.net", "tumblr.com", "vk.com", "weibo.com"};
    for (std::string_view d : kSocial)
        if (ends_with_domain(host, d)) return "social";
    for (std::string_view name : kSearch) {
        size_t pos = host.find(name);
        while (pos != std::string_view::npos) {
            bool starts = pos == 0 || host[pos - 1] == '.';
            size_t after = pos + name.size();
            if (starts && after < host.size() && host[after] == '.') return "search";
            pos = host.find(name, pos + 1);
        }
    }
    return "unknown";
}

}  // namespace cdp
