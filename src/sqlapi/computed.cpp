// Computed traits from SQL: checking a definition, a profile's values at a time, the state of a
// group of stored events (backfills and rebuilds), and merging and expiring stored states.
#include <deque>
#include <string>

#include "cdp/core/computed.hpp"
#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/computed_store.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
PGDLLEXPORT Datum cdp_check_computed_trait(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_computed_of(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_computed_state_trans(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_computed_state_final(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_computed_merge(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_computed_next_expiry(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_check_computed_trait);
PG_FUNCTION_INFO_V1(cdp_computed_of);
PG_FUNCTION_INFO_V1(cdp_computed_state_trans);
PG_FUNCTION_INFO_V1(cdp_computed_state_final);
PG_FUNCTION_INFO_V1(cdp_computed_merge);
PG_FUNCTION_INFO_V1(cdp_computed_next_expiry);
}

namespace cdp::pg {

namespace {

// A state argument read back, or an empty state for NULL.
ComputedState* state_arg(FunctionCallInfo fcinfo, int arg) {
    ComputedState* s = make_context_owned<ComputedState>(CurrentMemoryContext)->object;
    if (!PG_ARGISNULL(arg)) read_computed_state(PG_GETARG_BYTEA_PP(arg), s);
    return s;
}

Datum state_or_null(FunctionCallInfo fcinfo, const ComputedState& s) {
    bool empty = true;
    guarded([&] { empty = s.empty(); });
    if (empty) PG_RETURN_NULL();
    PG_RETURN_BYTEA_P(computed_state_bytes(s));
}

// The aggregate's state: the definitions, the state it builds, and the parsed JSON of a row.
struct Folding {
    ComputedDefinitions definitions;
    bool loaded = false;
    bool uses[3] = {false, false, false};  // FieldPath::Root: whether a definition reads it
    ComputedState state;
    Micros at = 0;
    rapidjson::Document json[3];
};

std::optional<EventType> event_type_of(std::string_view name) {
    static constexpr EventType kTypes[] = {EventType::Track, EventType::Identify, EventType::Page,
                                           EventType::Screen, EventType::Group, EventType::Alias};
    for (EventType t : kTypes)
        if (name == event_type_name(t)) return t;
    return std::nullopt;
}

std::string_view text_arg(FunctionCallInfo fcinfo, int arg) {
    if (PG_ARGISNULL(arg)) return {};
    text* t = PG_GETARG_TEXT_PP(arg);
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

}  // namespace

}  // namespace cdp::pg

using namespace cdp;
using namespace cdp::pg;

// cdp_internal.check_computed_trait(name, definition): an error saying what is wrong, or nothing.
Datum cdp_check_computed_trait(PG_FUNCTION_ARGS) {
    char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* definition = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(1)));
    guarded([&] { (void)parse_computed_definition(name, definition); });
    PG_RETURN_VOID();
}

// cdp_internal.computed_of(workspace, state, at): every defined trait's value at `at`.
Datum cdp_computed_of(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(2)) PG_RETURN_NULL();
    const ComputedDefinitions& definitions = computed_definitions_for(fcinfo, PG_GETARG_INT32(0));
    ComputedState* state = state_arg(fcinfo, 1);
    PG_RETURN_DATUM(computed_values(definitions, *state, to_unix(PG_GETARG_TIMESTAMPTZ(2))));
}

// cdp_internal.computed_state(workspace, only, at, type, event, name, ts, event_id, properties,
// traits, context): the state of a group of stored events, for the workspace's definitions (or
// only the one named), windows as of `at`.
Datum cdp_computed_state_trans(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "cdp_internal.computed_state_trans");
    Folding* f;
    if (PG_ARGISNULL(0)) {
        if (PG_ARGISNULL(1) || PG_ARGISNULL(3))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("workspace and time must not be null"),
                            errdetail("cdp_internal.computed_state folds events for a workspace as of a time."),
                            errhint("Pass both.")));
        MemoryContext old = MemoryContextSwitchTo(context);
        f = make_context_owned<Folding>(context)->object;
        MemoryContextSwitchTo(old);
        char* only = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
        spi_connect();
        load_computed_definitions(PG_GETARG_INT32(1), &f->definitions, only);
        spi_finish();
        guarded([&] {
            for (const ComputedDefinition& d : f->definitions.list) {
                if (d.property) f->uses[d.property->root] = true;
                for (const Condition& c : d.where) f->uses[c.field.root] = true;
            }
        });
        f->at = to_unix(PG_GETARG_TIMESTAMPTZ(3));
    } else {
        f = reinterpret_cast<Folding*>(PG_GETARG_POINTER(0));
    }
    if (f->definitions.list.empty() || PG_ARGISNULL(4) || PG_ARGISNULL(7)) PG_RETURN_POINTER(f);

    // The roots the definitions read, as JSON text for the core's parser.
    char* json[3] = {nullptr, nullptr, nullptr};
    for (int root = 0; root < 3; ++root)
        if (f->uses[root] && !PG_ARGISNULL(9 + root))
            json[root] = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(9 + root)));
    std::string_view type = text_arg(fcinfo, 4), event = text_arg(fcinfo, 5), name = text_arg(fcinfo, 6),
                     event_id = text_arg(fcinfo, 8);
    Micros ts = to_unix(PG_GETARG_TIMESTAMPTZ(7));
    guarded([&] {
        std::optional<EventType> t = event_type_of(type);
        if (!t) return;
        Event e;
        e.type = *t;
        e.event = event;
        e.name = name;
        e.message_id = event_id;
        e.timestamp = ts;
        const rapidjson::Value** roots[3] = {&e.properties, &e.traits, &e.context};
        for (int root = 0; root < 3; ++root) {
            if (json[root] == nullptr) continue;
            rapidjson::Document& doc = f->json[root];
            doc.SetNull();
            doc.GetAllocator().Clear();
            doc.ParseInsitu<rapidjson::kParseFullPrecisionFlag>(json[root]);  // as ingest parses
            if (!doc.HasParseError()) *roots[root] = &doc;
        }
        f->state.observe(f->definitions.list, e, f->at);
    });
    PG_RETURN_POINTER(f);
}

Datum cdp_computed_state_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    auto* f = reinterpret_cast<Folding*>(PG_GETARG_POINTER(0));
    return state_or_null(fcinfo, f->state);
}

// cdp_internal.computed_merge(workspace, a, b, at): two states of one profile as one, each first
// rid of what no longer counts at `at` (buckets out of their windows, dropped definitions).
Datum cdp_computed_merge(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(3)) PG_RETURN_NULL();
    const ComputedDefinitions& definitions = computed_definitions_for(fcinfo, PG_GETARG_INT32(0));
    ComputedState* a = state_arg(fcinfo, 1);
    ComputedState* b = state_arg(fcinfo, 2);
    Micros at = to_unix(PG_GETARG_TIMESTAMPTZ(3));
    guarded([&] {
        a->expire(definitions.list, at);
        b->expire(definitions.list, at);
        a->merge(std::move(*b));
    });
    return state_or_null(fcinfo, *a);
}

// cdp_internal.computed_next_expiry(state): when a windowed value of the state next changes.
Datum cdp_computed_next_expiry(PG_FUNCTION_ARGS) {
    ComputedState* s = state_arg(fcinfo, 0);
    std::optional<Micros> at;
    guarded([&] { at = s->next_expiry(); });
    if (!at) PG_RETURN_NULL();
    PG_RETURN_TIMESTAMPTZ(to_postgres(*at));
}
