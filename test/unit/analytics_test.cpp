#include "cdp/core/analytics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <tuple>

using namespace cdp;

namespace {

constexpr Micros kMin = kMicrosPerMinute;

// Rows from (minute, conditions) pairs, numbered in input order.
std::vector<ConditionRow> rows_of(std::initializer_list<std::pair<int, std::uint32_t>> spec) {
    std::vector<ConditionRow> rows;
    for (auto [minute, mask] : spec)
        rows.push_back({minute * kMin, 0, mask, static_cast<std::uint32_t>(rows.size())});
    return rows;
}

int level(std::vector<ConditionRow> rows, int steps, Micros window, unsigned modes = 0) {
    return window_funnel(rows.data(), rows.size(), steps, window, modes).level;
}

constexpr std::uint32_t A = 1, B = 2, C = 4, D = 8;

// ---- brute-force references ----------------------------------------------------------------

struct Entry {
    Micros ts;
    std::int64_t tie;
    int step;
    std::uint32_t row;
};

// The deepest k with entries e0..e(k-1) of steps 0..k-1 at increasing positions of the (ts,
// tie, step, row) order, the last within `window` of the first; strictly later each time under
// strict_increase; from distinct rows under strict_once. Tries every chain.
int reference_funnel(const std::vector<ConditionRow>& rows, int steps, Micros window, unsigned modes) {
    std::vector<Entry> entries;
    for (const ConditionRow& r : rows)
        for (int s = 0; s < steps; ++s)
            if (r.mask & (1u << s)) entries.push_back({r.ts, r.tie, s, r.row});
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.ts, a.tie, a.step, a.row) < std::tie(b.ts, b.tie, b.step, b.row);
    });
    int best = 0;
    std::vector<Entry> chain_space;   // the entries a chain from one start may use
    std::vector<std::uint32_t> used;  // rows in the chain so far
    std::function<void(size_t, int)> extend = [&](size_t at, int depth) {
        best = std::max(best, depth);
        for (size_t j = at + 1; j < chain_space.size(); ++j) {
            const Entry& e = chain_space[j];
            if (e.step != depth) continue;
            if ((modes & kStrictIncrease) && e.ts <= chain_space[at].ts) continue;
            if ((modes & kStrictOnce) && std::find(used.begin(), used.end(), e.row) != used.end()) continue;
            used.push_back(e.row);
            extend(j, depth + 1);
            used.pop_back();
        }
    };
    for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].step != 0) continue;
        chain_space.clear();  // from the start on, within the window of it
        for (size_t j = i; j < entries.size(); ++j)
            if (entries[j].ts - entries[i].ts <= window) chain_space.push_back(entries[j]);
        used.assign(1, entries[i].row);
        extend(0, 1);
    }
    return best;
}

// Matches by trying every placement of the pattern's steps, leftmost start and earliest rows
// first; count takes non-overlapping matches from the left.
struct ReferenceStep {
    int condition;
    bool after_any;
    std::vector<std::pair<char, Micros>> bounds;  // op: '>' '<' 'G' (>=) 'L' (<=) '='
};

bool bound_ok(char op, Micros d, Micros b) {
    switch (op) {
        case '>': return d > b;
        case '<': return d < b;
        case 'G': return d >= b;
        case 'L': return d <= b;
        default: return d == b;
    }
}

size_t reference_rest(const std::vector<ReferenceStep>& steps, const std::vector<ConditionRow>& rows, size_t s,
                      size_t i) {
    if (s == steps.size()) return i;
    size_t end = steps[s].after_any ? rows.size() : std::min(i + 1, rows.size());
    for (size_t j = i; j < end; ++j) {
        if (!(rows[j].mask & (1u << steps[s].condition))) continue;
        bool ok = true;
        for (auto [op, b] : steps[s].bounds) ok = ok && bound_ok(op, rows[j].ts - rows[i - 1].ts, b);
        if (!ok) continue;
        size_t r = reference_rest(steps, rows, s + 1, j + 1);
        if (r != SIZE_MAX) return r;
    }
    return SIZE_MAX;
}

std::int64_t reference_count(const std::vector<ReferenceStep>& steps, const std::vector<ConditionRow>& rows) {
    std::int64_t n = 0;
    size_t from = 0;
    while (from < rows.size()) {
        size_t end = SIZE_MAX;
        for (size_t i = from; i < rows.size() && end == SIZE_MAX; ++i)
            if (rows[i].mask & (1u << steps[0].condition)) end = reference_rest(steps, rows, 1, i + 1);
        if (end == SIZE_MAX) break;
        ++n;
        from = end;
    }
    return n;
}

}  // namespace

// ---- window funnel ----------------------------------------------------------------------------

TEST(WindowFunnel, StepsInOrderWithinTheWindow) {
    EXPECT_EQ(level(rows_of({{0, A}, {5, B}, {10, C}}), 3, 60 * kMin), 3);
    EXPECT_EQ(level(rows_of({{0, A}, {5, B}, {70, C}}), 3, 60 * kMin), 2);   // C too late
    EXPECT_EQ(level(rows_of({{0, B}, {5, A}, {10, C}}), 3, 60 * kMin), 1);   // B before A does not count
    EXPECT_EQ(level(rows_of({{10, C}, {0, A}, {5, B}}), 3, 60 * kMin), 3);   // input order does not matter
    EXPECT_EQ(level(rows_of({{0, B}, {5, C}}), 3, 60 * kMin), 0);            // no first step
    EXPECT_EQ(level(rows_of({}), 3, 60 * kMin), 0);
    EXPECT_EQ(level(rows_of({{0, A}, {60, B}}), 2, 60 * kMin), 2);           // the window is inclusive
}

TEST(WindowFunnel, ALaterStartLeavesMoreOfTheWindow) {
    // A at 0, A again at 50, B at 55, C at 100: the chain from 50 reaches C within 60 minutes.
    EXPECT_EQ(level(rows_of({{0, A}, {50, A}, {55, B}, {100, C}}), 3, 60 * kMin), 3);
}

TEST(WindowFunnel, SimultaneousRowsAreTakenInStepOrder) {
    // B and A at the same minute: A is taken first, so B completes step 2 (as in ClickHouse).
    EXPECT_EQ(level(rows_of({{5, B}, {5, A}}), 2, 60 * kMin), 2);
    // A tie-breaker orders them as they happened.
    std::vector<ConditionRow> r = rows_of({{5, B}, {5, A}});
    r[0].tie = 1;
    r[1].tie = 2;
    EXPECT_EQ(level(r, 2, 60 * kMin), 1);
    // strict_increase wants a later instant for each step.
    EXPECT_EQ(level(rows_of({{5, B}, {5, A}}), 2, 60 * kMin, kStrictIncrease), 1);
}

TEST(WindowFunnel, OneRowMayServeSeveralStepsUnlessStrictOnce) {
    EXPECT_EQ(level(rows_of({{0, A | B}}), 2, kMin), 2);
    EXPECT_EQ(level(rows_of({{0, A | B}}), 2, kMin, kStrictOnce), 1);
    EXPECT_EQ(level(rows_of({{0, A | B}, {1, B}}), 2, 5 * kMin, kStrictOnce), 2);
}

TEST(WindowFunnel, StrictIncreaseFindsTheEarlierChain) {
    // A0 B1 | A2 | B3 C3: the chain from A2 reaches B at 3, but C at 3 is not later than B at 3;
    // the chain A0 B1 C3 is strictly increasing.
    EXPECT_EQ(level(rows_of({{0, A}, {1, B}, {2, A}, {3, B}, {3, C}}), 3, 60 * kMin, kStrictIncrease), 3);
}

TEST(WindowFunnel, StrictOrderStopsAtAnInterveningEvent) {
    // A B D C: D satisfies no step and ends the search at level 2 (the ClickHouse example).
    EXPECT_EQ(level(rows_of({{0, A}, {1, B}, {2, 0}, {3, C}}), 3, 60 * kMin, kStrictOrder), 2);
    EXPECT_EQ(level(rows_of({{0, A}, {1, B}, {2, 0}, {3, C}}), 3, 60 * kMin), 3);
    // Before the first step, other events do not matter.
    EXPECT_EQ(level(rows_of({{0, 0}, {1, A}, {2, B}}), 2, 60 * kMin, kStrictOrder), 2);
    // A later step before its predecessor ends the search too.
    EXPECT_EQ(level(rows_of({{0, A}, {1, C}, {2, B}, {3, C}}), 3, 60 * kMin, kStrictOrder), 1);
}

TEST(WindowFunnel, StrictDeduplicationStopsAtARepeatedStep) {
    EXPECT_EQ(level(rows_of({{0, A}, {1, B}, {2, B}, {3, C}}), 3, 60 * kMin, kStrictDeduplication), 2);
    EXPECT_EQ(level(rows_of({{0, A}, {1, B}, {2, B}, {3, C}}), 3, 60 * kMin), 3);
    EXPECT_EQ(level(rows_of({{0, A}, {1, A}, {2, B}}), 2, 60 * kMin, kStrictDeduplication), 2);  // step 1 restarts
}

TEST(WindowFunnel, TimesToEachStep) {
    // Two chains reach B (A0 B5 and A10 B12); C20 completes the later one, whose times count.
    std::vector<ConditionRow> r = rows_of({{0, A}, {5, B}, {10, A}, {12, B}, {20, C}, {30, A}, {31, B}});
    FunnelResult f = window_funnel(r.data(), r.size(), 3, 60 * kMin, 0);
    ASSERT_EQ(f.level, 3);
    EXPECT_EQ(f.time_to_step[0], 0);
    EXPECT_EQ(f.time_to_step[1], 2 * kMin);
    EXPECT_EQ(f.time_to_step[2], 10 * kMin);
    // Without a C, the latest chain to reach B: A30 B31.
    r.erase(r.begin() + 4);
    f = window_funnel(r.data(), r.size(), 3, 60 * kMin, 0);
    ASSERT_EQ(f.level, 2);
    EXPECT_EQ(f.time_to_step[1], 1 * kMin);
}

TEST(WindowFunnel, Modes) {
    EXPECT_EQ(parse_funnel_modes(""), 0u);
    EXPECT_EQ(parse_funnel_modes("strict_order, strict_once"), unsigned{kStrictOrder | kStrictOnce});
    EXPECT_THROW(parse_funnel_modes("strict"), std::invalid_argument);
}

TEST(WindowFunnel, MatchesTheBruteForceReference) {
    std::mt19937 rng(20261129);
    for (int round = 0; round < 20000; ++round) {
        int steps = 1 + static_cast<int>(rng() % 4);
        size_t n = rng() % 9;
        std::vector<ConditionRow> rows;
        for (size_t i = 0; i < n; ++i) {
            std::uint32_t mask = rng() % (1u << steps);
            if (rng() % 3 == 0) mask &= mask - 1;  // more rows with a single step
            rows.push_back({static_cast<Micros>(rng() % 8) * kMin, static_cast<std::int64_t>(rng() % 2),
                            mask, static_cast<std::uint32_t>(i)});
        }
        Micros window = static_cast<Micros>(rng() % 6) * kMin;
        for (unsigned modes : {0u, unsigned{kStrictIncrease}, unsigned{kStrictOnce}, unsigned{kStrictIncrease | kStrictOnce}}) {
            std::vector<ConditionRow> copy = rows;
            ASSERT_EQ(level(copy, steps, window, modes), reference_funnel(rows, steps, window, modes))
                << "round " << round << " modes " << modes;
        }
    }
}

// ---- retention --------------------------------------------------------------------------------

TEST(Retention, EachLaterConditionPairedWithTheFirst) {
    EXPECT_EQ(retention(0b101, 3), (std::vector<bool>{true, false, true}));
    EXPECT_EQ(retention(0b110, 3), (std::vector<bool>{false, false, false}));  // never the first
    EXPECT_EQ(retention(0, 2), (std::vector<bool>{false, false}));
}

// ---- sequences ----------------------------------------------------------------------------------

TEST(SequencePattern, AdjacentConditionsAndAnyInBetween) {
    std::vector<ConditionRow> r = rows_of({{0, A}, {1, C}, {2, B}});
    sort_rows(r.data(), r.size());
    EXPECT_FALSE(SequencePattern("(?1)(?2)", 3).match(r.data(), r.size()));  // C lies between
    EXPECT_TRUE(SequencePattern("(?1).*(?2)", 3).match(r.data(), r.size()));
    EXPECT_TRUE(SequencePattern("(?1)(?3)(?2)", 3).match(r.data(), r.size()));
    EXPECT_TRUE(SequencePattern("(?3)", 3).match(r.data(), r.size()));  // a match starts anywhere
}

TEST(SequencePattern, TimeBounds) {
    std::vector<ConditionRow> r = rows_of({{0, A}, {30, B}});
    EXPECT_TRUE(SequencePattern("(?1)(?t<=1800)(?2)", 2).match(r.data(), r.size()));
    EXPECT_FALSE(SequencePattern("(?1)(?t<1800)(?2)", 2).match(r.data(), r.size()));
    EXPECT_TRUE(SequencePattern("(?1)(?t==1800)(?2)", 2).match(r.data(), r.size()));
    EXPECT_FALSE(SequencePattern("(?1)(?t>1800)(?2)", 2).match(r.data(), r.size()));
    EXPECT_TRUE(SequencePattern("(?1).*(?t>=60)(?t<=3600)(?2)", 2).match(r.data(), r.size()));
}

TEST(SequencePattern, CountsNonOverlappingMatches) {
    std::vector<ConditionRow> r = rows_of({{0, A}, {1, B}, {2, A}, {3, A}, {4, B}, {5, B}});
    EXPECT_EQ(SequencePattern("(?1)(?2)", 2).count(r.data(), r.size()), 2);
    EXPECT_EQ(SequencePattern("(?1).*(?2)", 2).count(r.data(), r.size()), 2);
    EXPECT_EQ(SequencePattern("(?2)", 2).count(r.data(), r.size()), 3);
    EXPECT_EQ(SequencePattern("(?1)(?1)", 2).count(r.data(), r.size()), 1);
}

TEST(SequencePattern, BadPatternsSayWhere) {
    auto offset_of = [](const char* p) {
        try {
            SequencePattern s(p, 2);
        } catch (const PatternError& e) {
            return static_cast<long>(e.offset);
        }
        return -1L;
    };
    EXPECT_EQ(offset_of("(?1)(?3)"), 4);   // no condition 3
    EXPECT_EQ(offset_of("(?1)x"), 4);
    EXPECT_EQ(offset_of("(?1)(?t>=1.5)(?2)"), 4);
    EXPECT_EQ(offset_of("(?t<5)(?1)"), 0);  // a bound needs a condition before it
    EXPECT_EQ(offset_of("(?1)(?t<5)"), 10);  // and one after it
    EXPECT_EQ(offset_of(".*"), 0);          // no condition at all
    EXPECT_EQ(offset_of("(?1"), 0);
    EXPECT_EQ(offset_of("(?0)"), 0);
    EXPECT_EQ(offset_of(" (?1) .* (?2) "), -1);  // spaces are fine
}

TEST(SequencePattern, ManyRowsStayFast) {
    // 200k rows, none satisfying condition 2: backtracking without memory would take forever.
    std::vector<ConditionRow> r;
    for (std::uint32_t i = 0; i < 200000; ++i) r.push_back({static_cast<Micros>(i), 0, A | C, i});
    EXPECT_FALSE(SequencePattern("(?1).*(?1).*(?3).*(?2)", 3).match(r.data(), r.size()));
    EXPECT_EQ(SequencePattern("(?1).*(?3)", 3).count(r.data(), r.size()), 100000);
}

TEST(SequencePattern, MatchesTheBruteForceReference) {
    std::mt19937 rng(7);
    const char* ops[] = {">=", ">", "<=", "<", "=="};
    const char op_codes[] = {'G', '>', 'L', '<', '='};
    for (int round = 0; round < 20000; ++round) {
        int conditions = 1 + static_cast<int>(rng() % 3);
        std::string text;
        std::vector<ReferenceStep> steps;
        int length = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < length; ++k) {
            ReferenceStep s{static_cast<int>(rng() % conditions), false, {}};
            if (k > 0 && rng() % 2) {
                text += ".*";
                s.after_any = true;
            }
            if (k > 0 && rng() % 3 == 0) {
                int op = static_cast<int>(rng() % 5);
                int secs = static_cast<int>(rng() % 4) * 60;
                text += std::string("(?t") + ops[op] + std::to_string(secs) + ")";
                s.bounds.emplace_back(op_codes[op], secs * kMicrosPerSecond);
            }
            text += "(?" + std::to_string(s.condition + 1) + ")";
            steps.push_back(s);
        }
        size_t n = rng() % 10;
        std::vector<ConditionRow> rows;
        for (size_t i = 0; i < n; ++i) {
            std::uint32_t mask = 1 + rng() % ((1u << conditions) - 1);
            rows.push_back({static_cast<Micros>(rng() % 5) * kMin, 0, mask, static_cast<std::uint32_t>(i)});
        }
        sort_rows(rows.data(), rows.size());
        SequencePattern p(text, conditions);
        ASSERT_EQ(p.count(rows.data(), rows.size()), reference_count(steps, rows)) << text << " round " << round;
        ASSERT_EQ(p.match(rows.data(), rows.size()), reference_count(steps, rows) > 0) << text;
    }
}
