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
            const char* s = v->val.string.val;
            int len = v->val.string.len;
            bool plain = true;  // nothing that escape_json would escape
            for (int i = 0; i < len && plain; ++i) {
                auto c = static_cast<unsigned char>(s[i]);
                plain = c >= 0x20 && c != '"' && c != '\\';
            }
            if (plain) {
                enlargeStringInfo(buf, len + 2);
                buf->data[buf->len++] = '"';
                memcpy(buf->data + buf->len, s, len);
                buf->len += len;
                buf->data[buf->len++] = '"';
                buf->data[buf->len] = '\0';
            } else {
                escape_json(buf, pnstrdup(s, len));
            }
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

// The children of a jsonb container as JsonbValues, read straight from its JEntries (what
// jsonb_util.c's fillJsonbValue does for its iterators, without an iterator to allocate).
class Children {
public:
    explicit Children(JsonbContainer* jc)
        : jc_(jc),
          base_(reinterpret_cast<char*>(&jc->children[JsonContainerSize(jc) * (JsonContainerIsObject(jc) ? 2 : 1)])) {}

    // The next child (they come in order: an object's keys, then its values).
    void next(JsonbValue* v) {
        JEntry e = jc_->children[index_++];
        uint32 end = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : offset_ + JBE_OFFLENFLD(e);
        if (JBE_ISSTRING(e)) {
            v->type = jbvString;
            v->val.string.val = base_ + offset_;
            v->val.string.len = static_cast<int>(end - offset_);
        } else if (JBE_ISNUMERIC(e)) {
            v->type = jbvNumeric;
            v->val.numeric = reinterpret_cast<Numeric>(base_ + INTALIGN(offset_));
        } else if (JBE_ISBOOL_TRUE(e) || JBE_ISBOOL_FALSE(e)) {
            v->type = jbvBool;
            v->val.boolean = JBE_ISBOOL_TRUE(e);
        } else if (JBE_ISNULL(e)) {
            v->type = jbvNull;
        } else {
            v->type = jbvBinary;
            v->val.binary.data = reinterpret_cast<JsonbContainer*>(base_ + INTALIGN(offset_));
            v->val.binary.len = static_cast<int>(end - INTALIGN(offset_));
        }
        offset_ = end;
    }

private:
    JsonbContainer* jc_;
    char* base_;
    int index_ = 0;
    uint32 offset_ = 0;
};

// The top-level traits of a row that may change the record, their texts in `buf` (palloc'd).
RowTrait* row_traits(Jsonb* traits, TraitMerger* state, const TraitRules* rules, Micros ts, int priority, StringInfo buf,
                     int* count) {
    // Only an object has traits (its children are read as keys, then values).
    int pairs = JB_ROOT_IS_OBJECT(traits) ? static_cast<int>(JB_ROOT_COUNT(traits)) : 0;
    auto* out = static_cast<RowTrait*>(palloc(sizeof(RowTrait) * std::max(pairs, 1)));
    // The keys first, then the values, as they are stored.
    auto* keys = static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * std::max(pairs, 1)));
    Children children(&traits->root);
    for (int i = 0; i < pairs; ++i) children.next(&keys[i]);
    int n = 0;
    size_t near = 0;
    for (int i = 0; i < pairs; ++i) {
        JsonbValue v;
        children.next(&v);
        std::string_view key(keys[i].val.string.val, static_cast<size_t>(keys[i].val.string.len));
        Survivorship rule = Survivorship::Latest;
        bool matters = true;
        guarded([&] {
            if (!rules->by_trait.empty()) {
                auto r = rules->by_trait.find(key);
                if (r != rules->by_trait.end()) rule = r->second;
            }
            size_t at = state->find(key, near);
            if (at != TraitMerger::npos) near = at + 1;
            matters = state->may_matter(at, ts, priority);
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
            Children elements(v.val.binary.data);
            for (int i = 0; i < size; ++i) {
                JsonbValue e;
                elements.next(&e);
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

namespace {

// Runs a reading of state bytes: malformed bytes are an error naming `what`.
template <typename Read>
void reading_state(const char* what, Read read) {
    char why[128] = "";
    guarded([&] {
        try {
            read();
        } catch (const std::runtime_error& e) {
            snprintf(why, sizeof why, "%s", e.what());
        }
    });
    if (why[0] != '\0') corrupt_aggregate_state(what, why);
}

}  // namespace

void read_trait_state(std::string_view bytes, TraitMerger* state, const char* what) {
    reading_state(what, [&] { *state = TraitMerger::read(bytes); });
}

void merge_trait_state(std::string_view bytes, TraitMerger* state, const char* what) {
    reading_state(what, [&] { state->merge(bytes); });
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
        if (state->empty()) state->reserve(static_cast<size_t>(n));
        size_t near = 0;
        for (int i = 0; i < n; ++i) {
            const RowTrait& r = row[i];
            TraitValueView value{r.kind, std::string_view(buf.data + r.offset, static_cast<size_t>(r.length)), r.number,
                                 elements, static_cast<size_t>(r.elements)};
            for (int e = 0; e < r.elements; ++e)
                elements[e] = std::string_view(buf.data + r.element_offset[e],
                                               static_cast<size_t>(r.element_offset[e + 1] - r.element_offset[e]));
            near = state->add(r.key, value, r.rule, ts, priority, from, near) + 1;
        }
    });
}

}  // namespace cdp::pg
