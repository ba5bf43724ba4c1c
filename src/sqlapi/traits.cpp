// cdp.merge_traits(traits jsonb, ts timestamptz [, source_priority int [, workspace_id int]]):
// the golden record of a group's trait objects, each top-level trait surviving by its rule in
// cdp.trait_rules (latest by default). Parallel-safe: states combine and serialise.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cdp/core/traits.hpp"
#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/jsonb.hpp"
#include "cdp/pg/numeric_text.hpp"
#include "cdp/pg/spi.hpp"
#include "cdp/pg/trait_input.hpp"

extern "C" {
#include "utils/json.h"

PGDLLEXPORT Datum cdp_merge_traits_trans(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_merge_traits_combine(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_merge_traits_serialize(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_merge_traits_deserialize(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_merge_traits_final(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_merge_traits_trans);
PG_FUNCTION_INFO_V1(cdp_merge_traits_combine);
PG_FUNCTION_INFO_V1(cdp_merge_traits_serialize);
PG_FUNCTION_INFO_V1(cdp_merge_traits_deserialize);
PG_FUNCTION_INFO_V1(cdp_merge_traits_final);
PGDLLEXPORT Datum cdp_traits_of(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_merge_trait_states(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_traits_of);
PG_FUNCTION_INFO_V1(cdp_merge_trait_states);
PGDLLEXPORT Datum cdp_trait_sources_of(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_trait_sources_of);
}

namespace cdp::pg {

namespace {

// The rules of a workspace, read once per query (kept with the aggregate call's function info).
const TraitRules* rules_for(FunctionCallInfo fcinfo, int32 workspace) {
    return &loaded_once_per_query<TraitRules>(fcinfo, workspace, load_trait_rules);
}

TraitMerger* new_state(MemoryContext context) { return make_context_owned<TraitMerger>(context)->object; }

// The aggregate's state: a merge state of its own, lean (no trait of the workspace's tallied:
// what a call without provenance mostly is) or full; or (`spare`) a parallel worker's state in
// its byte form, as deserialisation leaves it for the one combine call that folds it in (both
// in memory reset after each input row), not read into a state of its own first.
struct MergeState {
    TraitMerger* merger;
    LeanTraits* lean;
    bytea* spare;
};

MergeState* new_merge_state(MemoryContext context, bool lean) {
    auto* state = static_cast<MergeState*>(MemoryContextAllocZero(context, sizeof(MergeState)));
    if (lean) state->lean = make_lean_traits(context);
    else state->merger = new_state(context);
    return state;
}
MergeState* merge_state_arg(FunctionCallInfo fcinfo, int n) {
    return PG_ARGISNULL(n) ? nullptr : reinterpret_cast<MergeState*>(PG_GETARG_POINTER(n));
}

std::string_view bytes_of(bytea* data) { return std::string_view(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)); }
void read_bytea(bytea* data, TraitMerger* state) { read_trait_state(bytes_of(data), state, "cdp.merge_traits"); }
void merge_bytea(bytea* data, TraitMerger* state) { merge_trait_state(bytes_of(data), state, "cdp.merge_traits"); }

// The full merge state of an aggregate state, made from its lean state or its bytes when it has
// none (final and serialise functions are not given spare bytes by PostgreSQL, but are ready
// for them), in the memory the aggregate state is in.
TraitMerger* merger_of(MergeState* state) {
    if (state->merger == nullptr) {
        state->merger = new_state(GetMemoryChunkContext(state));
        if (state->lean != nullptr) {
            lean_into(state->lean, state->merger);
            state->lean = nullptr;
        } else {
            read_bytea(state->spare, state->merger);
            state->spare = nullptr;
        }
    }
    return state->merger;
}

}  // namespace

}  // namespace cdp::pg

using namespace cdp;
using namespace cdp::pg;

Datum cdp_merge_traits_trans(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    MergeState* state = merge_state_arg(fcinfo, 0);
    int32 workspace = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_INT32(4) : 1;
    const TraitRules* rules = rules_for(fcinfo, workspace);
    // A lighter state, unless the call keeps provenance (cdp_internal.merge_traits_state) or a
    // trait of the workspace is tallied.
    bool lean = PG_NARGS() <= 5 && !rules->tallies;
    if (state == nullptr) state = new_merge_state(context, lean);
    else if (state->lean != nullptr && !lean) (void)merger_of(state);
    if (PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_POINTER(state);  // no traits, or no time to order them by
    Jsonb* traits = PG_GETARG_JSONB_P(1);
    if (!JB_ROOT_IS_OBJECT(traits))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cdp.merge_traits takes a JSON object of traits"),
                        errdetail("Got a JSON %s.", JB_ROOT_IS_SCALAR(traits) ? "scalar" : "array"),
                        errhint("Pass one object per row, such as {\"plan\": \"pro\", \"city\": \"Tel Aviv\"}.")));
    Micros ts = to_unix(PG_GETARG_TIMESTAMPTZ(2));  // states keep Unix time, as ingest does
    int priority = PG_NARGS() > 3 && !PG_ARGISNULL(3) ? PG_GETARG_INT32(3) : TraitMerger::kNoPriority;
    if (state->lean != nullptr) {
        lean_add_jsonb_traits(state->lean, traits, *rules, ts, priority);
        PG_RETURN_POINTER(state);
    }
    // Where the rows came from (cdp_internal.merge_traits_state): a source and an event.
    text* source = PG_NARGS() > 5 && !PG_ARGISNULL(5) ? PG_GETARG_TEXT_PP(5) : nullptr;
    text* event_id = PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_TEXT_PP(6) : nullptr;
    Provenance from;
    if (source != nullptr) from.source = std::string_view(VARDATA_ANY(source), VARSIZE_ANY_EXHDR(source));
    if (event_id != nullptr) from.event_id = std::string_view(VARDATA_ANY(event_id), VARSIZE_ANY_EXHDR(event_id));
    add_jsonb_traits(state->merger, traits, *rules, ts, priority, from);
    PG_RETURN_POINTER(state);
}

Datum cdp_merge_traits_combine(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    MergeState* a = merge_state_arg(fcinfo, 0);
    MergeState* b = merge_state_arg(fcinfo, 1);
    if (b == nullptr) {
        if (a == nullptr) PG_RETURN_NULL();
        PG_RETURN_POINTER(a);
    }
    if (a == nullptr) a = new_merge_state(context, false);
    TraitMerger* ours = merger_of(a);
    if (b->spare != nullptr) {
        merge_bytea(b->spare, ours);
    } else {
        TraitMerger* theirs = merger_of(b);
        guarded([&] {
            TraitMerger copy = *theirs;  // a state the caller keeps is left as it was
            ours->merge(std::move(copy));
        });
    }
    PG_RETURN_POINTER(a);
}

namespace {

// A survivor's JSON text (jsonb's own output of the value) as a JsonbValue to push. Strings
// without escapes and the literals are taken as they stand; numbers become the numeric numeric_in
// makes (1.50 stays 1.50); escaped strings, arrays and objects through jsonb_in.
void value_of(std::string_view json, JsonbValue* v) {
    switch (json.empty() ? 'n' : json.front()) {  // no text (a damaged stored state): null
        case 'n':
            v->type = jbvNull;
            return;
        case 't':
        case 'f':
            v->type = jbvBool;
            v->val.boolean = json.front() == 't';
            return;
        case '"':
            if (memchr(json.data(), '\\', json.size()) == nullptr) {
                v->type = jbvString;
                v->val.string.val = const_cast<char*>(json.data() + 1);
                v->val.string.len = static_cast<int>(json.size() - 2);
                return;
            }
            break;
        case '[':
        case '{':
            break;
        default:
            v->type = jbvNumeric;
            v->val.numeric = numeric_of_plain_text(json);
            if (v->val.numeric != nullptr) return;
            v->val.numeric = DatumGetNumeric(DirectFunctionCall3(
                numeric_in, CStringGetDatum(pnstrdup(json.data(), json.size())), ObjectIdGetDatum(InvalidOid),
                Int32GetDatum(-1)));
            return;
    }
    Jsonb* parsed = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(json.data(), json.size()))));
    if (JB_ROOT_IS_SCALAR(parsed)) {
        (void)JsonbExtractScalar(&parsed->root, v);
        return;
    }
    v->type = jbvBinary;
    v->val.binary.data = &parsed->root;
    v->val.binary.len = static_cast<int>(VARSIZE(parsed) - VARHDRSZ);
}

// The survivors of a state as views, and the texts made for them: kept with the function's
// info for the whole query, so that a record per group does not allocate them again, and owned
// by its memory context (numeric_in and jsonb_in may fail while they are in use).
struct Survivors {
    std::vector<TraitMerger::SurvivorView> views;
    std::vector<std::string> made;
};

Survivors* survivors_for(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra == nullptr)
        fcinfo->flinfo->fn_extra = make_context_owned<Survivors>(fcinfo->flinfo->fn_mcxt)->object;
    return static_cast<Survivors*>(fcinfo->flinfo->fn_extra);
}

// The golden record of a state, as jsonb written straight in its binary form: the state keeps
// its traits in jsonb's order of keys (shorter first, then bytewise), each once, as an object
// keeps its keys, so nothing is sorted or parsed again.
Datum record_of(FunctionCallInfo fcinfo, const TraitMerger* state) {
    Survivors* survivors = survivors_for(fcinfo);
    guarded([&] { state->survivors(&survivors->views, &survivors->made); });
    int n = static_cast<int>(survivors->views.size());
    auto* keys = static_cast<std::string_view*>(palloc(sizeof(std::string_view) * std::max(n, 1)));
    auto* values = static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * std::max(n, 1)));
    for (int i = 0; i < n; ++i) {
        keys[i] = survivors->views[i].first;
        value_of(survivors->views[i].second, &values[i]);
    }
    return jsonb_object_of(keys, values, n);
}

}  // namespace

// The bytes as they are: combine folds them in (the state is in the memory PostgreSQL gives
// deserialisation, reset after each input row).
Datum cdp_merge_traits_deserialize(PG_FUNCTION_ARGS) {
    (void)aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    auto* state = static_cast<MergeState*>(palloc0(sizeof(MergeState)));
    state->spare = PG_GETARG_BYTEA_PP(0);
    PG_RETURN_POINTER(state);
}

Datum cdp_merge_traits_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    MergeState* state = merge_state_arg(fcinfo, 0);
    if (state->lean != nullptr) PG_RETURN_DATUM(lean_record(state->lean));
    PG_RETURN_DATUM(record_of(fcinfo, merger_of(state)));
}

// cdp_internal.traits_of(state bytea): the golden record a stored state stands for.
Datum cdp_traits_of(PG_FUNCTION_ARGS) {
    TraitMerger* state = new_state(CurrentMemoryContext);
    read_bytea(PG_GETARG_BYTEA_PP(0), state);
    PG_RETURN_DATUM(record_of(fcinfo, state));
}

// cdp_internal.trait_sources_of(state bytea): where each trait of the record came from, as
// {"trait": {"at": ..., "source": ..., "event_id": ...}}.
Datum cdp_trait_sources_of(PG_FUNCTION_ARGS) {
    TraitMerger* state = new_state(CurrentMemoryContext);
    read_bytea(PG_GETARG_BYTEA_PP(0), state);
    // Owned by the call's memory context while the object is written around them.
    using Sources = std::vector<std::pair<TraitSource, std::string>>;  // with the time as ISO 8601
    ContextOwned<Sources>* sources = make_context_owned<Sources>(CurrentMemoryContext);
    guarded([&] {
        for (TraitSource& s : state->sources()) {
            std::string at = format_iso8601(s.at);
            sources->object->emplace_back(std::move(s), std::move(at));
        }
    });
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfoChar(&buf, '{');
    bool first = true;
    for (const auto& [s, at] : *sources->object) {
        if (!first) appendStringInfoChar(&buf, ',');
        first = false;
        escape_json(&buf, s.key.c_str());
        appendStringInfoString(&buf, ":{\"at\":");
        escape_json(&buf, at.c_str());
        appendStringInfoString(&buf, ",\"source\":");
        if (s.source.empty()) appendStringInfoString(&buf, "null");
        else escape_json(&buf, s.source.c_str());
        appendStringInfoString(&buf, ",\"event_id\":");
        if (s.event_id.empty()) appendStringInfoString(&buf, "null");
        else escape_json(&buf, s.event_id.c_str());
        appendStringInfoChar(&buf, '}');
    }
    appendStringInfoChar(&buf, '}');
    sources->release();
    PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

// cdp_internal.merge_trait_states(a bytea, b bytea): one state holding what both saw (two
// profiles found to be one person).
Datum cdp_merge_trait_states(PG_FUNCTION_ARGS) {
    TraitMerger* a = new_state(CurrentMemoryContext);
    read_bytea(PG_GETARG_BYTEA_PP(0), a);
    merge_bytea(PG_GETARG_BYTEA_PP(1), a);
    PG_RETURN_BYTEA_P(trait_state_bytes(*a));
}

Datum cdp_merge_traits_serialize(PG_FUNCTION_ARGS) {
    PG_RETURN_BYTEA_P(trait_state_bytes(*merger_of(merge_state_arg(fcinfo, 0))));
}

