// cdp.merge_traits(traits jsonb, ts timestamptz [, source_priority int [, workspace_id int]]):
// the golden record of a group's trait objects, each top-level trait surviving by its rule in
// cdp.trait_rules (latest by default). Parallel-safe: states combine and serialise.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cdp/core/traits.hpp"
#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

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
}

namespace cdp::pg {

namespace {

// The rules of a workspace, read once per query (kept with the aggregate call's function info).
struct Rules {
    int32 workspace = 0;
    std::map<std::string, Survivorship, std::less<>> by_trait;
};

Rules* rules_for(FunctionCallInfo fcinfo, int32 workspace) {
    auto* holder = static_cast<ContextOwned<Rules>*>(fcinfo->flinfo->fn_extra);
    if (holder != nullptr && holder->object != nullptr && holder->object->workspace == workspace) return holder->object;
    if (holder == nullptr) {
        holder = make_context_owned<Rules>(fcinfo->flinfo->fn_mcxt);
        fcinfo->flinfo->fn_extra = holder;
    }
    Rules* rules = holder->object;
    spi_connect();
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&plan, "SELECT trait, rule FROM cdp.trait_rules WHERE workspace_id = $1", 1, types, args, nullptr, true);
    guarded([&] {
        rules->by_trait.clear();
        rules->workspace = workspace;
    });
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool isnull;
        text* trait = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        text* rule = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        std::string_view trait_name(VARDATA_ANY(trait), VARSIZE_ANY_EXHDR(trait));
        std::string_view rule_name(VARDATA_ANY(rule), VARSIZE_ANY_EXHDR(rule));
        guarded([&] { rules->by_trait[std::string(trait_name)] = parse_survivorship(rule_name).value_or(Survivorship::Latest); });
    }
    spi_finish();
    return rules;
}

TraitMerger* new_state(MemoryContext context) { return make_context_owned<TraitMerger>(context)->object; }

// One top-level trait of a row: where its JSON text (and its elements', for arrays) lies in
// the row's text buffer.
struct RowTrait {
    std::string_view key;
    Survivorship rule;
    TraitValue::Kind kind;
    int offset, length;
    double number;
    int elements;
    int* element_offset;  // elements + 1 offsets: element e is [offset[e], offset[e + 1])
};

// Appends the JSON text of a value, written the way jsonb's output writes it.
void append_json(StringInfo buf, JsonbValue* v, TraitValue::Kind* kind, double* number) {
    *number = 0;
    switch (v->type) {
        case jbvNull:
            *kind = TraitValue::Null;
            appendStringInfoString(buf, "null");
            break;
        case jbvBool:
            *kind = TraitValue::Bool;
            appendStringInfoString(buf, v->val.boolean ? "true" : "false");
            break;
        case jbvNumeric: {
            *kind = TraitValue::Number;
            char* digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
            *number = strtod(digits, nullptr);
            appendStringInfoString(buf, digits);
            break;
        }
        case jbvString: {
            *kind = TraitValue::String;
            char* raw = pnstrdup(v->val.string.val, v->val.string.len);
            escape_json(buf, raw);
            break;
        }
        case jbvBinary:
            *kind = JsonContainerIsArray(v->val.binary.data) ? TraitValue::Array : TraitValue::Object;
            (void)JsonbToCString(buf, v->val.binary.data, v->val.binary.len);
            break;
        default:
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("unexpected jsonb value in traits"),
                            errdetail("Value type %d.", static_cast<int>(v->type)), errhint("Report this as a bug.")));
    }
}

// The top-level traits of a row that may change the record, their texts in `buf` (palloc'd).
RowTrait* row_traits(Jsonb* traits, TraitMerger* state, const Rules* rules, Micros ts, int priority, StringInfo buf,
                     int* count) {
    int capacity = static_cast<int>(JB_ROOT_COUNT(traits));
    auto* out = static_cast<RowTrait*>(palloc(sizeof(RowTrait) * std::max(capacity, 1)));
    int n = 0;
    JsonbIterator* it = JsonbIteratorInit(&traits->root);
    JsonbValue v;
    JsonbIteratorToken token;
    std::string_view key;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            key = std::string_view(v.val.string.val, static_cast<size_t>(v.val.string.len));
            continue;
        }
        if (token != WJB_VALUE) continue;
        Survivorship rule = Survivorship::Latest;
        bool matters = true;
        guarded([&] {
            auto r = rules->by_trait.find(key);
            if (r != rules->by_trait.end()) rule = r->second;
            matters = state->may_matter(key, rule, ts, priority);
        });
        if (!matters) continue;  // an older value of a latest trait, say: not even written out
        RowTrait& t = out[n++];
        t.key = key;
        t.rule = rule;
        t.offset = buf->len;
        append_json(buf, &v, &t.kind, &t.number);
        t.length = buf->len - t.offset;
        t.elements = 0;
        t.element_offset = nullptr;
        if (t.kind == TraitValue::Array && rule == Survivorship::Union) {
            int size = static_cast<int>(JsonContainerSize(v.val.binary.data));
            t.element_offset = static_cast<int*>(palloc(sizeof(int) * (size + 1)));
            JsonbIterator* elems = JsonbIteratorInit(v.val.binary.data);
            JsonbValue e;
            JsonbIteratorToken et;
            while ((et = JsonbIteratorNext(&elems, &e, true)) != WJB_DONE) {
                if (et != WJB_ELEM || t.elements >= size) continue;
                TraitValue::Kind kind;
                double number;
                t.element_offset[t.elements++] = buf->len;
                append_json(buf, &e, &kind, &number);
            }
            t.element_offset[t.elements] = buf->len;
        }
    }
    *count = n;
    return out;
}

}  // namespace

}  // namespace cdp::pg

using namespace cdp;
using namespace cdp::pg;

Datum cdp_merge_traits_trans(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    auto* state = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<TraitMerger*>(PG_GETARG_POINTER(0));
    if (state == nullptr) state = new_state(context);
    if (PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_POINTER(state);  // no traits, or no time to order them by
    Jsonb* traits = PG_GETARG_JSONB_P(1);
    if (!JB_ROOT_IS_OBJECT(traits))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cdp.merge_traits takes a JSON object of traits"),
                        errdetail("Got a JSON %s.", JB_ROOT_IS_SCALAR(traits) ? "scalar" : "array"),
                        errhint("Pass one object per row, such as {\"plan\": \"pro\", \"city\": \"Tel Aviv\"}.")));
    Micros ts = PG_GETARG_TIMESTAMPTZ(2);
    int priority = PG_NARGS() > 3 && !PG_ARGISNULL(3) ? PG_GETARG_INT32(3) : TraitMerger::kNoPriority;
    int32 workspace = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_INT32(4) : 1;
    Rules* rules = rules_for(fcinfo, workspace);
    StringInfoData buf;
    initStringInfo(&buf);
    int n = 0;
    RowTrait* row = row_traits(traits, state, rules, ts, priority, &buf, &n);
    int most_elements = 0;
    for (int i = 0; i < n; ++i) most_elements = std::max(most_elements, row[i].elements);
    auto* elements = static_cast<std::string_view*>(palloc(sizeof(std::string_view) * (most_elements + 1)));
    guarded([&] {
        for (int i = 0; i < n; ++i) {
            const RowTrait& r = row[i];
            TraitValueView value{r.kind, std::string_view(buf.data + r.offset, static_cast<size_t>(r.length)), r.number,
                                 elements, static_cast<size_t>(r.elements)};
            for (int e = 0; e < r.elements; ++e)
                elements[e] = std::string_view(buf.data + r.element_offset[e],
                                               static_cast<size_t>(r.element_offset[e + 1] - r.element_offset[e]));
            state->add(r.key, value, r.rule, ts, priority);
        }
    });
    PG_RETURN_POINTER(state);
}

Datum cdp_merge_traits_combine(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    auto* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<TraitMerger*>(PG_GETARG_POINTER(0));
    auto* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<TraitMerger*>(PG_GETARG_POINTER(1));
    if (b == nullptr) {
        if (a == nullptr) PG_RETURN_NULL();
        PG_RETURN_POINTER(a);
    }
    if (a == nullptr) a = new_state(context);
    guarded([&] {
        TraitMerger copy = *b;  // the second state is left as it was
        a->merge(std::move(copy));
    });
    PG_RETURN_POINTER(a);
}

namespace {

// A state read back from its bytes into `state`; a clear error when they are not one.
void read_state(bytea* data, TraitMerger* state) {
    std::string_view bytes(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
    char why[128] = "";
    guarded([&] {
        try {
            *state = TraitMerger::read(bytes);
        } catch (const std::runtime_error& e) {
            snprintf(why, sizeof why, "%s", e.what());
        }
    });
    if (why[0] != '\0') corrupt_aggregate_state("cdp.merge_traits", why);
}

// A state's bytes as a bytea (palloc'd).
bytea* state_bytes(const TraitMerger* state) {
    // The bytes are owned by the call's memory context: palloc below may fail with them alive.
    ContextOwned<std::string>* bytes = make_context_owned<std::string>(CurrentMemoryContext);
    guarded([&] { *bytes->object = state->write(); });
    size_t size = bytes->object->size();
    auto* out = static_cast<bytea*>(palloc(VARHDRSZ + size));
    SET_VARSIZE(out, VARHDRSZ + size);
    memcpy(VARDATA(out), bytes->object->data(), size);
    bytes->release();
    return out;
}

// The golden record of a state, as jsonb.
Datum record_of(const TraitMerger* state) {
    // The survivors are owned by the call's memory context while the object is written around
    // them (escape_json and jsonb_in may fail with them alive).
    using Survivors = std::vector<std::pair<std::string, std::string>>;
    ContextOwned<Survivors>* survivors = make_context_owned<Survivors>(CurrentMemoryContext);
    guarded([&] { *survivors->object = state->result(); });
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfoChar(&buf, '{');
    bool first = true;
    for (const auto& [key, json] : *survivors->object) {
        if (!first) appendStringInfoChar(&buf, ',');
        first = false;
        escape_json(&buf, key.c_str());
        appendStringInfoChar(&buf, ':');
        appendBinaryStringInfo(&buf, json.data(), static_cast<int>(json.size()));
    }
    appendStringInfoChar(&buf, '}');
    survivors->release();
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

}  // namespace

Datum cdp_merge_traits_deserialize(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "a support function of cdp.merge_traits");
    TraitMerger* state = new_state(context);
    read_state(PG_GETARG_BYTEA_PP(0), state);
    PG_RETURN_POINTER(state);
}

Datum cdp_merge_traits_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    PG_RETURN_DATUM(record_of(reinterpret_cast<TraitMerger*>(PG_GETARG_POINTER(0))));
}

// cdp_internal.traits_of(state bytea): the golden record a stored state stands for.
Datum cdp_traits_of(PG_FUNCTION_ARGS) {
    TraitMerger* state = new_state(CurrentMemoryContext);
    read_state(PG_GETARG_BYTEA_PP(0), state);
    PG_RETURN_DATUM(record_of(state));
}

// cdp_internal.merge_trait_states(a bytea, b bytea): one state holding what both saw (two
// profiles found to be one person).
Datum cdp_merge_trait_states(PG_FUNCTION_ARGS) {
    TraitMerger* a = new_state(CurrentMemoryContext);
    TraitMerger* b = new_state(CurrentMemoryContext);
    read_state(PG_GETARG_BYTEA_PP(0), a);
    read_state(PG_GETARG_BYTEA_PP(1), b);
    guarded([&] { a->merge(std::move(*b)); });
    PG_RETURN_BYTEA_P(state_bytes(a));
}

Datum cdp_merge_traits_serialize(PG_FUNCTION_ARGS) {
    PG_RETURN_BYTEA_P(state_bytes(reinterpret_cast<TraitMerger*>(PG_GETARG_POINTER(0))));
}

