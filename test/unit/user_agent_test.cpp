// uap-core's own test cases, run against our parser over its regexes.yaml.
#include "cdp/core/user_agent.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

using namespace cdp;

namespace {

const UserAgentParser& parser() {
    static UserAgentParser p(std::string(CDP_UAP_DIR) + "/regexes.yaml");
    return p;
}

std::string field(const YAML::Node& n, const char* k) {
    const YAML::Node v = n[k];
    return v && !v.IsNull() ? v.as<std::string>() : std::string();
}

struct Tally {
    size_t total = 0, failed = 0;
    std::string first_failures;
    void fail(const std::string& what) {
        if (++failed <= 5) first_failures += what + "\n";
    }
};

}  // namespace

TEST(UserAgent, LoadsTheRules) {
    EXPECT_GT(parser().rule_count(), 1000u);
    EXPECT_EQ(parser().skipped_rule_count(), 0u);
}

TEST(UserAgent, UapCoreBrowserCases) {
    YAML::Node cases = YAML::LoadFile(std::string(CDP_UAP_DIR) + "/tests/test_ua.yaml")["test_cases"];
    Tally t;
    for (const YAML::Node& c : cases) {
        ++t.total;
        std::string ua = field(c, "user_agent_string");
        UserAgentInfo info = parser().parse(ua);
        if (info.browser != field(c, "family") || info.browser_major != field(c, "major") ||
            info.browser_minor != field(c, "minor") || info.browser_patch != field(c, "patch"))
            t.fail(ua + " -> " + info.browser + " " + info.browser_version() + ", want " + field(c, "family"));
    }
    EXPECT_GT(t.total, 1000u);
    EXPECT_EQ(t.failed, 0u) << t.first_failures;
}

TEST(UserAgent, UapCoreOsCases) {
    YAML::Node cases = YAML::LoadFile(std::string(CDP_UAP_DIR) + "/tests/test_os.yaml")["test_cases"];
    Tally t;
    for (const YAML::Node& c : cases) {
        ++t.total;
        std::string ua = field(c, "user_agent_string");
        UserAgentInfo info = parser().parse(ua);
        if (info.os != field(c, "family") || info.os_major != field(c, "major") || info.os_minor != field(c, "minor") ||
            info.os_patch != field(c, "patch") || info.os_patch_minor != field(c, "patch_minor"))
            t.fail(ua + " -> " + info.os + " " + info.os_version() + ", want " + field(c, "family"));
    }
    EXPECT_GT(t.total, 400u);
    EXPECT_EQ(t.failed, 0u) << t.first_failures;
}

TEST(UserAgent, UapCoreDeviceCases) {
    YAML::Node cases = YAML::LoadFile(std::string(CDP_UAP_DIR) + "/tests/test_device.yaml")["test_cases"];
    Tally t;
    for (const YAML::Node& c : cases) {
        ++t.total;
        std::string ua = field(c, "user_agent_string");
        UserAgentInfo info = parser().parse(ua);
        if (info.device != field(c, "family") || info.device_brand != field(c, "brand") ||
            info.device_model != field(c, "model"))
            t.fail(ua + " -> " + info.device + "/" + info.device_brand + "/" + info.device_model);
    }
    EXPECT_GT(t.total, 10000u);
    EXPECT_EQ(t.failed, 0u) << t.first_failures;
}

TEST(UserAgent, DeviceTypes) {
    auto type = [](const char* ua) { return parser().parse(ua).device_type(); };
    EXPECT_EQ(type("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/120.0.0.0 Safari/537.36"),
              "desktop");
    EXPECT_EQ(type("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/17.1 Mobile/15E148 Safari/604.1"),
              "mobile");
    EXPECT_EQ(type("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/16.6 Mobile/15E148 Safari/604.1"),
              "tablet");
    EXPECT_EQ(type("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), "bot");
}

TEST(UserAgent, CacheReturnsTheSameAnswer) {
    CachedUserAgentParser cached(parser(), 2);
    const char* ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    EXPECT_EQ(cached.parse(ua).info.browser, "Firefox");
    EXPECT_EQ(cached.parse(ua).browser_version, "120.0");
    EXPECT_EQ(cached.parse(ua).device_type, "desktop");
    cached.parse("a");
    cached.parse("b");  // over capacity: the cache starts over and still answers
    EXPECT_EQ(cached.parse(ua).info.browser, "Firefox");
}
