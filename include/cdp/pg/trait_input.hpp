// Reading trait objects (jsonb) into a TraitMerger, the same way wherever they come from: the
// cdp.merge_traits aggregate, and ingest keeping profile records. Values become the JSON text
// jsonb's output writes, so states made either way compare alike.
#pragma once

#include <map>
#include <string>

#include "cdp/core/traits.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// A workspace's rules from cdp.trait_rules (a trait without one: latest).
struct TraitRules {
    int32 workspace = 0;
    std::map<std::string, Survivorship, std::less<>> by_trait;
    bool tallies = false;  // some trait is kept by most_frequent or union

    // The rule of a trait (latest when it has none).
    Survivorship rule_of(std::string_view trait) const {
        auto r = by_trait.find(trait);
        return r != by_trait.end() ? r->second : Survivorship::Latest;
    }
};

// Reads the workspace's rules; the caller holds an SPI connection.
void load_trait_rules(int32 workspace, TraitRules* rules);

// Adds the top-level traits of a jsonb object, at event time `ts` from a source of `priority`;
// values that cannot change the state are not even written out.
void add_jsonb_traits(TraitMerger* state, Jsonb* traits, const TraitRules& rules, Micros ts, int priority,
                      Provenance from = {});

// A lighter merge state for cdp.merge_traits when no trait is kept by most_frequent or union
// (what a TraitMerger tallies): per trait, the surviving value's jsonb bytes as they came, with
// its time and priority. Folding a row writes nothing out as JSON text, and the record is
// written from those bytes. It lives in the memory context it is made in (no C++ object), and
// goes with it. Its survivors are a TraitMerger's: the same decisions (may_beat, value_decides,
// beats), with values compared by their JSON text when their order counts.
struct LeanTraits;
LeanTraits* make_lean_traits(MemoryContext context);
// Adds the top-level traits of a jsonb object, as add_jsonb_traits does; the rules must tally
// nothing (TraitRules::tallies false).
void lean_add_jsonb_traits(LeanTraits* state, Jsonb* traits, const TraitRules& rules, Micros ts, int priority);
// Folds the state into a TraitMerger (for parallel workers' states, or a row whose rules tally).
void lean_into(const LeanTraits* state, TraitMerger* merger);
// The golden record, as jsonb.
Datum lean_record(const LeanTraits* state);

// A state read back from its bytes (a serialised aggregate state, or a stored profile record);
// a clear error naming `what` when they are not one.
void read_trait_state(std::string_view bytes, TraitMerger* state, const char* what);
// The same, folded into a state (TraitMerger::merge).
void merge_trait_state(std::string_view bytes, TraitMerger* state, const char* what);

// A state's bytes as a bytea (palloc'd).
bytea* trait_state_bytes(const TraitMerger& state);

}  // namespace cdp::pg
