#include "cdp/core/url.hpp"

#include <gtest/gtest.h>

#include "cdp/core/ip.hpp"
#include "cdp/core/text.hpp"

using namespace cdp;

TEST(Url, SplitsParts) {
    UrlParts p = split_url("https://user:pw@Shop.Example.com:8443/p/eco-shoes?utm_source=news&x=1#reviews");
    EXPECT_EQ(p.scheme, "https");
    EXPECT_EQ(p.host, "Shop.Example.com");
    EXPECT_EQ(p.path, "/p/eco-shoes");
    EXPECT_EQ(p.query, "utm_source=news&x=1");
}

TEST(Url, PathOnlyAndProtocolRelative) {
    UrlParts p = split_url("/search?q=a");
    EXPECT_EQ(p.host, "");
    EXPECT_EQ(p.path, "/search");
    EXPECT_EQ(p.query, "q=a");
    UrlParts r = split_url("//cdn.example.com/a.js");
    EXPECT_EQ(r.host, "cdn.example.com");
    EXPECT_EQ(r.path, "/a.js");
    EXPECT_EQ(split_url("https://[2001:db8::1]:8080/x").host, "[2001:db8::1]");
}

TEST(Url, DecodesQueryParameters) {
    std::string_view q = "utm_source=google&utm_campaign=black+friday%202026&utm_term=&flag";
    EXPECT_EQ(query_param(q, "utm_source"), "google");
    EXPECT_EQ(query_param(q, "utm_campaign"), "black friday 2026");
    EXPECT_EQ(query_param(q, "utm_term"), "");
    EXPECT_EQ(query_param(q, "flag"), "");
    EXPECT_EQ(query_param(q, "missing"), "");
    // Bytes that are not text stay as they were sent.
    EXPECT_EQ(query_param("a=%FF%00", "a"), "%FF%00");
    EXPECT_EQ(query_param("a=caf%C3%A9", "a"), "caf\xC3\xA9");
}

TEST(Referrer, ClassifiesMedium) {
    std::vector<std::string> internal = split_domain_list(" Example-Shop.de , checkout.example.com");
    ASSERT_EQ(internal.size(), 2u);
    EXPECT_EQ(internal[0], "example-shop.de");
    EXPECT_EQ(referrer_medium("www.google.com", "example.com", internal), "search");
    EXPECT_EQ(referrer_medium("www.google.co.uk", "example.com", internal), "search");
    EXPECT_EQ(referrer_medium("duckduckgo.com", "example.com", internal), "search");
    EXPECT_EQ(referrer_medium("mail.google.com", "example.com", internal), "email");
    EXPECT_EQ(referrer_medium("outlook.live.com", "example.com", internal), "email");
    EXPECT_EQ(referrer_medium("t.co", "example.com", internal), "social");
    EXPECT_EQ(referrer_medium("l.facebook.com", "example.com", internal), "social");
    EXPECT_EQ(referrer_medium("www.example.com", "example.com", internal), "internal");
    EXPECT_EQ(referrer_medium("blog.example.com", "www.example.com", internal), "internal");
    EXPECT_EQ(referrer_medium("example-shop.de", "example.com", internal), "internal");
    EXPECT_EQ(referrer_medium("news.ycombinator.com", "example.com", internal), "unknown");
    EXPECT_EQ(referrer_medium("googlesyndication.com", "example.com", internal), "unknown");
    EXPECT_EQ(referrer_medium("", "example.com", internal), "");
}

TEST(Ip, AppliesPolicy) {
    EXPECT_EQ(apply_ip_policy("203.0.113.77", IpPolicy::Full), "203.0.113.77");
    EXPECT_EQ(apply_ip_policy("203.0.113.77", IpPolicy::Truncate), "203.0.113.0");
    EXPECT_EQ(apply_ip_policy("2001:db8:abcd:12:1:2:3:4", IpPolicy::Truncate), "2001:db8:abcd::");
    EXPECT_EQ(apply_ip_policy("203.0.113.77", IpPolicy::Drop), "");
    EXPECT_EQ(apply_ip_policy("not an ip", IpPolicy::Full), "");
    EXPECT_EQ(apply_ip_policy("1.2.3.4; DROP TABLE", IpPolicy::Full), "");
    EXPECT_EQ(apply_ip_policy("10.0.0.255", IpPolicy::Truncate), "10.0.0.0");
    EXPECT_EQ(apply_ip_policy("256.1.1.1", IpPolicy::Full), "");
    EXPECT_EQ(apply_ip_policy("1.2.3", IpPolicy::Full), "");
    EXPECT_EQ(apply_ip_policy("::ffff:1.2.3.4", IpPolicy::Full), "::ffff:1.2.3.4");
}

TEST(Text, StorableText) {
    EXPECT_TRUE(storable_text("plain caf\xC3\xA9 \xF0\x9F\x98\x80"));
    EXPECT_FALSE(storable_text(std::string_view("a\0b", 3)));
    EXPECT_FALSE(storable_text("\xFF"));
    EXPECT_FALSE(storable_text("\xC3"));          // truncated sequence
    EXPECT_FALSE(storable_text("\xC0\xAF"));      // overlong
    EXPECT_FALSE(storable_text("\xED\xA0\x80"));  // surrogate
}

TEST(IpPolicy, ScrubsIpMembersOfRawText) {
    const std::string raw = R"({"type":"oops","context":{"ip" : "203.0.113.77","page":{"ip":"2001:db8:abcd:12::1"}},"ipx":"1.2.3.4","note":"ip"})";
    EXPECT_EQ(scrub_ip_members(raw, IpPolicy::Full), raw);
    EXPECT_EQ(scrub_ip_members(raw, IpPolicy::Truncate),
              R"({"type":"oops","context":{"ip" : "203.0.113.0","page":{"ip":"2001:db8:abcd::"}},"ipx":"1.2.3.4","note":"ip"})");
    EXPECT_EQ(scrub_ip_members(raw, IpPolicy::Drop),
              R"({"type":"oops","context":{"ip" : "","page":{"ip":""}},"ipx":"1.2.3.4","note":"ip"})");
    // Malformed text: what can be found is scrubbed, the rest kept as it was.
    EXPECT_EQ(scrub_ip_members(R"({"context":{"ip":"10.1.2.3)", IpPolicy::Truncate), R"({"context":{"ip":"10.1.2.0)");
    EXPECT_EQ(scrub_ip_members(R"({"ip":42,"x":"ip"})", IpPolicy::Drop), R"({"ip":42,"x":"ip"})");
}
