// Survivorship: which of the values a profile's traits took over time make its golden record.
// Pure C++: the cdp.merge_traits aggregate feeds it the top-level traits of each row.
#pragma once
#include "cdp/core/pure.hpp"

#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cdp/core/timestamp.hpp"

namespace cdp {

// Per trait (DESIGN.md "Survivorship"); the default is Latest.
enum class Survivorship : std::uint8_t { Latest, Earliest, MostFrequent, SourcePriority, Max, Min, Union };

std::optional<Survivorship> parse_survivorship(std::string_view name);
const char* survivorship_name(Survivorship rule);

// A trait's value as the merge sees it: its JSON kind, its JSON text, its number (for numbers),
// and for arrays the JSON text of each element (what union merges).
struct TraitValue {
    // In jsonb's own order of kinds, which max and min follow across kinds.
    enum Kind : std::uint8_t { Null, String, Number, Bool, Array, Object };
    Kind kind = Null;
    std::string json;
    double number = 0;
    std::vector<std::string> elements;
};

// A value as the caller holds it (views of its own storage): what add() reads.
struct TraitValueView {
    TraitValue::Kind kind = TraitValue::Null;
    std::string_view json;
    double number = 0;
    const std::string_view* elements = nullptr;  // arrays: each element's JSON text
    size_t element_count = 0;
};

// Orders values for max, min and union: numbers by value, strings byte by byte, other kinds by
// jsonb's order of kinds, ties by JSON text.
bool trait_less(const TraitValue& a, const TraitValue& b);

// jsonb's order of object keys (shorter first, then bytewise), which states keep traits in.
inline bool key_before(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return a.size() < b.size();
    return a.compare(b) < 0;
}

// Whether two trait keys are the same: keys are short, and a loop over their bytes is quicker
// than a call to memcmp for them.
inline bool same_key(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    if (a.size() > 16) return a == b;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

// How a value orders against another (negative, zero, positive), as max, min and every tie go.
int compare_trait_values(const TraitValueView& a, const TraitValueView& b);

// Survivorship between an observation at (ts, priority) and the best one so far, at (best_ts,
// best_priority), for a rule that keeps one value (the rule the best of union and most_frequent
// is kept by is latest):
// - value_decides: whether the values' order counts (max and min; the others on a tie of time
//   and priority), so that a caller compares values only then;
// - beats: whether the observation wins, `by_value` being compare_trait_values(its value, the
//   best's) when value_decides says it counts (anything otherwise);
// - may_beat: false when no value at (ts, priority) could win.
bool value_decides(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority);
bool beats(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority, int by_value);
bool may_beat(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority);
// Whether a null value is passed over under the rule (max and min: a missing value is neither
// the largest nor the smallest) rather than kept as the trait's value (it was cleared).
inline bool passes_over_nulls(Survivorship rule) { return rule == Survivorship::Max || rule == Survivorship::Min; }

// Where a value came from: a source's name ("identify", "context.traits", a CRM table) and the
// event or row that carried it. Either may be empty.
struct Provenance {
    std::string_view source;
    std::string_view event_id;
};

// Where a surviving value came from: for latest, earliest, source priority, max and min the
// observation that survived; for most_frequent and union, the latest that contributed.
struct TraitSource {
    std::string key;
    Micros at;
    std::string source;
    std::string event_id;
};

// The merge state of a group: per trait key, what its rule needs to pick the survivor.
class TraitMerger {
public:
    // No source priority: ranks after every given one.
    static constexpr int kNoPriority = INT_MAX;

    // Where a trait is in this state (its place, for the calls below), or npos when it has none
    // yet. `near`: where the caller expects it, such as the place after the previous key of a
    // jsonb object (both go in jsonb's key order), checked first.
    static constexpr size_t npos = SIZE_MAX;
    size_t find(std::string_view key, size_t near = 0) const;

    // One row's value of a trait at event time `ts` from a source of `priority` (1 is first);
    // `near` as for find. The rule counts when the trait is new to the state. Returns its place.
    size_t add(std::string_view key, const TraitValueView& value, Survivorship rule, Micros ts, int priority,
             Provenance from = {}, size_t near = 0);
    // The same for a trait the state has, at the place find() gave (no search, no rule: its own).
    void offer_at(size_t place, const TraitValueView& value, Micros ts, int priority, Provenance from = {}) {
        offer(traits_[place], value, ts, priority, from);
    }
    // False when a value of the trait at `place` (npos: not seen yet) at (ts, priority) cannot
    // change the record whatever it is (an older value under latest, say): the caller may skip
    // making it.
    bool may_matter(size_t place, Micros ts, int priority) const;
    bool may_matter(std::string_view key, Micros ts, int priority) const { return may_matter(find(key), ts, priority); }
    // Folds another group's state in (parallel workers' partial states).
    void merge(TraitMerger&& other);
    // The same for a state in its byte form (write()); throws std::runtime_error, having folded
    // in part of it, when the bytes are malformed.
    void merge(std::string_view bytes);

    // The golden record: (key, JSON text of the surviving value), by key.
    std::vector<std::pair<std::string, std::string>> result() const;
    // The same as views: of this state's own strings, and of `made` for the texts that had to be
    // put together (union's arrays). Valid while both live and this state is unchanged.
    using SurvivorView = std::pair<std::string_view, std::string_view>;
    void survivors(std::vector<SurvivorView>* out, std::vector<std::string>* made) const;
    // Where each trait of the record came from, by key.
    std::vector<TraitSource> sources() const;

    // An explicit byte format; read() throws std::runtime_error on anything malformed.
    std::string write() const;
    static TraitMerger read(std::string_view bytes);

    bool empty() const { return traits_.empty(); }
    // Room for n traits (a new state told how many its first row has).
    void reserve(size_t n) { traits_.reserve(n); }

private:
    struct Candidate {
        TraitValue::Kind kind = TraitValue::Null;
        double number = 0;
        std::string json;
        Micros ts = 0;
        int priority = kNoPriority;
        std::string source, event_id;
    };
    // What most_frequent and union count, made only for traits with those rules.
    struct Tally {
        std::map<std::string, std::int64_t, std::less<>> counts;  // most_frequent: JSON text -> occurrences
        std::set<std::string, std::less<>> members;               // union: the JSON texts seen

        // n more occurrences of a value; a value as a member (each copied only when new).
        void count(std::string_view json, std::int64_t n) {
            auto it = counts.find(json);
            if (it != counts.end()) it->second += n;
            else counts.emplace(std::string(json), n);
        }
        void add(std::string_view json) {
            if (members.find(json) == members.end()) members.emplace(json);
        }
    };
    struct Trait {
        std::string key;
        Survivorship rule = Survivorship::Latest;
        bool has = false;
        Candidate best;  // latest, earliest, source priority, max, min; the latest one for
                         // most_frequent's fallback
        std::unique_ptr<Tally> tally;

        Trait() = default;
        Trait(const Trait& o)
            : key(o.key), rule(o.rule), has(o.has), best(o.best),
              tally(o.tally ? std::make_unique<Tally>(*o.tally) : nullptr) {}
        Trait& operator=(const Trait& o) {
            if (this != &o) *this = Trait(o);
            return *this;
        }
        Trait(Trait&&) noexcept = default;
        Trait& operator=(Trait&&) noexcept = default;
    };
    static Tally& tally_of(Trait& t) {
        if (!t.tally) t.tally = std::make_unique<Tally>();
        return *t.tally;
    }
    static const Tally& tally(const Trait& t) {
        static const Tally none;
        return t.tally ? *t.tally : none;
    }
    // By key in jsonb's order (shorter first, then bytewise), so that the keys of a jsonb object
    // come in the order they are kept: a state of a few traits is searched by one comparison.
    std::vector<Trait> traits_;

    // Where a trait with the key is or would go (the first place not before it).
    size_t lower(std::string_view key) const;
    // The trait's place, made (with the rule) when it has none.
    size_t place(std::string_view key, Survivorship rule, size_t near);
    // The rule a trait's best is chosen by: its own, but the latest contribution for union and
    // most_frequent (their best is the fallback and what sources() tells).
    static Survivorship best_rule_of(Survivorship rule) {
        return rule == Survivorship::Union || rule == Survivorship::MostFrequent ? Survivorship::Latest : rule;
    }
    // Whether (ts, priority, value) beats the current best under the rule.
    static bool better(Survivorship rule, Micros ts, int priority, const TraitValueView& v, const Candidate& b);
    static bool better(Survivorship rule, const Candidate& a, const Candidate& b);
    static void offer(Trait& t, const TraitValueView& v, Micros ts, int priority, Provenance from);
    // Makes (ts, priority, v) the trait's best.
    static void take(Trait& t, const TraitValueView& v, Micros ts, int priority, Provenance from);
};

}  // namespace cdp
