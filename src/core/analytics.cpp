#include "cdp/core/analytics.hpp"

#include <algorithm>
#include <climits>
#include <tuple>

namespace cdp {

namespace {
bool rows_before(const ConditionRow& a, const ConditionRow& b) {
    return std::tie(a.ts, a.tie, a.mask, a.row) < std::tie(b.ts, b.tie, b.mask, b.row);
}
}  // namespace

void sort_rows(ConditionRow* rows, size_t n) {
    if (!std::is_sorted(rows, rows + n, rows_before)) std::sort(rows, rows + n, rows_before);
}

// ---- window funnel ----------------------------------------------------------------------------

unsigned parse_funnel_modes(std::string_view text) {
    unsigned modes = 0;
    while (!text.empty()) {
        size_t comma = text.find(',');
        std::string_view word = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        while (!word.empty() && (word.front() == ' ' || word.front() == '\t')) word.remove_prefix(1);
        while (!word.empty() && (word.back() == ' ' || word.back() == '\t')) word.remove_suffix(1);
        if (word.empty()) continue;
        if (word == "strict_order") modes |= kStrictOrder;
        else if (word == "strict_deduplication") modes |= kStrictDeduplication;
        else if (word == "strict_increase") modes |= kStrictIncrease;
        else if (word == "strict_once") modes |= kStrictOnce;
        else throw std::invalid_argument(std::string(word));
    }
    return modes;
}

namespace {

// One (row, step) pair: a row satisfying k steps is k entries at the same instant.
struct Entry {
    Micros ts;
    std::int64_t tie;
    int step;  // -1: the row satisfies no step (kept for strict_order)
    std::uint32_t row;
};

std::vector<Entry> funnel_entries(const ConditionRow* rows, size_t n, int steps, unsigned modes) {
    std::vector<Entry> entries;
    entries.reserve(n);
    std::uint32_t used = steps >= 32 ? UINT32_MAX : (1u << steps) - 1;
    for (size_t i = 0; i < n; ++i) {
        std::uint32_t mask = rows[i].mask & used;
        if (mask == 0) {
            if (modes & kStrictOrder) entries.push_back({rows[i].ts, rows[i].tie, -1, rows[i].row});
            continue;
        }
        for (int s = 0; s < steps; ++s)
            if (mask & (1u << s)) entries.push_back({rows[i].ts, rows[i].tie, s, rows[i].row});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.ts, a.tie, a.step, a.row) < std::tie(b.ts, b.tie, b.step, b.row);
    });
    return entries;
}

// A partial chain: when its first step happened and when its last one did.
struct Span {
    Micros first = 0, last = 0;
};

// The search state shared by both algorithms: which steps were ever reached, and the times of
// the latest-starting chain that reached each.
struct Reached {
    int steps;
    std::array<bool, kMaxConditions> reached{};
    std::array<Span, kMaxConditions> best{};

    void record(int step, Span s) {
        if (!reached[step] || s.first >= best[step].first) best[step] = s;
        reached[step] = true;
    }
    int depth() const {
        for (int k = steps; k > 0; --k)
            if (reached[k - 1]) return k;
        return 0;
    }
    FunnelResult result() const {
        FunnelResult r;
        r.level = depth();
        for (int k = 0; k < r.level; ++k) r.time_to_step[k] = best[k].last - best[k].first;
        return r;
    }
};

// The ClickHouse checks of strict_order and strict_deduplication, before an entry of a step
// past the first is used: true when the search ends here.
bool strict_stop(const Reached& r, int step, bool started, unsigned modes) {
    if ((modes & kStrictDeduplication) && r.reached[step]) return true;
    if ((modes & kStrictOrder) && started && !r.reached[step - 1]) return true;
    return false;
}

// Without strict_once: for each step the latest-starting chain that reached it (a later start
// leaves more of the window for the next step, so it is always the one to extend). Under
// strict_increase, entries extend only chains of earlier instants (a snapshot per instant).
FunnelResult funnel_latest_start(const std::vector<Entry>& entries, int steps, Micros window, unsigned modes) {
    Reached r{steps};
    std::array<Span, kMaxConditions> level{}, snapshot{};
    std::array<bool, kMaxConditions> has{}, snapshot_has{};
    bool increase = modes & kStrictIncrease;
    bool started = false;
    for (size_t i = 0; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        if (increase && (i == 0 || entries[i - 1].ts != e.ts)) {
            snapshot = level;
            snapshot_has = has;
        }
        if (e.step < 0) {
            if (started) break;
            continue;
        }
        if (e.step == 0) {
            level[0] = {e.ts, e.ts};
            has[0] = true;
            r.record(0, level[0]);
            started = true;
            continue;
        }
        if (strict_stop(r, e.step, started, modes)) return r.result();
        const Span& from = increase ? snapshot[e.step - 1] : level[e.step - 1];
        bool from_has = increase ? snapshot_has[e.step - 1] : has[e.step - 1];
        if (!from_has || e.ts > from.first + window) continue;
        level[e.step] = {from.first, e.ts};
        has[e.step] = true;
        r.record(e.step, level[e.step]);
        if (e.step == steps - 1) break;
    }
    return r.result();
}

// strict_once: a row may serve one step of a chain only. Rows of different instants never
// collide, so at each new (ts, tie) only the latest-starting chain per step is kept; within an
// instant every chain is kept with the rows of that instant it used.
FunnelResult funnel_once(const std::vector<Entry>& entries, int steps, Micros window, unsigned modes) {
    struct Chain {
        Span span;
        std::vector<std::uint32_t> rows;  // rows of the current instant in the chain
    };
    Reached r{steps};
    std::vector<std::vector<Chain>> lists(static_cast<size_t>(steps));
    std::vector<std::vector<Chain>> snapshot;
    bool increase = modes & kStrictIncrease;
    bool started = false;
    auto same_instant = [&](const Entry& a, const Entry& b) {
        return a.ts == b.ts && (increase || a.tie == b.tie);
    };
    for (size_t i = 0; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        if (i == 0 || !same_instant(entries[i - 1], e)) {
            for (auto& list : lists) {
                if (list.size() > 1) {
                    auto best = std::max_element(list.begin(), list.end(), [](const Chain& a, const Chain& b) {
                        return a.span.first < b.span.first;
                    });
                    Chain keep{best->span, {}};
                    list.assign(1, std::move(keep));
                } else if (list.size() == 1) {
                    list[0].rows.clear();
                }
                if (!list.empty() && list[0].span.first + window < e.ts) list.clear();  // can never extend again
            }
            if (increase) snapshot = lists;
        }
        if (e.step < 0) {
            if (started) break;
            continue;
        }
        if (e.step == 0) {
            lists[0].push_back({{e.ts, e.ts}, {e.row}});
            r.record(0, {e.ts, e.ts});
            started = true;
            continue;
        }
        if (strict_stop(r, e.step, started, modes)) return r.result();
        const std::vector<Chain>& from = increase ? snapshot[static_cast<size_t>(e.step - 1)] : lists[static_cast<size_t>(e.step - 1)];
        std::vector<Chain> made;
        for (const Chain& c : from) {
            if (e.ts > c.span.first + window) continue;
            if (std::find(c.rows.begin(), c.rows.end(), e.row) != c.rows.end()) continue;
            Chain next{{c.span.first, e.ts}, c.rows};
            next.rows.push_back(e.row);
            r.record(e.step, next.span);
            made.push_back(std::move(next));
        }
        if (!made.empty() && e.step == steps - 1) break;
        auto& to = lists[static_cast<size_t>(e.step)];
        for (Chain& c : made) to.push_back(std::move(c));
    }
    return r.result();
}

}  // namespace

FunnelResult window_funnel(ConditionRow* rows, size_t n, int steps, Micros window, unsigned modes) {
    if (steps < 1 || steps > kMaxConditions) throw std::invalid_argument("a funnel has 1 to 32 steps");
    std::vector<Entry> entries = funnel_entries(rows, n, steps, modes);
    if (modes & kStrictOnce) return funnel_once(entries, steps, window, modes);
    return funnel_latest_start(entries, steps, window, modes);
}

// ---- retention --------------------------------------------------------------------------------

std::vector<bool> retention(std::uint32_t seen, int conditions) {
    std::vector<bool> out(static_cast<size_t>(std::max(conditions, 0)), false);
    bool first = seen & 1u;
    for (int i = 0; i < conditions; ++i) out[static_cast<size_t>(i)] = first && (seen & (1u << i));
    return out;
}

// ---- sequence patterns ------------------------------------------------------------------------

namespace {
enum BoundOp { kGe, kGt, kLe, kLt, kEq };

bool within(int op, Micros elapsed, Micros bound) {
    switch (op) {
        case kGe: return elapsed >= bound;
        case kGt: return elapsed > bound;
        case kLe: return elapsed <= bound;
        case kLt: return elapsed < bound;
        default: return elapsed == bound;
    }
}

constexpr size_t kNoMatch = SIZE_MAX;
// Work allowed per group before a pattern is called too complex (each unit: one row tried
// against one step).
constexpr size_t kMatchBudget = 50'000'000;
}  // namespace

SequencePattern::SequencePattern(std::string_view text, int conditions) {
    bool pending_any = false;
    std::vector<std::pair<int, Micros>> pending_bounds;
    size_t i = 0;
    auto fail = [&](const std::string& why, size_t at) { throw PatternError(why, at); };
    while (i < text.size()) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            ++i;
            continue;
        }
        if (text.compare(i, 2, ".*") == 0) {
            if (!steps_.empty()) pending_any = true;
            i += 2;
            continue;
        }
        if (text.compare(i, 2, "(?") != 0)
            fail("expected (?N), (?t>=S) or .* at byte " + std::to_string(i + 1), i);
        size_t close = text.find(')', i);
        if (close == std::string_view::npos) fail("unclosed \"(?\" at byte " + std::to_string(i + 1), i);
        std::string_view body = text.substr(i + 2, close - i - 2);
        if (!body.empty() && body[0] == 't') {
            std::string_view rest = body.substr(1);
            int op;
            if (rest.rfind(">=", 0) == 0) op = kGe, rest.remove_prefix(2);
            else if (rest.rfind("<=", 0) == 0) op = kLe, rest.remove_prefix(2);
            else if (rest.rfind("==", 0) == 0) op = kEq, rest.remove_prefix(2);
            else if (rest.rfind(">", 0) == 0) op = kGt, rest.remove_prefix(1);
            else if (rest.rfind("<", 0) == 0) op = kLt, rest.remove_prefix(1);
            else fail("a time bound is (?t>=S), (?t>S), (?t<=S), (?t<S) or (?t==S); got \"(?" + std::string(body) + ")\"", i);
            if (rest.empty() || rest.size() > 9 || rest.find_first_not_of("0123456789") != std::string_view::npos)
                fail("the seconds of a time bound must be a whole number; got \"" + std::string(rest) + "\"", i);
            if (steps_.empty()) fail("a time bound must follow a condition (?N)", i);
            pending_bounds.emplace_back(op, static_cast<Micros>(std::stoll(std::string(rest))) * kMicrosPerSecond);
        } else {
            if (body.empty() || body.size() > 3 || body.find_first_not_of("0123456789") != std::string_view::npos)
                fail("expected a condition number in \"(?" + std::string(body) + ")\"", i);
            int n = std::stoi(std::string(body));
            if (n < 1 || n > conditions)
                fail("condition (?" + std::to_string(n) + ") does not exist: there are " + std::to_string(conditions) +
                         " conditions",
                     i);
            steps_.push_back({n - 1, pending_any, std::move(pending_bounds)});
            pending_bounds.clear();
            pending_any = false;
        }
        i = close + 1;
    }
    if (steps_.empty()) fail("the pattern has no condition (?N)", 0);
    if (!pending_bounds.empty()) fail("a time bound must be followed by a condition (?N)", text.size());
    // A trailing .* matches no rows as well as any, and a leading one is implied: a match may
    // start at any row.
}

namespace {

// Backtracking over the pattern's steps, leftmost and earliest first, remembering what it
// learnt: the outcome of matching the rest of the pattern from a row, and (for a step after .*
// with no time bound, whose search does not depend on where it came from) the outcome of
// searching forward from a row. Outcomes: 0 unknown, 1 no match, end + 2 a match ending at end.
class Matcher {
public:
    Matcher(const std::vector<SequencePattern::Step>& steps, const ConditionRow* rows, size_t n)
        : steps_(steps), rows_(rows), n_(n) {
        size_t cells = steps.size() * (n + 1);
        if (cells <= kMemoCells) {
            rest_.assign(cells, 0);
            search_.assign(cells, 0);
        }
    }

    // A match starting at a row at or after `from`: its (first row, end), or kNoMatch.
    size_t first(size_t from, size_t& end) {
        for (size_t i = from; i < n_; ++i) {
            spend();
            if (!(rows_[i].mask & (1u << steps_[0].condition))) continue;
            size_t r = rest(1, i + 1);
            if (r != kNoMatch) {
                end = r;
                return i;
            }
        }
        return kNoMatch;
    }

private:
    static constexpr size_t kMemoCells = size_t{1} << 21;  // two tables of 8-byte cells: 32 MB at most
    const std::vector<SequencePattern::Step>& steps_;
    const ConditionRow* rows_;
    size_t n_;
    size_t budget_ = kMatchBudget;
    std::vector<size_t> rest_, search_;

    void spend() {
        if (budget_-- == 0) throw PatternTooComplex("the pattern needs too many steps to match this group's rows");
    }
    static size_t decode(size_t v) { return v == 1 ? kNoMatch : v - 2; }
    static size_t encode(size_t r) { return r == kNoMatch ? 1 : r + 2; }

    // Steps s.. matched after the row i - 1 (matched by step s - 1).
    size_t rest(size_t s, size_t i) {
        if (s == steps_.size()) return i;
        size_t cell = s * (n_ + 1) + i;
        if (!rest_.empty() && rest_[cell] != 0) return decode(rest_[cell]);
        const SequencePattern::Step& step = steps_[s];
        Micros last = rows_[i - 1].ts;
        size_t r = kNoMatch;
        if (!step.after_any) {
            if (i < n_) r = at(s, i, last);
        } else if (step.bounds.empty() && !search_.empty()) {
            r = search(s, i);
        } else {
            for (size_t j = i; j < n_ && r == kNoMatch; ++j) r = at(s, j, last);
        }
        if (!rest_.empty()) rest_[cell] = encode(r);
        return r;
    }

    // Step s (no time bound) at the first row from j on that leads to a match.
    size_t search(size_t s, size_t j) {
        size_t r = kNoMatch, k = j;
        for (; k < n_; ++k) {
            size_t cell = s * (n_ + 1) + k;
            if (search_[cell] != 0) {
                r = decode(search_[cell]);
                break;
            }
            r = at(s, k, 0);
            if (r != kNoMatch) break;
        }
        for (size_t m = j; m < k && m < n_; ++m) search_[s * (n_ + 1) + m] = encode(r);
        if (k < n_) search_[s * (n_ + 1) + k] = encode(r);
        return r;
    }

    // Step s matched by row j (the previous step's row at time `last`), then the rest.
    size_t at(size_t s, size_t j, Micros last) {
        spend();
        const SequencePattern::Step& step = steps_[s];
        if (!(rows_[j].mask & (1u << step.condition))) return kNoMatch;
        for (const auto& [op, bound] : step.bounds)
            if (!within(op, rows_[j].ts - last, bound)) return kNoMatch;
        return rest(s + 1, j + 1);
    }
};

}  // namespace

bool SequencePattern::match(const ConditionRow* rows, size_t n) const {
    Matcher m(steps_, rows, n);
    size_t end = 0;
    return m.first(0, end) != kNoMatch;
}

std::int64_t SequencePattern::count(const ConditionRow* rows, size_t n) const {
    Matcher m(steps_, rows, n);
    size_t from = 0, end = 0;
    std::int64_t matches = 0;
    while (from < n && m.first(from, end) != kNoMatch) {
        ++matches;
        from = end;
    }
    return matches;
}

}  // namespace cdp
