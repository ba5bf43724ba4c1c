#include "cdp/pg/computed_store.hpp"

#include <string>

#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "utils/json.h"
}

namespace cdp::pg {

void load_computed_definitions(int32 workspace, ComputedDefinitions* out, const char* only) {
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), only != nullptr ? CStringGetTextDatum(only) : 0};
    char nulls[] = {' ', only != nullptr ? ' ' : 'n'};
    spi_run_cached(&plan,
                   "SELECT name, definition::text FROM cdp.computed_traits"
                   " WHERE workspace_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY name",
                   2, types, args, nulls, true);
    guarded([&] {
        out->workspace = workspace;
        out->list.clear();
    });
    for (uint64 r = 0; r < SPI_processed; ++r) {
        char* name = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        char* definition = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
        guarded([&] { out->list.push_back(parse_computed_definition(name, definition)); });
    }
}

const ComputedDefinitions& computed_definitions_for(FunctionCallInfo fcinfo, int32 workspace) {
    return loaded_once_per_query<ComputedDefinitions>(
        fcinfo, workspace, [](int32 w, ComputedDefinitions* out) { load_computed_definitions(w, out); });
}

void read_computed_state(bytea* bytes, ComputedState* out) {
    char why[128] = "";
    std::string_view view(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
    guarded([&] {
        try {
            *out = ComputedState::read(view);
        } catch (const std::runtime_error& e) {
            snprintf(why, sizeof why, "%s", e.what());
        }
    });
    if (why[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("invalid computed trait state: %s", why),
                        errdetail("cdp_internal.profile_state.computed holds the computed traits of a profile."),
                        errhint("Run cdp.rebuild_profile_records() to rebuild every profile's state from its events.")));
}

bytea* computed_state_bytes(const ComputedState& state) {
    return state_bytes([&] { return state.write(); });
}

Datum computed_values(const ComputedDefinitions& definitions, const ComputedState& state, Micros at) {
    ContextOwned<std::string>* json = make_context_owned<std::string>(CurrentMemoryContext);
    guarded([&] {
        std::string& out = *json->object;
        out = "{";
        for (const ComputedDefinition& d : definitions.list) {
            if (out.size() > 1) out += ", ";
            out += "\"" + d.name + "\": " + state.value_json(d, at);  // names are [a-z0-9_]
        }
        out += "}";
    });
    Datum result = DirectFunctionCall1(jsonb_in, CStringGetDatum(json->object->c_str()));
    json->release();
    return result;
}

}  // namespace cdp::pg
