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
};

// Reads the workspace's rules; the caller holds an SPI connection.
void load_trait_rules(int32 workspace, TraitRules* rules);

// Adds the top-level traits of a jsonb object, at event time `ts` from a source of `priority`;
// values that cannot change the state are not even written out.
void add_jsonb_traits(TraitMerger* state, Jsonb* traits, const TraitRules& rules, Micros ts, int priority,
                      Provenance from = {});

// A state read back from its bytes (a serialised aggregate state, or a stored profile record);
// a clear error naming `what` when they are not one.
void read_trait_state(std::string_view bytes, TraitMerger* state, const char* what);
// The same, folded into a state (TraitMerger::merge).
void merge_trait_state(std::string_view bytes, TraitMerger* state, const char* what);

// A state's bytes as a bytea (palloc'd).
bytea* trait_state_bytes(const TraitMerger& state);

}  // namespace cdp::pg
