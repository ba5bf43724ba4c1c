// Computed traits in PostgreSQL: the definitions of cdp.computed_traits, and the per-profile
// states (cdp_internal.profile_state.computed) read back, written and shown as jsonb.
#pragma once

#include <vector>

#include "cdp/core/computed.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// A workspace's definitions, parsed, in name order (`only`: just that one, when not null).
// The caller holds an SPI connection.
struct ComputedDefinitions {
    int32 workspace = -1;
    std::vector<ComputedDefinition> list;
};
void load_computed_definitions(int32 workspace, ComputedDefinitions* out, const char* only = nullptr);

// The same, read once per query and kept with the calling function's info.
const ComputedDefinitions& computed_definitions_for(FunctionCallInfo fcinfo, int32 workspace);

// A stored state read back (an error naming the table when damaged), and its bytes (palloc'd).
void read_computed_state(bytea* bytes, ComputedState* out);
bytea* computed_state_bytes(const ComputedState& state);

// Every defined trait's value at `at` as a jsonb object (name -> value).
Datum computed_values(const ComputedDefinitions& definitions, const ComputedState& state, Micros at);

}  // namespace cdp::pg
