// User-agent parsing with uap-core's regexes.yaml (the ua-parser project's shared rules) and RE2.
#pragma once
#include "cdp/core/pure.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cdp {

struct UserAgentInfo {
    std::string browser = "Other";  // ua-parser "family"
    std::string browser_major, browser_minor, browser_patch;
    std::string os = "Other";
    std::string os_major, os_minor, os_patch, os_patch_minor;
    std::string device = "Other";
    std::string device_brand, device_model;

    std::string browser_version() const;  // "120.0.1" from the parts that are present
    std::string os_version() const;
    // desktop | mobile | tablet | bot | other, from the device and OS families.
    std::string device_type() const;
};

// Holds the compiled rules of one regexes.yaml; build once per process, parse many times.
class UserAgentParser {
public:
    // Loads and compiles the rules; throws cdp::Error(ConfigError) if the file is unusable.
    explicit UserAgentParser(const std::string& regexes_yaml_path);
    ~UserAgentParser();
    UserAgentParser(const UserAgentParser&) = delete;
    UserAgentParser& operator=(const UserAgentParser&) = delete;

    UserAgentInfo parse(std::string_view user_agent) const;

    // How many rules the file had and how many RE2 could not compile (those are skipped).
    size_t rule_count() const;
    size_t skipped_rule_count() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A parse result with the derived columns already computed.
struct ParsedUserAgent {
    UserAgentInfo info;
    std::string browser_version, os_version, device_type;
};

// A bounded per-process cache in front of a parser: real traffic has few distinct user agents.
class CachedUserAgentParser {
public:
    explicit CachedUserAgentParser(const UserAgentParser& parser, size_t capacity = 10000)
        : parser_(parser), capacity_(capacity) {}
    const ParsedUserAgent& parse(std::string_view user_agent);

private:
    struct Entry {
        std::string user_agent;  // the key's storage
        ParsedUserAgent parsed;
    };
    const UserAgentParser& parser_;
    size_t capacity_;
    // Looked up by view, so a hit allocates nothing; the views point into the entries.
    std::unordered_map<std::string_view, std::unique_ptr<Entry>> cache_;
};

}  // namespace cdp
