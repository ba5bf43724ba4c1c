#include "cdp/core/user_agent.hpp"

#include <re2/re2.h>
#include <re2/set.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "cdp/core/error.hpp"

namespace cdp {

namespace {

// One rule of a section; replacement templates may refer to groups as $1..$9.
struct Rule {
    std::unique_ptr<RE2> re;
    std::vector<std::string> replacements;  // per output field, "" when the yaml gives none
    std::vector<bool> has_replacement;
};

// A section of regexes.yaml (user_agent_parsers, os_parsers, device_parsers): the rules in
// order, and one RE2::Set over all of them that tells which rules match at all.
struct Section {
    std::vector<Rule> rules;
    std::unique_ptr<RE2::Set> set;
    std::vector<int> set_to_rule;  // set index -> rule index
    size_t skipped = 0;

    // The first rule (in file order) that matches, or -1.
    int first_match(std::string_view text) const {
        std::vector<int> hits;
        RE2::Set::ErrorInfo info{};
        if (set && set->Match(re2::StringPiece(text.data(), text.size()), &hits, &info)) {
            int best = -1;
            for (int h : hits) {
                int r = set_to_rule[h];
                if (best < 0 || r < best) best = r;
            }
            return best;
        }
        if (set && info.kind == RE2::Set::kNoError) return -1;  // matched nothing
        // The set could not answer (DFA out of memory): try the rules in turn.
        for (size_t i = 0; i < rules.size(); ++i)
            if (rules[i].re && RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *rules[i].re))
                return static_cast<int>(i);
        return -1;
    }
};

void trim(std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) {
        s.clear();
        return;
    }
    size_t e = s.find_last_not_of(" \t");
    s = s.substr(b, e - b + 1);
}

// Replaces $1..$9 in a template by the groups (missing groups become empty), then trims.
std::string substitute(const std::string& tmpl, const std::vector<std::string>& groups) {
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] == '$' && i + 1 < tmpl.size() && tmpl[i + 1] >= '1' && tmpl[i + 1] <= '9') {
            size_t g = static_cast<size_t>(tmpl[i + 1] - '1');
            if (g < groups.size()) out += groups[g];
            ++i;
        } else {
            out.push_back(tmpl[i]);
        }
    }
    trim(out);
    return out;
}

Section load_section(const YAML::Node& node, const std::vector<std::string>& fields) {
    Section section;
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(256 << 20);
    section.set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
    if (!node || !node.IsSequence()) return section;
    for (const YAML::Node& item : node) {
        check_for_cancel();
        Rule rule;
        std::string pattern = item["regex"].as<std::string>("");
        if (item["regex_flag"] && item["regex_flag"].as<std::string>("") == "i") pattern = "(?i)" + pattern;
        for (const std::string& f : fields) {
            const YAML::Node r = item[f];
            rule.has_replacement.push_back(r && !r.IsNull());
            rule.replacements.push_back(r && !r.IsNull() ? r.as<std::string>("") : std::string());
        }
        auto re = std::make_unique<RE2>(pattern, options);
        std::string error;
        if (!re->ok() || section.set->Add(pattern, &error) < 0) {
            ++section.skipped;
            section.rules.push_back(std::move(rule));  // kept as a hole so indexes stay in file order
            continue;
        }
        rule.re = std::move(re);
        section.set_to_rule.push_back(static_cast<int>(section.rules.size()));
        section.rules.push_back(std::move(rule));
    }
    if (!section.set->Compile()) section.set.reset();
    return section;
}

// Runs the rule on the text and returns its capture groups ("" for groups that did not take part).
std::vector<std::string> groups_of(const Rule& rule, std::string_view text) {
    int n = rule.re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> pieces(static_cast<size_t>(n) + 1);
    std::vector<std::string> groups(static_cast<size_t>(std::max(n, 0)));
    if (rule.re->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, pieces.data(),
                       n + 1)) {
        for (int i = 0; i < n; ++i)
            if (pieces[i + 1].data() != nullptr) groups[i].assign(pieces[i + 1].data(), pieces[i + 1].size());
    }
    return groups;
}

// The value of output field k: its replacement (with groups substituted) or group `group` (1-based).
std::string field(const Rule& rule, const std::vector<std::string>& groups, size_t k, size_t group) {
    if (rule.has_replacement[k]) return substitute(rule.replacements[k], groups);
    if (group >= 1 && group <= groups.size()) {
        std::string v = groups[group - 1];
        trim(v);
        return v;
    }
    return {};
}

}  // namespace

struct UserAgentParser::Impl {
    Section ua, os, device;
};

UserAgentParser::UserAgentParser(const std::string& path) : impl_(std::make_unique<Impl>()) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        throw Error(ErrorKind::ConfigError, "could not load user-agent rules", "File \"" + path + "\": " + e.what(),
                    "Install Debian's uap-core package or set cdp.uap_regexes_path to a regexes.yaml.");
    }
    try {
        impl_->ua = load_section(root["user_agent_parsers"],
                                 {"family_replacement", "v1_replacement", "v2_replacement", "v3_replacement"});
        impl_->os = load_section(root["os_parsers"], {"os_replacement", "os_v1_replacement", "os_v2_replacement",
                                                      "os_v3_replacement", "os_v4_replacement"});
        impl_->device =
            load_section(root["device_parsers"], {"device_replacement", "brand_replacement", "model_replacement"});
    } catch (const YAML::Exception& e) {
        throw Error(ErrorKind::ConfigError, "could not read user-agent rules", "File \"" + path + "\": " + e.what(),
                    "The file must have uap-core's regexes.yaml layout.");
    }
    if (impl_->ua.rules.empty())
        throw Error(ErrorKind::ConfigError, "user-agent rules file has no user_agent_parsers",
                    "File \"" + path + "\".", "Point cdp.uap_regexes_path at uap-core's regexes.yaml.");
}

UserAgentParser::~UserAgentParser() = default;

size_t UserAgentParser::rule_count() const {
    return impl_->ua.rules.size() + impl_->os.rules.size() + impl_->device.rules.size();
}

size_t UserAgentParser::skipped_rule_count() const {
    return impl_->ua.skipped + impl_->os.skipped + impl_->device.skipped;
}

UserAgentInfo UserAgentParser::parse(std::string_view ua) const {
    UserAgentInfo info;
    int r = impl_->ua.first_match(ua);
    if (r >= 0) {
        const Rule& rule = impl_->ua.rules[r];
        auto g = groups_of(rule, ua);
        std::string family = field(rule, g, 0, 1);
        if (!family.empty()) info.browser = family;
        info.browser_major = field(rule, g, 1, 2);
        info.browser_minor = field(rule, g, 2, 3);
        info.browser_patch = field(rule, g, 3, 4);
    }
    r = impl_->os.first_match(ua);
    if (r >= 0) {
        const Rule& rule = impl_->os.rules[r];
        auto g = groups_of(rule, ua);
        std::string family = field(rule, g, 0, 1);
        if (!family.empty()) info.os = family;
        info.os_major = field(rule, g, 1, 2);
        info.os_minor = field(rule, g, 2, 3);
        info.os_patch = field(rule, g, 3, 4);
        info.os_patch_minor = field(rule, g, 4, 5);
    }
    r = impl_->device.first_match(ua);
    if (r >= 0) {
        const Rule& rule = impl_->device.rules[r];
        auto g = groups_of(rule, ua);
        std::string family = field(rule, g, 0, 1);
        if (!family.empty()) info.device = family;
        info.device_brand = field(rule, g, 1, 0);
        info.device_model = field(rule, g, 2, 1);
    }
    return info;
}

namespace {
std::string join_version(std::initializer_list<const std::string*> parts) {
    std::string out;
    for (const std::string* p : parts) {
        if (p->empty()) break;
        if (!out.empty()) out.push_back('.');
        out += *p;
    }
    return out;
}

bool contains(const std::string& s, std::string_view needle) { return s.find(needle) != std::string::npos; }
}  // namespace

std::string UserAgentInfo::browser_version() const {
    return join_version({&browser_major, &browser_minor, &browser_patch});
}

std::string UserAgentInfo::os_version() const {
    return join_version({&os_major, &os_minor, &os_patch, &os_patch_minor});
}

std::string UserAgentInfo::device_type() const {
    if (device == "Spider" || device_brand == "Spider") return "bot";
    if (contains(device, "iPad") || contains(device, "Tablet") || contains(device, "Kindle") ||
        contains(device_model, "Tablet") || contains(device, "Tab "))
        return "tablet";
    if (contains(device, "iPhone") || contains(device, "iPod") || os == "Android" || os == "iOS" ||
        contains(os, "Windows Phone") || device_brand == "Samsung" || device == "Generic Smartphone" ||
        contains(device, "Mobile") || contains(device, "Phone"))
        return "mobile";
    if (os == "Windows" || os == "Mac OS X" || os == "Linux" || os == "Ubuntu" || os == "Chrome OS" ||
        os == "Fedora" || os == "FreeBSD" || os == "macOS")
        return "desktop";
    return "other";
}

const ParsedUserAgent& CachedUserAgentParser::parse(std::string_view user_agent) {
    auto it = cache_.find(user_agent);
    if (it != cache_.end()) return it->second->parsed;
    if (cache_.size() >= capacity_) cache_.clear();  // crude but bounded; hot agents come back at once
    auto entry = std::make_unique<Entry>();
    entry->user_agent = std::string(user_agent);
    entry->parsed.info = parser_.parse(user_agent);
    entry->parsed.browser_version = entry->parsed.info.browser_version();
    entry->parsed.os_version = entry->parsed.info.os_version();
    entry->parsed.device_type = entry->parsed.info.device_type();
    std::string_view key = entry->user_agent;
    return cache_.emplace(key, std::move(entry)).first->second->parsed;
}

}  // namespace cdp
