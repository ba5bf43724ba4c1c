// Behavioural analytics over one group's rows (one person's events, say): the state machines of
// ClickHouse's windowFunnel, retention and sequenceMatch / sequenceCount, computed exactly.
// Pure C++: the aggregates in src/sqlapi keep the rows compactly and call these at the end.
#pragma once
#include "cdp/core/pure.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cdp/core/timestamp.hpp"

namespace cdp {

constexpr int kMaxConditions = 32;

// One input row of a group: when it happened, a tie-breaker for rows at the same instant (0
// when none is given), which conditions it satisfies (bit i: condition i + 1), and its number
// within the group (the input order, which tells rows apart and orders what is otherwise equal).
struct ConditionRow {
    Micros ts;
    std::int64_t tie;
    std::uint32_t mask;
    std::uint32_t row;
};

// Sorts rows into time order: by (ts, tie), then (rows at the same instant with no tie-breaker to
// tell them apart) by their conditions, so the order, and every result, is the same whichever
// order the rows came in, in one process or in parallel workers.
void sort_rows(ConditionRow* rows, size_t n);

// ---- window funnel ----------------------------------------------------------------------------

enum FunnelMode : unsigned {
    kStrictOrder = 1,          // once a chain started, a row satisfying no step, or a later step
                               // before its predecessor, ends the search
    kStrictDeduplication = 2,  // a step seen again after it was reached ends the search
    kStrictIncrease = 4,       // each step strictly later in time than the one before
    kStrictOnce = 8,           // a row counts for one step of a chain at most
};

// "strict_order,strict_once" -> flags; "" -> 0. Throws std::invalid_argument naming what is not a mode.
unsigned parse_funnel_modes(std::string_view text);

struct FunnelResult {
    int level = 0;  // how many steps were reached in order, 0..steps
    // For each reached step k (k < level): the time from a chain's first step to step k, for the
    // latest-starting chain that had reached step k when the search ended (a chain that reached
    // the last step ends the search, so a completed funnel reports that chain's times).
    std::array<Micros, kMaxConditions> time_to_step{};
};

// The deepest step reached with steps 1..k in order, step k no later than `window` after step 1.
// Rows are taken in (ts, tie) order; rows at the same (ts, tie) in step order, so a row may
// complete the step after one satisfied at the same instant, and one row satisfying several
// consecutive steps may advance a chain by several (unless kStrictOnce). Sorts `rows`.
// Rows satisfying no condition matter only under kStrictOrder.
FunnelResult window_funnel(ConditionRow* rows, size_t n, int steps, Micros window, unsigned modes);

// ---- retention --------------------------------------------------------------------------------

// Retention over the conditions seen in a group (bit i: condition i + 1 held for some row): the
// first is whether condition 1 held; each later one whether condition 1 and that one both held.
std::vector<bool> retention(std::uint32_t seen, int conditions);

// ---- sequence patterns ------------------------------------------------------------------------

// A pattern of sequenceMatch: (?N) a row satisfying condition N; .* any rows; (?t>=S), (?t>S),
// (?t<=S), (?t<S), (?t==S) a bound in seconds on the time between the rows matched by the
// conditions around it. Rows satisfying no condition are not part of the sequence, so (?1)(?2)
// means the next such row after the one satisfying 1 satisfies 2.
class SequencePattern {
public:
    // Throws PatternError (with the byte offset) for what is not a pattern over `conditions`.
    SequencePattern(std::string_view text, int conditions);

    // Whether the rows (sorted by sort_rows, those with a zero mask left out) hold a match.
    bool match(const ConditionRow* rows, size_t n) const;
    // How many non-overlapping matches, taken from the left.
    std::int64_t count(const ConditionRow* rows, size_t n) const;

    struct Step {
        int condition;                               // 0-based
        bool after_any;                              // .* before it: rows may be skipped to reach it
        std::vector<std::pair<int, Micros>> bounds;  // (op, micros) on the time since the previous step
    };

private:
    std::vector<Step> steps_;
};

struct PatternError : std::invalid_argument {
    size_t offset;
    PatternError(const std::string& what, size_t at) : std::invalid_argument(what), offset(at) {}
};

// Thrown when matching a pattern takes more steps than any sensible pattern should.
struct PatternTooComplex : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace cdp
