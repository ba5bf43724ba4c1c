#include "cdp/core/computed.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "cdp/core/error.hpp"

using namespace cdp;

namespace {

constexpr Micros kT0 = 1767225600LL * kMicrosPerSecond;  // 2026-01-01 00:00 UTC, a multiple of every bucket width

// Events whose JSON lives as long as the fixture.
struct Events {
    std::deque<rapidjson::Document> docs;
    std::deque<std::string> ids;
    const rapidjson::Value* json(const char* text) {
        docs.emplace_back();
        // RapidJSON's SSE2 scanner reads whole 16-byte blocks: parse from a padded copy, not
        // from the literal (ASan sees reads past a literal's end).
        std::string padded(text);
        padded.append(16, '\0');
        docs.back().Parse(padded.c_str());
        EXPECT_FALSE(docs.back().HasParseError()) << text;
        return &docs.back();
    }
    Event track(const char* name, Micros ts, const char* properties = "{}", const char* id = nullptr) {
        Event e;
        e.type = EventType::Track;
        e.event = name;
        e.timestamp = ts;
        e.properties = json(properties);
        ids.push_back(id != nullptr ? id : "m" + std::to_string(ids.size()));
        e.message_id = ids.back();
        return e;
    }
};

ComputedDefinition def(const char* name, const char* json) { return parse_computed_definition(name, json); }

std::string value(const ComputedState& s, const ComputedDefinition& d, Micros at) { return s.value_json(d, at); }

void expect_invalid(const char* name, const char* json, const char* detail_part) {
    try {
        parse_computed_definition(name, json);
        ADD_FAILURE() << "accepted " << json;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        EXPECT_NE(e.detail().find(detail_part), std::string::npos) << e.detail();
        EXPECT_FALSE(e.hint().empty());
    }
}

}  // namespace

TEST(ComputedDefinition, BadDefinitionsSayWhatIsWrong) {
    expect_invalid("x", "[1]", "not a JSON object");
    expect_invalid("x", R"({"event": "A"})", "no \"function\"");
    expect_invalid("x", R"({"function": "avg", "property": "properties.p"})", "\"avg\" is unknown");
    expect_invalid("x", R"({"function": "sum"})", "needs a \"property\"");
    expect_invalid("x", R"({"function": "sum", "property": "price"})", "neither properties");
    expect_invalid("x", R"({"function": "sum", "property": "properties"})", "whole object");
    expect_invalid("x", R"({"function": "sum", "property": "properties..p"})", "empty key");
    expect_invalid("x", R"({"function": "count", "window": "a while"})", "not a duration");
    expect_invalid("x", R"({"function": "count", "window": "1 hour", "bucket": "2 hours"})", "wider than the window");
    expect_invalid("x", R"({"function": "count", "bucket": "1 hour"})", "without a \"window\"");
    expect_invalid("x", R"({"function": "count", "colour": "red"})", "\"colour\" is unknown");
    expect_invalid("x", R"({"function": "count", "where": {"properties.a": {"~": 1}}})", "\"~\"");
    expect_invalid("x", R"({"function": "count", "where": {"properties.a": {"in": 1}}})", "not a list");
    expect_invalid("x", R"({"function": "count", "where": {"properties.a": {"=": [1]}}})", "array or object");
    expect_invalid("x", R"({"function": "count", "type": "click"})", "not an event type");
    expect_invalid("Bad-Name", R"({"function": "count"})", "other than a-z");
}

TEST(ComputedDefinition, DefaultsAndBuckets) {
    auto d = def("orders_30d", R"({"function": "count", "event": "Order Completed", "window": "30 days"})");
    EXPECT_EQ(d.type, EventType::Track);  // an event name implies track
    EXPECT_EQ(d.window, 30 * kMicrosPerDay);
    EXPECT_EQ(d.bucket, 6 * kMicrosPerHour);
    EXPECT_EQ(def("a", R"({"function": "count", "window": "24 hours"})").bucket, 30 * kMicrosPerMinute);
    EXPECT_EQ(def("a", R"({"function": "count", "window": "1 hour"})").bucket, kMicrosPerMinute);
    EXPECT_EQ(def("a", R"({"function": "count", "window": "lifetime"})").window, 0);
    EXPECT_FALSE(def("a", R"({"function": "count"})").type.has_value());
    EXPECT_NE(def("a", R"({"function": "count"})").version, def("a", R"({"function": "count", "window": "1 day"})").version);
}

TEST(ComputedDefinition, Conditions) {
    Events ev;
    auto d = def("x", R"({"function": "count", "event": ["Product Viewed", "Product Added"],
                          "where": {"properties.category": "Audio", "properties.price": {">=": 100, "<": 500},
                                    "properties.brand": ["Sony", "Bose"], "properties.gift": {"exists": false}}})");
    EXPECT_TRUE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "Audio", "price": 100, "brand": "Sony"})")));
    EXPECT_TRUE(d.matches(ev.track("Product Added", kT0, R"({"category": "Audio", "price": 499.5, "brand": "Bose", "gift": null})")));
    EXPECT_FALSE(d.matches(ev.track("Order Completed", kT0, R"({"category": "Audio", "price": 100, "brand": "Sony"})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "audio", "price": 100, "brand": "Sony"})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "Audio", "price": 500, "brand": "Sony"})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "Audio", "price": "100", "brand": "Sony"})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "Audio", "price": 100, "brand": "JBL"})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"category": "Audio", "price": 100, "brand": "Sony", "gift": true})")));
    EXPECT_FALSE(d.matches(ev.track("Product Viewed", kT0, R"({"price": 100, "brand": "Sony"})")));  // missing: no match
    auto ne = def("y", R"({"function": "count", "where": {"properties.a": {"!=": "x"}, "properties.b.c": 1}})");
    EXPECT_TRUE(ne.matches(ev.track("A", kT0, R"({"a": "y", "b": {"c": 1}})")));
    EXPECT_TRUE(ne.matches(ev.track("A", kT0, R"({"a": 3, "b": {"c": 1.0}})")));  // another kind is not equal
    EXPECT_FALSE(ne.matches(ev.track("A", kT0, R"({"b": {"c": 1}})")));          // missing meets no condition
    EXPECT_FALSE(ne.matches(ev.track("A", kT0, R"({"a": "x", "b": {"c": 1}})")));
}

TEST(ComputedState, FunctionsOverLifetime) {
    Events ev;
    std::vector<ComputedDefinition> defs = {
        def("n", R"({"function": "count", "event": "Order Completed"})"),
        def("revenue", R"({"function": "sum", "event": "Order Completed", "property": "properties.total"})"),
        def("low", R"({"function": "min", "event": "Order Completed", "property": "properties.total"})"),
        def("high", R"({"function": "max", "event": "Order Completed", "property": "properties.total"})"),
        def("first_sku", R"({"function": "first", "event": "Order Completed", "property": "properties.sku"})"),
        def("last_sku", R"({"function": "last", "event": "Order Completed", "property": "properties.sku"})"),
        def("skus", R"({"function": "distinct_count", "event": "Order Completed", "property": "properties.sku"})"),
        def("top_sku", R"({"function": "most_frequent", "event": "Order Completed", "property": "properties.sku"})"),
    };
    ComputedState s;
    ComputedState empty;
    for (auto& d : defs) EXPECT_EQ(value(empty, d, kT0), d.function == ComputedFunction::Count || d.function == ComputedFunction::Sum ||
                                                                 d.function == ComputedFunction::DistinctCount ? "0" : "null");
    // Out of time order on purpose; two at the same instant (the event id breaks the tie).
    s.observe(defs, ev.track("Order Completed", kT0 + 300, R"({"total": 0.1, "sku": "B"})", "m3"), kT0);
    s.observe(defs, ev.track("Order Completed", kT0 + 100, R"({"total": 279.99, "sku": "A"})", "m2"), kT0);
    s.observe(defs, ev.track("Order Completed", kT0 + 100, R"({"total": 0.2, "sku": "C"})", "m1"), kT0);
    s.observe(defs, ev.track("Order Completed", kT0 + 200, R"({"total": "n/a", "sku": "B"})", "m4"), kT0);
    s.observe(defs, ev.track("Product Viewed", kT0 + 400, R"({"total": 1000, "sku": "Z"})", "m5"), kT0);
    EXPECT_EQ(value(s, defs[0], kT0), "4");
    EXPECT_EQ(value(s, defs[1], kT0), "280.29");  // exact: 0.1 + 0.2 + 279.99; the text total is not a number
    EXPECT_EQ(value(s, defs[2], kT0), "\"n/a\"");  // strings sort before numbers (jsonb's order, as in merge_traits)
    EXPECT_EQ(value(s, defs[3], kT0), "279.99");
    EXPECT_EQ(value(s, defs[4], kT0), "\"C\"");    // m1 < m2 at the same instant
    EXPECT_EQ(value(s, defs[5], kT0), "\"B\"");
    EXPECT_EQ(value(s, defs[6], kT0), "3");
    EXPECT_EQ(value(s, defs[7], kT0), "\"B\"");
}

TEST(ComputedState, MostFrequentTiesGoToTheMostRecent) {
    Events ev;
    std::vector<ComputedDefinition> defs = {def("cat", R"({"function": "most_frequent", "property": "properties.c"})")};
    ComputedState s;
    s.observe(defs, ev.track("V", kT0 + 2, R"({"c": "Audio"})"), kT0);
    s.observe(defs, ev.track("V", kT0 + 1, R"({"c": "Video"})"), kT0);
    EXPECT_EQ(value(s, defs[0], kT0), "\"Audio\"");
    s.observe(defs, ev.track("V", kT0 + 3, R"({"c": "Video"})"), kT0);
    s.observe(defs, ev.track("V", kT0 + 4, R"({"c": "Audio"})"), kT0);
    s.observe(defs, ev.track("V", kT0 + 0, R"({"c": "Books"})"), kT0);
    EXPECT_EQ(value(s, defs[0], kT0), "\"Audio\"");  // 2 each: Audio seen last
    s.observe(defs, ev.track("V", kT0 + 9, R"({"c": "Video"})"), kT0);
    EXPECT_EQ(value(s, defs[0], kT0), "\"Video\"");
}

TEST(ComputedState, WindowsMoveWithTimeAndExpire) {
    Events ev;
    std::vector<ComputedDefinition> defs = {def("v24", R"({"function": "count", "event": "V", "window": "24 hours"})")};
    const Micros w = 30 * kMicrosPerMinute, day = kMicrosPerDay;
    ComputedState s;
    s.observe(defs, ev.track("V", kT0 + 10 * kMicrosPerMinute, "{}"), kT0);  // bucket [T0, T0+30m)
    s.observe(defs, ev.track("V", kT0 + 2 * kMicrosPerHour, "{}"), kT0);
    EXPECT_EQ(value(s, defs[0], kT0 + 3 * kMicrosPerHour), "2");
    EXPECT_EQ(value(s, defs[0], kT0 - 1), "0");                            // before the first bucket
    EXPECT_EQ(value(s, defs[0], kT0 + 10 * kMicrosPerMinute + day), "2");  // a day after: still counted
    EXPECT_EQ(value(s, defs[0], kT0 + w + day - 1), "2");                  // at most a bucket more
    EXPECT_EQ(value(s, defs[0], kT0 + w + day), "1");
    ASSERT_TRUE(s.next_expiry().has_value());
    EXPECT_EQ(*s.next_expiry(), kT0 + w + day);
    EXPECT_FALSE(s.expire(defs, kT0 + w + day - 1));
    EXPECT_TRUE(s.expire(defs, kT0 + w + day));
    EXPECT_EQ(*s.next_expiry(), kT0 + 2 * kMicrosPerHour + w + day);
    EXPECT_EQ(value(s, defs[0], kT0 + w + day), "1");
    EXPECT_TRUE(s.expire(defs, kT0 + 3 * day));
    EXPECT_TRUE(s.empty());
    EXPECT_FALSE(s.next_expiry().has_value());
    // A late event already out of its window is not kept.
    s.observe(defs, ev.track("V", kT0, "{}"), kT0 + 2 * day);
    EXPECT_TRUE(s.empty());
}

TEST(ComputedState, ARedefinedTraitStartsOverAndADroppedOneGoes) {
    Events ev;
    auto old_def = def("v", R"({"function": "count"})");
    auto new_def = def("v", R"({"function": "count", "event": "V"})");
    ComputedState s;
    s.observe({old_def}, ev.track("X", kT0, "{}"), kT0);
    EXPECT_EQ(value(s, old_def, kT0), "1");
    EXPECT_EQ(value(s, new_def, kT0), "0");  // another version's partials do not count
    s.observe({new_def}, ev.track("V", kT0, "{}"), kT0);
    EXPECT_EQ(value(s, new_def, kT0), "1");
    EXPECT_FALSE(s.expire({new_def}, kT0));
    EXPECT_TRUE(s.expire({}, kT0));
    EXPECT_TRUE(s.empty());
}

// Random events, split between two states and merged, and written and read back, agree with a
// brute-force count of the events each window holds.
TEST(ComputedState, MergedAndRoundTrippedStatesAgreeWithBruteForce) {
    std::mt19937_64 rng(7);
    Events ev;
    std::vector<ComputedDefinition> defs = {
        def("c", R"({"function": "count", "event": "V", "window": "2 hours", "bucket": "10 minutes"})"),
        def("s", R"({"function": "sum", "event": "V", "property": "properties.p", "window": "1 day"})"),
        def("mx", R"({"function": "max", "event": "V", "property": "properties.p", "window": "3 hours"})"),
        def("l", R"({"function": "last", "event": "V", "property": "properties.p"})"),
        def("d", R"({"function": "distinct_count", "event": "V", "property": "properties.p", "window": "6 hours"})"),
    };
    for (int round = 0; round < 50; ++round) {
        ComputedState a, b, all;
        std::vector<std::pair<Micros, int>> seen;
        int n = 1 + static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) {
            Micros ts = kT0 + static_cast<Micros>(rng() % (2 * kMicrosPerDay));
            int p = static_cast<int>(rng() % 7);
            std::string props = "{\"p\": " + std::to_string(p) + "}";
            Event e = ev.track("V", ts, props.c_str());
            (rng() % 2 ? a : b).observe(defs, e, kT0);
            all.observe(defs, e, kT0);
            seen.emplace_back(ts, p);
        }
        a.merge(std::move(b));
        ComputedState back = ComputedState::read(a.write());
        for (int probe = 0; probe < 20; ++probe) {
            Micros at = kT0 + static_cast<Micros>(rng() % (3 * kMicrosPerDay));
            for (const auto& d : defs) {
                // Brute force: an event counts when its bucket still touches the window at `at`.
                std::int64_t count = 0, sum = 0, max = -1;
                std::set<int> distinct;
                Micros last_ts = -1;
                for (const auto& [ts, p] : seen) {
                    if (d.window != 0) {
                        Micros k = ts / d.bucket;
                        if ((k + 1) * d.bucket + d.window <= at || k * d.bucket > at) continue;
                    }
                    ++count;
                    sum += p;
                    max = std::max<std::int64_t>(max, p);
                    distinct.insert(p);
                    last_ts = std::max(last_ts, ts);
                }
                std::string expected = d.name == "c" ? std::to_string(count)
                                       : d.name == "s" ? std::to_string(sum)
                                       : d.name == "mx" ? (max < 0 ? "null" : std::to_string(max))
                                       : d.name == "d" ? std::to_string(distinct.size())
                                                       : "";
                if (d.name == "l") {
                    EXPECT_EQ(value(a, d, at), value(all, d, at));
                    continue;
                }
                EXPECT_EQ(value(a, d, at), expected) << d.name << " round " << round;
                EXPECT_EQ(value(back, d, at), expected) << d.name << " round " << round;
                EXPECT_EQ(value(all, d, at), expected) << d.name << " round " << round;
            }
        }
    }
}

TEST(ComputedState, DamagedBytesAreAnError) {
    Events ev;
    std::vector<ComputedDefinition> defs = {def("t", R"({"function": "most_frequent", "property": "properties.p"})")};
    ComputedState s;
    s.observe(defs, ev.track("V", kT0, R"({"p": "x"})"), kT0);
    std::string bytes = s.write();
    EXPECT_EQ(ComputedState::read(bytes).value_json(defs[0], kT0), "\"x\"");
    EXPECT_THROW(ComputedState::read(bytes.substr(0, bytes.size() - 1)), std::runtime_error);
    EXPECT_THROW(ComputedState::read(bytes + "x"), std::runtime_error);
    EXPECT_THROW(ComputedState::read(""), std::runtime_error);
}
