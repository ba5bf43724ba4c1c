#include "cdp/pg/trait_input.hpp"

#include <algorithm>

#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "utils/json.h"
}

namespace cdp::pg {

void load_trait_rules(int32 workspace, TraitRules* rules) {
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
}

namespace {

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
RowTrait* row_traits(Jsonb* traits, TraitMerger* state, const TraitRules* rules, Micros ts, int priority, StringInfo buf,
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

void read_trait_state(std::string_view bytes, TraitMerger* state, const char* what) {
    char why[128] = "";
    guarded([&] {
        try {
            *state = TraitMerger::read(bytes);
        } catch (const std::runtime_error& e) {
            snprintf(why, sizeof why, "%s", e.what());
        }
    });
    if (why[0] != '\0') corrupt_aggregate_state(what, why);
}

bytea* trait_state_bytes(const TraitMerger& state) {
    return state_bytes([&] { return state.write(); });
}

void add_jsonb_traits(TraitMerger* state, Jsonb* traits, const TraitRules& rules, Micros ts, int priority,
                      Provenance from) {
    StringInfoData buf;
    initStringInfo(&buf);
    int n = 0;
    RowTrait* row = row_traits(traits, state, &rules, ts, priority, &buf, &n);
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
            state->add(r.key, value, r.rule, ts, priority, from);
        }
    });
}

}  // namespace cdp::pg
