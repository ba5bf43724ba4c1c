// Helpers shared by the aggregates with internal state (analytics, traits).
#pragma once

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// The aggregate's memory context; an error naming `function` when called outside an aggregate.
MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* function);

// Reports a serialised aggregate state that does not read back (parallel workers pass states
// to the leader in their byte form).
[[noreturn]] void corrupt_aggregate_state(const char* aggregate, const char* why);

}  // namespace cdp::pg
