// Helpers shared by the aggregates with internal state (analytics, traits).
#pragma once

#include <string>

#include "cdp/pg/guard.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// The aggregate's memory context; an error naming `function` when called outside an aggregate.
MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* function);

// Reports a serialised aggregate state that does not read back (parallel workers pass states
// to the leader in their byte form).
[[noreturn]] void corrupt_aggregate_state(const char* aggregate, const char* why);

// The bytes a state's write() makes, as a bytea (palloc'd). The C++ string is owned by the
// current memory context meanwhile, since palloc may fail with it alive.
template <typename Write>
bytea* state_bytes(Write write) {
    ContextOwned<std::string>* bytes = make_context_owned<std::string>(CurrentMemoryContext);
    guarded([&] { *bytes->object = write(); });
    size_t size = bytes->object->size();
    auto* out = static_cast<bytea*>(palloc(VARHDRSZ + size));
    SET_VARSIZE(out, VARHDRSZ + size);
    memcpy(VARDATA(out), bytes->object->data(), size);
    bytes->release();
    return out;
}

}  // namespace cdp::pg
