// SPI helpers: connect, run a statement from a per-backend plan cache, finish; errors reported
// with the statement that failed.
#pragma once

#include "cdp/pg/guard.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

void spi_connect();
void spi_finish();

// Prepares `sql` on first use (kept for the backend's lifetime in *plan), then executes it.
// `nulls` is SPI's convention ('n' for null, ' ' otherwise) or nullptr for no nulls.
void spi_run_cached(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types, Datum* args, const char* nulls,
                    bool read_only);

// The same, for statements over tables that start empty and grow to millions of rows (the
// identity tables): planned again at every execution, with the arguments and the tables' sizes
// at hand. One generic plan, made on the first batch when the tables were empty, can scan a whole
// table later; a plan per batch costs a fraction of a millisecond and is right at every size.
void spi_run_replanned(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types, Datum* args, const char* nulls,
                       bool read_only);

// spi_run_cached for a statement that probes a table which grows: its generic plan is made
// again whenever the table has doubled in size since the plan was made (*planned_blocks keeps
// that size), so a plan chosen for a small table (a sequential scan) does not outlive it; and
// when the table has shrunk to under half (truncated), so that its growth is counted anew.
void spi_run_cached_growing(SPIPlanPtr* plan, BlockNumber* planned_blocks, Oid table, const char* sql, int nargs,
                            Oid* types, Datum* args, const char* nulls, bool read_only);

// A table's oid by schema and name (InvalidOid when there is none).
inline Oid table_oid(const char* schema, const char* name) {
    return get_relname_relid(name, get_namespace_oid(schema, false));
}

// A workspace's settings (trait rules, computed trait definitions: a T with a `workspace`
// member), read by `load(workspace, T*)` over SPI once per query and kept with the calling
// function's info until the query ends.
template <typename T, typename Load>
T& loaded_once_per_query(FunctionCallInfo fcinfo, int32 workspace, Load load) {
    auto* holder = static_cast<ContextOwned<T>*>(fcinfo->flinfo->fn_extra);
    if (holder != nullptr && holder->object != nullptr && holder->object->workspace == workspace) return *holder->object;
    if (holder == nullptr) {
        holder = make_context_owned<T>(fcinfo->flinfo->fn_mcxt);
        fcinfo->flinfo->fn_extra = holder;
    }
    spi_connect();
    load(workspace, holder->object);
    spi_finish();
    return *holder->object;
}

}  // namespace cdp::pg
