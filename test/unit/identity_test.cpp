#include "cdp/core/identity.hpp"

#include <gtest/gtest.h>
#include <re2/re2.h>

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

// refusal() skips the blocklist when a value is longer than any entry, and a pattern when the
// value lies outside the range RE2 says its matches lie in: the same answers as checking every
// entry and running every pattern, over values made to fall in, near and outside those ranges.
TEST(Identity, RefusalShortcutsGiveTheSameAnswers) {
    IdentityRules rules;
    std::vector<std::string> patterns = {"(?i)guest-[0-9]+", "kiosk.*", ".*@mailinator\\.com", "[a-c]{2,3}x?", "zz|z"};
    for (const std::string& p : patterns) rules.block_pattern(p);
    rules.block_value("  Shared-Laptop-Of-The-Front-Desk ");
    std::vector<std::string> all = IdentityRules::default_block_patterns();
    all.insert(all.end(), patterns.begin(), patterns.end());
    std::vector<std::unique_ptr<re2::RE2>> compiled;
    for (const std::string& p : all) compiled.push_back(std::make_unique<re2::RE2>(p));
    std::set<std::string> blocked(IdentityRules::default_blocklist().begin(), IdentityRules::default_blocklist().end());
    blocked.insert("shared-laptop-of-the-front-desk");
    auto expected = [&](const std::string& v) {
        if (v.empty()) return std::string("empty value");
        std::string lower = v;
        for (char& c : lower)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (blocked.count(lower) > 0) return std::string("blocklisted value");
        for (const auto& re : compiled)
            if (re2::RE2::FullMatch(v, *re)) return "blocklisted pattern " + re->pattern();
        return std::string();
    };
    std::vector<std::string> values = {"0", "000-0", "00000000-0000-0000-0000-000000000000", "0a", "-", "--1",
                                       "stripped:" + std::string(32, 'a'), "stripped:" + std::string(31, 'a'),
                                       "stripped:" + std::string(32, 'g'), "Guest-12", "GUEST-", "kiosk", "kiosk-7",
                                       "kiosj", "x@mailinator.com", "ab", "abcx", "abcd", "z", "zz", "zzz", "NULL",
                                       "Shared-Laptop-of-the-front-desk", "shared-laptop-of-the-front-desk!", "u-1"};
    std::mt19937 rng(11);
    const std::string alphabet = "0-abcgkstuxz:@.AZ";
    for (int i = 0; i < 20000; ++i) {
        std::string v;
        if (rng() % 4 == 0) v = values[rng() % values.size()];
        for (int n = static_cast<int>(rng() % 6); n > 0; --n) v += alphabet[rng() % alphabet.size()];
        values.push_back(v);
    }
    for (const std::string& v : values) ASSERT_EQ(rules.refusal("", v), expected(v)) << v;
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
// counting members: a merge breaks a limit when both sides hold that type and together more
// than it allows. Slow and obviously right.
struct Reference {
    const IdentityRules& rules;
    std::vector<std::string> type;
    std::vector<int> comp;  // member -> component id
    std::map<int, std::set<int>> members;

    bool link(int a, int b) {
        int ca = comp[a], cb = comp[b];
        if (ca == cb) return true;
        std::map<std::string, int> count_a, count_b;
        for (int m : members[ca]) ++count_a[type[m]];
        for (int m : members[cb]) ++count_b[type[m]];
        for (const auto& [t, n] : count_a)
            if (count_b.count(t) > 0 && n + count_b[t] > rules.rule(t).limit) return false;
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
        std::vector<size_t> element;  // member -> its element of the graph
        // Some members come in stored profiles of two to four, which may hold more of a type
        // than its limit allows (stored before the limit was lowered); the others alone.
        for (int i = 0; i < n;) {
            int size = rng() % 4 == 0 ? 2 + static_cast<int>(rng() % 3) : 1;
            size = std::min(size, n - i);
            std::map<std::string, int> counts;
            std::vector<std::string> member_types;
            for (int k = 0; k < size; ++k) {
                member_types.push_back(types[rng() % 4]);
                ++counts[member_types.back()];
            }
            size_t e = size == 1 ? graph.add_identifier(member_types[0])
                                 : graph.add_profile(1000 + i, {counts.begin(), counts.end()});
            for (int k = 0; k < size; ++k) {
                ref.type.push_back(member_types[k]);
                ref.comp.push_back(i);
                ref.members[i].insert(i + k);
                element.push_back(e);
            }
            i += size;
        }
        int links = static_cast<int>(rng() % (3 * n));
        for (int k = 0; k < links; ++k) {
            int a = static_cast<int>(rng() % n), b = static_cast<int>(rng() % n);
            bool expected = ref.link(a, b);
            IdentityGraph::LinkResult got = graph.link(element[a], ref.type[a], element[b], ref.type[b]);
            ASSERT_EQ(got.merged, expected) << "seed " << seed << " link " << k << ": " << got.reason;
            if (!got.merged) {
                EXPECT_FALSE(got.reason.empty());
            }
        }
        for (int a = 0; a < n; ++a)
            for (int b = 0; b < n; ++b)
                ASSERT_EQ(graph.find(element[a]) == graph.find(element[b]), ref.comp[a] == ref.comp[b]) << "seed " << seed;
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

TEST(IdentityGraph, AProfileOverALoweredLimitStillTakesOtherTypes) {
    // Stored with two user ids before the limit of one; a new device still joins it, a third
    // user id does not.
    IdentityRules rules;
    IdentityGraph g(rules);
    size_t shared = g.add_profile(4, {{"user_id", 2}, {"anonymous_id", 1}});
    size_t device = g.add_identifier("device_id");
    IdentityGraph::LinkResult joined = g.link(device, "device_id", shared, "user_id");
    EXPECT_TRUE(joined.merged) << joined.reason;
    EXPECT_EQ(g.profile_of(device), 4);
    size_t third = g.add_identifier("user_id");
    IdentityGraph::LinkResult refused = g.link(third, "user_id", shared, "anonymous_id");
    EXPECT_FALSE(refused.merged);
    EXPECT_NE(refused.reason.find("at most 1 user_id (the merge would make 3)"), std::string::npos) << refused.reason;
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

// Components of a stream of edges against a reference (a map of node names, merged by hand),
// with and without the helper thread: a grouped edge list (repeated ends), junk values the rules
// block, edges in many batches. Each node's component is the smallest node name in it.
namespace {

std::map<std::string, std::string> reference_components(const std::vector<std::pair<std::string, std::string>>& edges,
                                                        const IdentityRules* rules) {
    std::map<std::string, std::string> parent;
    auto find = [&](std::string x) {
        while (parent[x] != x) x = parent[x];
        return x;
    };
    auto blocked = [&](const std::string& v) { return rules != nullptr && !rules->refusal("", v).empty(); };
    for (const auto& [a, b] : edges) {
        for (const std::string& v : {a, b})
            if (parent.count(v) == 0) parent[v] = v;
        if (blocked(a) || blocked(b)) continue;
        std::string ra = find(a), rb = find(b);
        if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);  // the smaller name is the root
    }
    std::map<std::string, std::string> component;
    for (const auto& [node, p] : parent) component[node] = find(node);
    return component;
}

std::map<std::string, std::string> built_components(const std::vector<std::pair<std::string, std::string>>& edges,
                                                    const IdentityRules* rules, bool helper, bool* helped) {
    ComponentBuilder graph(rules, helper);
    graph.reserve(edges.size() / 8);  // too small: the graph grows as it goes
    for (const auto& [a, b] : edges) graph.add_edge(a, b);
    graph.finish();
    *helped = graph.helped();
    std::vector<std::uint32_t> label = graph.smallest_names();
    std::map<std::string, std::string> component;
    for (std::uint32_t i = 0; i < graph.names().size(); ++i)
        component[std::string(graph.names().name(i))] = std::string(graph.names().name(label[i]));
    return component;
}

}  // namespace

TEST(ComponentBuilder, AgreesWithReferenceWithAndWithoutHelper) {
    IdentityRules rules;
    std::mt19937 rng(7);
    for (int round = 0; round < 3; ++round) {
        // People with a user id and a few anonymous ids, edges grouped by person (repeated first
        // ends), some ids shared between people (merging them), some junk ("null", "0").
        std::vector<std::pair<std::string, std::string>> edges;
        int people = 3000 + 4000 * round;
        for (int p = 0; p < people; ++p) {
            std::string user = "u" + std::to_string(p);
            int anons = 1 + static_cast<int>(rng() % 5);
            for (int k = 0; k < anons; ++k) edges.emplace_back(user, "a" + std::to_string(p) + "." + std::to_string(k));
            if (rng() % 20 == 0) edges.emplace_back(user, "a" + std::to_string(rng() % people) + ".0");
            if (rng() % 50 == 0) edges.emplace_back(user, rng() % 2 ? "null" : "0");
        }
        std::shuffle(edges.begin() + edges.size() / 2, edges.end(), rng);  // the second half in no order
        ASSERT_GT(edges.size(), 2 * ComponentBuilder::kBatchEdges);
        const IdentityRules* none = nullptr;
        for (const IdentityRules* r : {none, static_cast<const IdentityRules*>(&rules)}) {
            std::map<std::string, std::string> expected = reference_components(edges, r);
            bool helped = true;
            EXPECT_EQ(built_components(edges, r, false, &helped), expected) << round;
            EXPECT_FALSE(helped);
            EXPECT_EQ(built_components(edges, r, true, &helped), expected) << round;
            EXPECT_TRUE(helped);  // the threaded path is the one tested
            // Junk joins nobody when the rules apply, and everybody who shares it when not.
            if (r != nullptr && expected.count("null") > 0) {
                EXPECT_EQ(expected["null"], "null");
            }
        }
    }
}

// A small stream stays on the caller's thread; a builder dropped with batches in flight (a
// cancelled query) stops its helper and frees everything.
TEST(ComponentBuilder, SmallStreamsNeedNoHelperAndAnAbandonedOneStops) {
    ComponentBuilder small(nullptr, true);
    small.add_edge("a", "b");
    small.add_edge("b", "c");
    small.finish();
    EXPECT_FALSE(small.helped());
    EXPECT_EQ(small.names().size(), 3u);
    std::vector<std::uint32_t> label = small.smallest_names();
    EXPECT_EQ(label, (std::vector<std::uint32_t>{0, 0, 0}));
    for (int round = 0; round < 20; ++round) {
        ComponentBuilder dropped(nullptr, true);
        for (size_t e = 0; e < 10 * ComponentBuilder::kBatchEdges; ++e)
            dropped.add_edge("n" + std::to_string(e), "n" + std::to_string(e + 1));
        EXPECT_TRUE(dropped.helped());
    }  // no finish(): the destructor joins the helper
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
