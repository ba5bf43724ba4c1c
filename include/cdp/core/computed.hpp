// Computed traits: values a profile's events add up to (count, sum, min, max, first, last,
// distinct count, most frequent), over an event filter and an optional time window, kept
// incrementally as events arrive. Pure C++; the PostgreSQL layer stores the states.
//
// A definition is a JSON object:
//   {"function": "count", "event": "Product Viewed", "where": {"properties.category": "Audio"},
//    "window": "24 hours"}
// - function: count | sum | min | max | first | last | distinct_count | most_frequent
// - property: the value the function reads, a path such as "properties.price" (roots:
//   properties, traits, context); required by every function but count (which then counts
//   the events where the property is present and not null)
// - event: a name or a list of names (a track call's event, a page's or screen's name)
// - type: track | page | screen | identify | group | alias (track when event is given; else any)
// - where: {path: condition}; a condition is a value (equal), a list (one of), or an object of
//   operators "=", "!=", "<", "<=", ">", ">=", "in", "exists" (all must hold); a missing value
//   meets no condition but {"exists": false}
// - window: a duration ("24 hours", "30 days"); absent or "lifetime" for all time
// - bucket: the width of the time buckets a window is counted in (default: a round width of at
//   most a 48th of the window)
//
// A windowed value counts each event for at least `window` and at most `window + bucket` after
// the event's time: events are kept per bucket, and a bucket leaves the window once all of it is
// older than the window.
#pragma once
#include "cdp/core/pure.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/core/json.hpp"
#include "cdp/core/timestamp.hpp"
#include "cdp/core/traits.hpp"

namespace cdp {

enum class ComputedFunction : std::uint8_t { Count, Sum, Min, Max, First, Last, DistinctCount, MostFrequent };

// Where a value is read in an event: a root object and the keys below it.
struct FieldPath {
    enum Root : std::uint8_t { Properties, Traits, Context };
    Root root = Properties;
    std::vector<std::string> keys;
    std::string text;  // as written
    const rapidjson::Value* find(const Event& e) const;
};

// A JSON scalar a condition compares with.
struct Operand {
    TraitValue::Kind kind = TraitValue::Null;
    std::string string;  // strings: the text, unescaped
    double number = 0;
    bool boolean = false;
};

struct Condition {
    enum Op : std::uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, Exists };
    FieldPath field;
    Op op = Eq;
    std::vector<Operand> operands;  // one, or the list of "in"; Exists: one boolean
    bool holds(const Event& e) const;
};

struct ComputedDefinition {
    std::string name;
    ComputedFunction function = ComputedFunction::Count;
    std::optional<EventType> type;    // none: any type
    std::vector<std::string> events;  // none: any name
    std::optional<FieldPath> property;
    std::vector<Condition> where;
    Micros window = 0;                // 0: lifetime
    Micros bucket = 0;                // windowed: the bucket width
    std::uint64_t version = 0;        // a hash of the definition as given: a changed one starts over

    bool matches(const Event& e) const;
};

// Parses a definition; throws Error(InvalidParameter) naming what is wrong, with a hint.
ComputedDefinition parse_computed_definition(std::string_view name, std::string_view json);

// The computed traits of one profile: per trait, the partial results of its buckets.
class ComputedState {
public:
    // Folds an event into every definition it matches. Windowed traits skip events whose bucket
    // has already left the window at `now`.
    void observe(const std::vector<ComputedDefinition>& definitions, const Event& e, Micros now);
    // Folds another state in: the same person's events seen elsewhere (a merged profile, a
    // parallel worker). Traits of different versions keep the newer definition's.
    void merge(ComputedState&& other);
    // Drops buckets that count no more at `at`, and traits no definition has (by name and
    // version). True when anything was dropped.
    bool expire(const std::vector<ComputedDefinition>& definitions, Micros at);
    // The first instant at which a windowed value changes by a bucket leaving its window.
    std::optional<Micros> next_expiry() const;
    // The JSON text of the trait's value at `at` (0 or null when nothing counted).
    std::string value_json(const ComputedDefinition& d, Micros at) const;

    std::string write() const;
    static ComputedState read(std::string_view bytes);  // throws std::runtime_error
    bool empty() const { return traits_.empty(); }

    // One bucket's partial result; which members are used depends on the function.
    struct Partial {
        std::int64_t count = 0;
        __int128 sum = 0;       // sum: in billionths, exact
        double float_sum = 0;   // sum: once a value does not fit the exact form
        bool inexact = false;
        bool has = false;       // first, last, min, max: `best` is set
        Micros ts = 0;          // first, last: when, with `tie` (the event id) after it
        std::string tie;
        TraitValue best;
        std::set<std::uint64_t> hashes;                                     // distinct_count
        std::map<std::string, std::pair<std::int64_t, Micros>> frequencies;  // most_frequent: JSON -> (n, last seen)
    };

private:
    struct Trait {
        ComputedFunction function = ComputedFunction::Count;
        Micros window = 0, bucket = 0;
        std::uint64_t version = 0;
        std::map<std::int64_t, Partial> buckets;  // bucket index (0 for lifetime) -> partial
    };
    std::map<std::string, Trait, std::less<>> traits_;
};

}  // namespace cdp
