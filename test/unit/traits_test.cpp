#include "cdp/core/traits.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

using namespace cdp;

namespace {

TraitValue str(const std::string& s) { return {TraitValue::String, "\"" + s + "\"", 0, {}}; }
TraitValue num(double d, const std::string& text) { return {TraitValue::Number, text, d, {}}; }
TraitValue null_value() { return {TraitValue::Null, "null", 0, {}}; }
TraitValue array(std::vector<std::string> elements) {
    std::string json = "[";
    for (const std::string& e : elements) json += (json.size() > 1 ? "," : "") + e;
    return {TraitValue::Array, json + "]", 0, std::move(elements)};
}

constexpr Micros kDay = kMicrosPerDay;

std::string survivor(const TraitMerger& m, const std::string& key) {
    for (const auto& [k, v] : m.result())
        if (k == key) return v;
    return "<none>";
}

struct Row {
    std::string key;
    TraitValue value;
    Survivorship rule;
    Micros ts;
    int priority;
};

// Adds a value the way the aggregate does: as views of the caller's storage.
void add(TraitMerger& m, const std::string& key, const TraitValue& v, Survivorship rule, Micros ts, int priority) {
    std::vector<std::string_view> elements(v.elements.begin(), v.elements.end());
    m.add(key, TraitValueView{v.kind, v.json, v.number, elements.data(), elements.size()}, rule, ts, priority);
}

TraitMerger merged(const std::vector<Row>& rows) {
    TraitMerger m;
    for (const Row& r : rows) add(m, r.key, r.value, r.rule, r.ts, r.priority);
    return m;
}

}  // namespace

TEST(Traits, RuleNames) {
    for (auto rule : {Survivorship::Latest, Survivorship::Earliest, Survivorship::MostFrequent,
                      Survivorship::SourcePriority, Survivorship::Max, Survivorship::Min, Survivorship::Union})
        EXPECT_EQ(parse_survivorship(survivorship_name(rule)), rule);
    EXPECT_FALSE(parse_survivorship("newest").has_value());
}

TEST(Traits, LatestByEventTimeNotArrival) {
    TraitMerger m;
    add(m, "plan", str("pro"), Survivorship::Latest, 10 * kDay, TraitMerger::kNoPriority);
    add(m, "plan", str("free"), Survivorship::Latest, 5 * kDay, TraitMerger::kNoPriority);  // late, older
    EXPECT_EQ(survivor(m, "plan"), "\"pro\"");
    EXPECT_FALSE(m.may_matter("plan", 5 * kDay, 1));  // older: no need to read it
    EXPECT_TRUE(m.may_matter("plan", 10 * kDay, 1));  // same instant, better source
    EXPECT_TRUE(m.may_matter("city", 1, 1));          // a trait not seen yet
    // Same instant: the higher source priority, then the greater value.
    add(m, "plan", str("enterprise"), Survivorship::Latest, 10 * kDay, 2);
    EXPECT_EQ(survivor(m, "plan"), "\"enterprise\"");
    add(m, "plan", str("basic"), Survivorship::Latest, 10 * kDay, 2);
    EXPECT_EQ(survivor(m, "plan"), "\"enterprise\"");
    // An explicit null is a value: the trait was cleared.
    add(m, "plan", null_value(), Survivorship::Latest, 11 * kDay, TraitMerger::kNoPriority);
    EXPECT_EQ(survivor(m, "plan"), "null");
}

TEST(Traits, Earliest) {
    TraitMerger m = merged({{"city", str("Haifa"), Survivorship::Earliest, 3 * kDay, TraitMerger::kNoPriority},
                            {"city", str("Tel Aviv"), Survivorship::Earliest, 1 * kDay, TraitMerger::kNoPriority},
                            {"city", str("Eilat"), Survivorship::Earliest, 1 * kDay, TraitMerger::kNoPriority}});
    EXPECT_EQ(survivor(m, "city"), "\"Tel Aviv\"");  // tie at day 1: the greater value
}

TEST(Traits, SourcePriorityThenLatest) {
    TraitMerger m = merged({{"name", str("Sarah K"), Survivorship::SourcePriority, 9 * kDay, 3},
                            {"name", str("Sarah Katz"), Survivorship::SourcePriority, 1 * kDay, 1},
                            {"name", str("S. Katz"), Survivorship::SourcePriority, 2 * kDay, 1},
                            {"name", str("sarah"), Survivorship::SourcePriority, 20 * kDay, TraitMerger::kNoPriority}});
    EXPECT_EQ(survivor(m, "name"), "\"S. Katz\"");  // priority 1, the later of the two
}

TEST(Traits, MaxAndMinCompareNumbersAsNumbers) {
    TraitMerger m = merged({{"ltv", num(9, "9"), Survivorship::Max, 1, 1},
                            {"ltv", num(10.5, "10.5"), Survivorship::Max, 2, 1},
                            {"ltv", null_value(), Survivorship::Max, 3, 1},
                            {"low", num(9, "9"), Survivorship::Min, 1, 1},
                            {"low", num(10.5, "10.5"), Survivorship::Min, 2, 1},
                            {"low", null_value(), Survivorship::Min, 3, 1}});
    EXPECT_EQ(survivor(m, "ltv"), "10.5");  // "9" > "10.5" as text, not as numbers
    EXPECT_EQ(survivor(m, "low"), "9");     // nulls are neither
    // Across kinds, jsonb's order: a string ranks below a number.
    EXPECT_TRUE(trait_less(str("zzz"), num(1, "1")));
}

TEST(Traits, MostFrequentNeedsTwoAndTiesGoAlphabetically) {
    TraitMerger m = merged({{"cat", str("tv"), Survivorship::MostFrequent, 9 * kDay, 1},
                            {"cat", str("phones"), Survivorship::MostFrequent, 1 * kDay, 1}});
    EXPECT_EQ(survivor(m, "cat"), "\"tv\"");  // nothing twice: the latest stands in
    add(m, "cat", str("phones"), Survivorship::MostFrequent, 2 * kDay, 1);
    EXPECT_EQ(survivor(m, "cat"), "\"phones\"");
    add(m, "cat", str("tv"), Survivorship::MostFrequent, 3 * kDay, 1);
    add(m, "cat", str("audio"), Survivorship::MostFrequent, 4 * kDay, 1);
    add(m, "cat", str("audio"), Survivorship::MostFrequent, 5 * kDay, 1);
    EXPECT_EQ(survivor(m, "cat"), "\"audio\"");  // audio, phones, tv twice each: alphabetically first
}

TEST(Traits, UnionOfValuesAndArraysSortedUnique) {
    TraitMerger m = merged({{"tags", array({"\"vip\"", "\"b2b\""}), Survivorship::Union, 1, 1},
                            {"tags", str("vip"), Survivorship::Union, 2, 1},
                            {"tags", array({"\"alpha\"", "null"}), Survivorship::Union, 3, 1},
                            {"tags", null_value(), Survivorship::Union, 4, 1}});
    EXPECT_EQ(survivor(m, "tags"), "[\"alpha\",\"b2b\",\"vip\"]");
    TraitMerger nulls = merged({{"tags", null_value(), Survivorship::Union, 1, 1}});
    EXPECT_EQ(survivor(nulls, "tags"), "<none>");
}

TEST(Traits, StateRoundTripsThroughBytes) {
    TraitMerger m = merged({{"plan", str("pro"), Survivorship::Latest, 10, 2},
                            {"cat", str("tv"), Survivorship::MostFrequent, 1, 1},
                            {"cat", str("tv"), Survivorship::MostFrequent, 2, 1},
                            {"tags", array({"\"a\"", "1"}), Survivorship::Union, 3, 1},
                            {"ltv", num(3.25, "3.25"), Survivorship::Max, 4, 1}});
    TraitMerger back = TraitMerger::read(m.write());
    EXPECT_EQ(back.result(), m.result());
    EXPECT_EQ(back.write(), m.write());
    std::string bytes = m.write();
    EXPECT_THROW(TraitMerger::read(bytes.substr(0, bytes.size() - 3)), std::runtime_error);
    EXPECT_THROW(TraitMerger::read(bytes + "x"), std::runtime_error);
    bytes[0] = 9;
    EXPECT_THROW(TraitMerger::read(bytes), std::runtime_error);
}

// Hand-made states: format 2, a count of traits, then per trait its key and flags (0: latest,
// no value yet).
TEST(Traits, StateBytesAreChecked) {
    using namespace std::string_literals;
    EXPECT_TRUE(TraitMerger::read("\x02\x02\x01k\x00\x01m\x00"s).result().empty());
    EXPECT_EQ(TraitMerger::read("\x02\x02\x01k\x00\x01m\x00"s).write(), "\x02\x02\x01k\x00\x01m\x00"s);
    EXPECT_THROW(TraitMerger::read("\x02\x02\x01m\x00\x01k\x00"s), std::runtime_error);  // out of order
    EXPECT_THROW(TraitMerger::read("\x02\x02\x01k\x00\x01k\x00"s), std::runtime_error);  // twice
    EXPECT_THROW(TraitMerger::read("\x02\xff\xff\xff\xff\x0f\x01k\x00"s), std::runtime_error);  // 4G traits
    EXPECT_THROW(TraitMerger::read("\x02\x01\x01k\x10"s), std::runtime_error);  // a priority but no value
    EXPECT_THROW(TraitMerger::read("\x02\x01\x01k\x07"s), std::runtime_error);  // rule 7 does not exist
    EXPECT_THROW(TraitMerger::read("\x02\x01\x85k\x00"s), std::runtime_error);  // a key's length cut short
}

// Damaged bytes (each byte changed, and every cut) are refused with std::runtime_error or read
// as some state, never a crash or a read past their end (the sanitiser run checks that); what
// is read writes bytes that read back to the same state.
TEST(Traits, DamagedStateBytesNeverCrash) {
    TraitMerger m;
    std::string elements[] = {"\"a\"", "1"};
    std::string_view views[] = {elements[0], elements[1]};
    m.add("tags", TraitValueView{TraitValue::Array, "[\"a\",1]", 0, views, 2}, Survivorship::Union, 3, 2,
          Provenance{"crm", "row-1"});
    m.add("cat", TraitValueView{TraitValue::String, "\"tv\"", 0, nullptr, 0}, Survivorship::MostFrequent, 4,
          TraitMerger::kNoPriority, Provenance{"identify", ""});
    m.add("ltv", TraitValueView{TraitValue::Number, "3.25", 3.25, nullptr, 0}, Survivorship::Max, 5, 1);
    const std::string bytes = m.write();
    std::mt19937 rng(7);
    int refused = 0, read = 0;
    auto check = [&](const std::string& damaged) {
        try {
            TraitMerger back = TraitMerger::read(damaged);
            std::string again = back.write();
            EXPECT_EQ(TraitMerger::read(again).write(), again);
            ++read;
        } catch (const std::runtime_error&) {
            ++refused;
        }
    };
    for (size_t at = 0; at < bytes.size(); ++at) {
        check(bytes.substr(0, at));
        for (int v = 0; v < 8; ++v) {
            std::string damaged = bytes;
            damaged[at] = static_cast<char>(rng());
            check(damaged);
        }
    }
    EXPECT_GT(refused, 0);
    EXPECT_GT(read, 0);
}

// Parallel workers split the rows any way and combine in any order: the record is the same.
TEST(Traits, AnySplitGivesTheSameRecord) {
    std::mt19937 rng(42);
    const Survivorship rules[] = {Survivorship::Latest, Survivorship::Earliest, Survivorship::MostFrequent,
                                  Survivorship::SourcePriority, Survivorship::Max, Survivorship::Min,
                                  Survivorship::Union};
    for (int round = 0; round < 2000; ++round) {
        std::vector<Row> rows;
        int n = 1 + static_cast<int>(rng() % 12);
        for (int i = 0; i < n; ++i) {
            int k = static_cast<int>(rng() % 7);
            int v = static_cast<int>(rng() % 4);
            TraitValue value = rng() % 5 == 0 ? null_value()
                               : rng() % 2   ? num(v, std::to_string(v))
                                             : str(std::string(1, static_cast<char>('a' + v)));
            rows.push_back({"t" + std::to_string(k), value, rules[k], static_cast<Micros>(rng() % 4),
                            rng() % 3 == 0 ? TraitMerger::kNoPriority : static_cast<int>(1 + rng() % 3)});
        }
        TraitMerger whole = merged(rows);
        // Leaving out what may_matter says cannot matter changes nothing.
        TraitMerger skipping;
        for (const Row& r : rows)
            if (skipping.may_matter(r.key, r.ts, r.priority)) add(skipping, r.key, r.value, r.rule, r.ts, r.priority);
        ASSERT_EQ(skipping.result(), whole.result()) << "round " << round;
        std::shuffle(rows.begin(), rows.end(), rng);
        size_t cut = rng() % (rows.size() + 1);
        TraitMerger left = merged({rows.begin(), rows.begin() + static_cast<long>(cut)});
        TraitMerger right = merged({rows.begin() + static_cast<long>(cut), rows.end()});
        TraitMerger left_alone = left;
        const std::string right_bytes = right.write();
        TraitMerger combined = TraitMerger::read(right_bytes);
        combined.merge(std::move(left));
        ASSERT_EQ(combined.result(), whole.result()) << "round " << round;
        TraitMerger into_empty;  // the first state a combine gets for a group
        into_empty.merge(TraitMerger::read(left_alone.write()));
        into_empty.merge(std::move(right));
        ASSERT_EQ(into_empty.result(), whole.result()) << "round " << round;
        // A worker's bytes folded into a state with rows of its own, as a later combine does.
        left_alone.merge(std::string_view(right_bytes));
        ASSERT_EQ(left_alone.result(), whole.result()) << "round " << round;
        ASSERT_EQ(left_alone.write(), into_empty.write()) << "round " << round;
    }
}

TEST(Traits, SourcesTellWhereEachSurvivorCameFrom) {
    TraitMerger m;
    auto add_from = [&](const char* key, TraitValue v, Survivorship rule, Micros ts, const char* source, const char* event) {
        std::vector<std::string_view> elements(v.elements.begin(), v.elements.end());
        m.add(key, TraitValueView{v.kind, v.json, v.number, elements.data(), elements.size()}, rule, ts,
              TraitMerger::kNoPriority, Provenance{source, event});
    };
    add_from("plan", str("plus"), Survivorship::Latest, 20 * kDay, "identify", "e2");
    add_from("plan", str("free"), Survivorship::Latest, 19 * kDay, "identify", "e1");  // late, older
    add_from("tags", array({"\"a\""}), Survivorship::Union, 5 * kDay, "crm", "row-7");
    add_from("tags", array({"\"b\""}), Survivorship::Union, 6 * kDay, "context.traits", "e3");
    add_from("tags", null_value(), Survivorship::Union, 9 * kDay, "identify", "e4");  // adds nothing
    TraitMerger back = TraitMerger::read(m.write());
    for (const TraitMerger* state : {&m, &back}) {
        std::vector<TraitSource> s = state->sources();
        ASSERT_EQ(s.size(), 2u);
        EXPECT_EQ(s[0].key, "plan");
        EXPECT_EQ(s[0].at, 20 * kDay);
        EXPECT_EQ(s[0].source, "identify");
        EXPECT_EQ(s[0].event_id, "e2");
        EXPECT_EQ(s[1].key, "tags");  // union: the latest contribution
        EXPECT_EQ(s[1].at, 6 * kDay);
        EXPECT_EQ(s[1].source, "context.traits");
    }
}

// The decision both trait states make (the aggregate's lighter state and TraitMerger), against
// each rule written out as the order it keeps the greatest of: for every pair of observations,
// beats says whether the new one is greater; where value_decides says the values do not count,
// the answer is the same whatever their order; where may_beat says no, no value wins.
TEST(Traits, SurvivorshipDecisionsFollowEachRulesOrder) {
    auto order = [](Survivorship rule, Micros ts, int priority, int value) -> std::tuple<long, long, long> {
        switch (rule) {
            case Survivorship::Earliest:
                return {-ts, -priority, value};
            case Survivorship::SourcePriority:
                return {-priority, ts, value};
            case Survivorship::Max:
                return {value, 0, 0};
            case Survivorship::Min:
                return {-value, 0, 0};
            default:
                return {ts, -priority, value};
        }
    };
    std::mt19937 rng(7);
    const Survivorship rules[] = {Survivorship::Latest, Survivorship::Earliest, Survivorship::SourcePriority,
                                  Survivorship::Max, Survivorship::Min};
    for (int round = 0; round < 20000; ++round) {
        Survivorship rule = rules[rng() % 5];
        Micros ts = rng() % 3, best_ts = rng() % 3;
        int priority = 1 + static_cast<int>(rng() % 3), best_priority = 1 + static_cast<int>(rng() % 3);
        if (rng() % 4 == 0) priority = TraitMerger::kNoPriority;
        int value = static_cast<int>(rng() % 3), best_value = static_cast<int>(rng() % 3);
        int by_value = value < best_value ? -1 : value > best_value ? 1 : 0;
        bool expected = order(rule, ts, priority, value) > order(rule, best_ts, best_priority, best_value);
        ASSERT_EQ(beats(rule, ts, priority, best_ts, best_priority, by_value), expected) << "round " << round;
        if (!value_decides(rule, ts, priority, best_ts, best_priority)) {
            for (int other : {-1, 0, 1})
                ASSERT_EQ(beats(rule, ts, priority, best_ts, best_priority, other), expected) << "round " << round;
        }
        if (!may_beat(rule, ts, priority, best_ts, best_priority)) {
            for (int other : {-1, 0, 1})
                ASSERT_FALSE(beats(rule, ts, priority, best_ts, best_priority, other)) << "round " << round;
        }
    }
}
