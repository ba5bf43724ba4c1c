#include "cdp/core/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "cdp/core/error.hpp"
#include "cdp/core/event.hpp"
#include "cdp/core/ingest.hpp"

using namespace cdp;

TEST(Identity, EmailNormalisation) {
    EXPECT_EQ(normalise_email("  Sarah.Connor@Example.COM "), "sarah.connor@example.com");
    EXPECT_EQ(normalise_email("no-at-sign"), std::nullopt);
    EXPECT_EQ(normalise_email("@example.com"), std::nullopt);
    EXPECT_EQ(normalise_email("a@b@c"), std::nullopt);
    EXPECT_EQ(normalise_email("sarah @example.com"), std::nullopt);
}

TEST(Identity, PhoneNormalisationToE164) {
    EXPECT_EQ(normalise_phone("+49 151 2345-6789", ""), "+4915123456789");
    EXPECT_EQ(normalise_phone("0049 151 23456789", ""), "+4915123456789");
    EXPECT_EQ(normalise_phone("0151 23456789", "DE"), "+4915123456789");  // trunk 0 dropped
    EXPECT_EQ(normalise_phone("(415) 555-2671", "US"), "+14155552671");
    EXPECT_EQ(normalise_phone("1 415 555 2671", "us"), "+14155552671");
    EXPECT_EQ(normalise_phone("0151 23456789", ""), std::nullopt);  // no country to assume
    EXPECT_EQ(normalise_phone("call me", "DE"), std::nullopt);
    EXPECT_EQ(normalise_phone("+12", ""), std::nullopt);              // too short
    EXPECT_EQ(normalise_phone("+1234567890123456", ""), std::nullopt);  // too long for E.164
    EXPECT_EQ(calling_code("GB"), "44");
    EXPECT_EQ(calling_code("XX"), "");
}

TEST(Identity, OtherTypesAreTrimmed) {
    EXPECT_EQ(normalise_identifier("user_id", "  U-1 ", ""), "U-1");  // case kept
    EXPECT_EQ(normalise_identifier("anonymous_id", "   ", ""), std::nullopt);
    EXPECT_EQ(normalise_identifier("email", " A@B.CO ", ""), "a@b.co");
}

TEST(Identity, BlocklistAndPatterns) {
    IdentityRules rules;
    EXPECT_EQ(rules.refusal("user_id", "u-123"), "");
    for (const char* junk : {"null", "undefined", "Anonymous", "GUEST", "0", "-1", "[object Object]", "NaN", "none"})
        EXPECT_EQ(rules.refusal("user_id", junk), "blocklisted value") << junk;
    EXPECT_NE(rules.refusal("device_id", "00000000-0000-0000-0000-000000000000"), "");
    EXPECT_NE(rules.refusal("anonymous_id", ""), "");
    rules.block_value("  kiosk-1 ");
    EXPECT_EQ(rules.refusal("device_id", "KIOSK-1"), "blocklisted value");
    rules.set_type({"email", 2, 5, "", ".*@mailinator\\.com", ""});
    EXPECT_EQ(rules.refusal("email", "x@mailinator.com"), "matches the exclude pattern of email");
    EXPECT_EQ(rules.refusal("email", "x@example.com"), "");
    rules.set_type({"crm_id", 6, 1, "CRM-[0-9]+", "", ""});
    EXPECT_EQ(rules.refusal("crm_id", "CRM-42"), "");
    EXPECT_EQ(rules.refusal("crm_id", "42"), "does not match the include pattern of crm_id");
    EXPECT_EQ(rules.rule("crm_id").limit, 1);
    EXPECT_EQ(rules.rule("something_else").priority, 100);
    EXPECT_THROW(rules.set_type({"bad", 1, 1, "(unclosed", "", ""}), Error);
    EXPECT_THROW(rules.set_type({"bad", 1, 0, "", "", ""}), Error);
}

TEST(UnionFind, JoinsAndCounts) {
    UnionFind uf(5);
    uf.unite(0, 1);
    uf.unite(3, 4);
    EXPECT_EQ(uf.find(0), uf.find(1));
    EXPECT_NE(uf.find(1), uf.find(3));
    uf.unite(1, 4);
    EXPECT_EQ(uf.size_of(0), 4u);
    EXPECT_EQ(uf.size_of(2), 1u);
    size_t x = uf.add();
    EXPECT_EQ(uf.find(x), x);
}

namespace {

// The reference: components as explicit member sets, merged by copying, limits checked by
// counting members. Slow and obviously right.
struct Reference {
    const IdentityRules& rules;
    std::vector<std::string> type;
    std::vector<int> comp;  // member -> component id
    std::map<int, std::set<int>> members;

    bool link(int a, int b) {
        int ca = comp[a], cb = comp[b];
        if (ca == cb) return true;
        std::map<std::string, int> counts;
        for (int m : members[ca]) ++counts[type[m]];
        for (int m : members[cb]) ++counts[type[m]];
        for (const auto& [t, n] : counts)
            if (n > rules.rule(t).limit) return false;
        if (static_cast<int>(members[ca].size() + members[cb].size()) > rules.max_component_size) return false;
        for (int m : members[cb]) {
            comp[m] = ca;
            members[ca].insert(m);
        }
        members.erase(cb);
        return true;
    }
};

}  // namespace

TEST(IdentityGraph, RandomisedAgainstReference) {
    const char* types[] = {"user_id", "email", "anonymous_id", "device_id"};
    for (unsigned seed = 1; seed <= 200; ++seed) {
        std::mt19937 rng(seed);
        IdentityRules rules;
        rules.max_component_size = 3 + static_cast<int>(rng() % 20);
        int n = 5 + static_cast<int>(rng() % 60);
        IdentityGraph graph(rules);
        Reference ref{rules, {}, {}, {}};
        for (int i = 0; i < n; ++i) {
            std::string t = types[rng() % 4];
            graph.add_identifier(t);
            ref.type.push_back(t);
            ref.comp.push_back(i);
            ref.members[i] = {i};
        }
        int links = static_cast<int>(rng() % (3 * n));
        for (int k = 0; k < links; ++k) {
            int a = static_cast<int>(rng() % n), b = static_cast<int>(rng() % n);
            bool expected = ref.link(a, b);
            IdentityGraph::LinkResult got = graph.link(a, ref.type[a], b, ref.type[b]);
            ASSERT_EQ(got.merged, expected) << "seed " << seed << " link " << k << ": " << got.reason;
            if (!got.merged) {
                EXPECT_FALSE(got.reason.empty());
            }
        }
        for (int a = 0; a < n; ++a)
            for (int b = 0; b < n; ++b)
                ASSERT_EQ(graph.find(a) == graph.find(b), ref.comp[a] == ref.comp[b]) << "seed " << seed;
    }
}

TEST(IdentityGraph, SharedKioskDeviceKeepsPeopleApart) {
    // Twenty people log in on one kiosk: each login links their user_id with the kiosk's device id.
    IdentityRules rules;
    IdentityGraph g(rules);
    size_t kiosk = g.add_identifier("device_id");
    std::vector<size_t> users;
    int refused = 0;
    for (int i = 0; i < 20; ++i) {
        users.push_back(g.add_identifier("user_id"));
        IdentityGraph::LinkResult r = g.link(users.back(), "user_id", kiosk, "device_id");
        if (!r.merged) {
            ++refused;
            EXPECT_NE(r.reason.find("at most 1 user_id"), std::string::npos) << r.reason;
            EXPECT_NE(r.reason.find("device_id not merged"), std::string::npos) << r.reason;
        }
    }
    EXPECT_EQ(refused, 19);
    std::set<size_t> roots;
    for (size_t u : users) roots.insert(g.find(u));
    EXPECT_EQ(roots.size(), 20u);  // twenty people, twenty profiles
    EXPECT_EQ(g.find(kiosk), g.find(users[0]));
}

TEST(IdentityGraph, ExistingProfilesMergeIntoTheOldest) {
    IdentityRules rules;
    IdentityGraph g(rules);
    size_t phone_profile = g.add_profile(7, {{"anonymous_id", 1}});
    size_t laptop_profile = g.add_profile(3, {{"anonymous_id", 2}});
    size_t user = g.add_identifier("user_id");
    IdentityGraph::LinkResult first = g.link(user, "user_id", phone_profile, "anonymous_id");
    EXPECT_TRUE(first.changed);
    EXPECT_EQ(first.survivor, 0);  // only one existing profile was involved
    IdentityGraph::LinkResult second = g.link(user, "user_id", laptop_profile, "anonymous_id");
    EXPECT_EQ(second.survivor, 3);
    EXPECT_EQ(second.absorbed, 7);
    EXPECT_EQ(g.profile_of(user), 3);
    // The limits count what the loaded profiles already hold: 3 + 3 anonymous ids is over 5.
    size_t other = g.add_profile(9, {{"anonymous_id", 3}});
    IdentityGraph::LinkResult third = g.link(other, "anonymous_id", user, "user_id");
    EXPECT_FALSE(third.merged);
    EXPECT_NE(third.reason.find("at most 5 anonymous_id"), std::string::npos) << third.reason;
}

TEST(IdentityGraph, GuardrailOnComponentSize) {
    IdentityRules rules;
    rules.max_component_size = 4;
    IdentityGraph g(rules);
    size_t big = g.add_profile(1, {{"anonymous_id", 3}, {"user_id", 1}});
    size_t extra = g.add_identifier("email");
    IdentityGraph::LinkResult r = g.link(extra, "email", big, "user_id");
    EXPECT_FALSE(r.merged);
    EXPECT_NE(r.reason.find("guardrail"), std::string::npos);
}

TEST(ShortestPath, FollowsTheFewestEdges) {
    // 0-1-2-3 and a shortcut 0-3 via 4: 0-4, 4-3
    std::vector<std::pair<size_t, size_t>> edges = {{0, 1}, {1, 2}, {2, 3}, {0, 4}, {4, 3}, {5, 6}};
    std::vector<size_t> p = shortest_path(7, edges, 0, 3);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0], 3u);
    EXPECT_EQ(p[1], 4u);
    EXPECT_TRUE(shortest_path(7, edges, 0, 6).empty());
    EXPECT_TRUE(shortest_path(7, edges, 2, 2).empty());
}

TEST(StringInterner, DenseIdsAndExactBytes) {
    StringInterner in;
    EXPECT_EQ(in.intern("alpha"), 0u);
    EXPECT_EQ(in.intern("beta"), 1u);
    EXPECT_EQ(in.intern("alpha"), 0u);
    EXPECT_EQ(in.intern(std::string_view("a\0b", 3)), 2u);  // bytes, not C strings
    EXPECT_EQ(in.intern(std::string_view("a\0c", 3)), 3u);
    EXPECT_EQ(in.intern(""), 4u);
    // Through many growths: every string keeps its id and its bytes.
    std::vector<std::string> words;
    for (int i = 0; i < 50000; ++i) words.push_back("node-" + std::to_string(i * 7919 % 100003));
    std::map<std::string, std::uint32_t> first;
    for (const std::string& w : words) {
        std::uint32_t id = in.intern(w);
        auto [it, fresh] = first.emplace(w, id);
        ASSERT_EQ(it->second, id) << w;
    }
    EXPECT_EQ(in.size(), 5 + first.size());
    for (const auto& [w, id] : first) ASSERT_EQ(in.name(id), w);
    EXPECT_EQ(in.name(0), "alpha");
}

// Strings are kept length-first in chunks of 1 MB: ones longer than a chunk, and enough of them
// to fill several chunks, keep their bytes.
TEST(StringInterner, LongStringsAndManyChunks) {
    StringInterner in;
    std::string long_one(3 << 20, 'x');
    long_one.back() = 'y';
    std::vector<std::string> words;
    for (int i = 0; i < 300000; ++i) words.push_back("identifier-" + std::to_string(i));
    words.insert(words.begin() + 1000, long_one);
    words.push_back(long_one + "z");
    std::vector<std::uint32_t> ids;
    for (const std::string& w : words) ids.push_back(in.intern(w));
    for (size_t i = 0; i < words.size(); ++i) ASSERT_EQ(in.name(ids[i]), words[i]) << i;
    EXPECT_EQ(in.intern(long_one), ids[1000]);
    EXPECT_EQ(in.size(), words.size());
}

TEST(StringInterner, ManyAtOnceAgreesWithOneByOne) {
    std::vector<std::string> words;
    for (int i = 0; i < 20000; ++i) words.push_back("w" + std::to_string(i % 7001) + (i % 3 ? "-x" : ""));
    std::vector<std::string_view> views(words.begin(), words.end());
    StringInterner one, many;
    std::vector<std::uint32_t> expected, got(views.size());
    for (std::string_view v : views) expected.push_back(one.intern(v));
    for (size_t start = 0; start < views.size(); start += 1000)  // batches larger and smaller than kBatch
        many.intern_many(views.data() + start, std::min<size_t>(1000, views.size() - start), got.data() + start);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(many.size(), one.size());
}

TEST(Identity, EventIdentifiersStrongestFirstWithCustomTypes) {
    IdentityRules rules;
    rules.set_type({"crm_id", 2, 1, "", "", "crmId"});
    IngestOptions options;
    options.received_at = *parse_iso8601("2026-11-29T12:00:00Z");
    IngestBatch b;
    b.parse(R"([{"type":"identify","userId":" u-7 ","anonymousId":"anon-1","messageId":"m1",
                 "traits":{"email":"Sarah@Example.com","crmId":4711,"phone":"not a phone"},
                 "context":{"device":{"id":"dev-9"},"externalIds":[{"id":"zd-1","type":"Zendesk","collection":"users"}]}},
                {"type":"track","event":"E","anonymousId":"null","messageId":"m2","context":{"traits":{"crmId":"C-1"}}}])",
            options);
    ASSERT_EQ(b.events.size(), 2u);
    std::vector<std::pair<Identifier, std::string>> refused;
    std::vector<Identifier> ids = event_identifiers(b.events[0], rules, "", &refused);
    std::vector<std::string> got;
    for (const Identifier& id : ids) got.push_back(id.type + "=" + id.value);
    // By priority: user_id 1, email 2 and crm_id 2 (in the order found), device_id 4,
    // anonymous_id 5, then the unknown zendesk type (100).
    EXPECT_EQ(got, (std::vector<std::string>{"user_id=u-7", "email=sarah@example.com", "crm_id=4711", "device_id=dev-9",
                                             "anonymous_id=anon-1", "zendesk=zd-1"}));
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].first.type, "phone");
    // A track event: traits come from context.traits; the junk anonymous id is refused.
    refused.clear();
    ids = event_identifiers(b.events[1], rules, "", &refused);
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0].type + "=" + ids[0].value, "crm_id=C-1");
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].second, "blocklisted value");
}
