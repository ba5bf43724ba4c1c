#include "cdp/pg/trait_input.hpp"

#include <algorithm>

#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/jsonb.hpp"
#include "cdp/pg/numeric_text.hpp"
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
        rules->tallies = false;
        rules->workspace = workspace;
    });
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool isnull;
        text* trait = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        text* rule = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        std::string_view trait_name(VARDATA_ANY(trait), VARSIZE_ANY_EXHDR(trait));
        std::string_view rule_name(VARDATA_ANY(rule), VARSIZE_ANY_EXHDR(rule));
        guarded([&] {
            Survivorship r = parse_survivorship(rule_name).value_or(Survivorship::Latest);
            rules->by_trait[std::string(trait_name)] = r;
            if (r == Survivorship::MostFrequent || r == Survivorship::Union) rules->tallies = true;
        });
    }
}

namespace {

// Appends the JSON text of a value, written the way jsonb's output writes it.
void append_json(StringInfo buf, JsonbValue* v, TraitValue::Kind* kind, double* number) {
    *number = 0;
    switch (v->type) {
        case jbvNull:
            *kind = TraitValue::Null;
            appendBinaryStringInfo(buf, "null", 4);
            break;
        case jbvBool:
            *kind = TraitValue::Bool;
            if (v->val.boolean) appendBinaryStringInfo(buf, "true", 4);
            else appendBinaryStringInfo(buf, "false", 5);
            break;
        case jbvNumeric: {
            *kind = TraitValue::Number;
            char text[kNumericTextMax];
            int len;
            if (numeric_text(v->val.numeric, text, &len, number)) {
                appendBinaryStringInfo(buf, text, len);
            } else {
                char* digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
                *number = strtod(digits, nullptr);
                appendStringInfoString(buf, digits);
            }
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

// A jsonb object's top-level members, keys read first (an object keeps its keys, then its
// values), then the values one by one in the same order.
class Members {
public:
    explicit Members(Jsonb* object)
        : count_(JB_ROOT_IS_OBJECT(object) ? static_cast<int>(JB_ROOT_COUNT(object)) : 0), children_(&object->root) {
        keys_ = count_ <= kSmall ? small_ : static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * count_));
        for (int i = 0; i < count_; ++i) children_.next(&keys_[i]);
    }
    int count() const { return count_; }
    std::string_view key(int i) const {
        return std::string_view(keys_[i].val.string.val, static_cast<size_t>(keys_[i].val.string.len));
    }
    // The next member's value (call once per member, in order).
    void next_value(JsonbValue* v) { children_.next(v); }

private:
    static constexpr int kSmall = 16;  // a record's usual number of traits: no allocation for them
    int count_;
    Children children_;
    JsonbValue small_[kSmall];
    JsonbValue* keys_;
};

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
    Members members(traits);  // only an object has traits
    int pairs = members.count();
    if (pairs == 0) return;
    StringInfoData buf;  // a value's JSON text (and its elements', for a union's array)
    buf.data = nullptr;
    guarded([&] {
        if (state->empty()) state->reserve(static_cast<size_t>(pairs));
    });
    size_t near = 0;  // where the next key is expected in the state: both go in jsonb's key order
    for (int i = 0; i < pairs; ++i) {
        JsonbValue v;
        members.next_value(&v);
        std::string_view key = members.key(i);
        Survivorship rule = Survivorship::Latest;
        size_t at = TraitMerger::npos;
        bool matters = true;
        guarded([&] {
            rule = rules.rule_of(key);
            at = state->find(key, near);
            matters = state->may_matter(at, ts, priority);
        });
        if (at != TraitMerger::npos) near = at + 1;
        if (!matters) continue;  // an older value of a latest trait, say: not even written out
        if (buf.data == nullptr) initStringInfo(&buf);
        resetStringInfo(&buf);
        TraitValueView value;
        append_json(&buf, &v, &value.kind, &value.number);
        int length = buf.len;
        if (value.kind == TraitValue::Array && rule == Survivorship::Union) {
            int size = static_cast<int>(JsonContainerSize(v.val.binary.data));
            // element e's text is [offsets[e], offsets[e + 1])
            auto* offsets = static_cast<int*>(palloc(sizeof(int) * (size + 1)));
            auto* elements = static_cast<std::string_view*>(palloc(sizeof(std::string_view) * std::max(size, 1)));
            Children items(v.val.binary.data);
            for (int e = 0; e < size; ++e) {
                JsonbValue item;
                items.next(&item);
                TraitValue::Kind kind;
                double number;
                offsets[e] = buf.len;
                append_json(&buf, &item, &kind, &number);
            }
            offsets[size] = buf.len;
            for (int e = 0; e < size; ++e)
                elements[e] = std::string_view(buf.data + offsets[e], static_cast<size_t>(offsets[e + 1] - offsets[e]));
            value.elements = elements;
            value.element_count = static_cast<size_t>(size);
        }
        value.json = std::string_view(buf.data, static_cast<size_t>(length));
        guarded([&] {
            if (at != TraitMerger::npos) state->offer_at(at, value, ts, priority, from);
            else near = state->add(key, value, rule, ts, priority, from, near) + 1;
        });
    }
}

// ---- the lean state ---------------------------------------------------------------------------

namespace {

// A trait of a lean state. Its key and value are kept in the entry itself when they fit (most
// do: no allocation per trait), else in memory of their own. Entries move (a trait put before
// them, the array grown), so where the bytes are is found each time, never kept.
struct LeanTrait {
    static constexpr uint32 kKeyHere = 16, kValueHere = 32;
    Survivorship rule;
    bool has;
    bool boolean;  // a bool's value
    bool value_away;  // the value is in `away`, not `value_here`
    TraitValue::Kind kind;
    int priority;
    Micros ts;
    uint32 key_len, len, room;  // room: of `away` (0: none yet)
    char* key_away;             // a key longer than kKeyHere
    char* away;                 // a value longer than kValueHere; int-aligned (palloc'd)
    alignas(8) char key_here[kKeyHere];
    alignas(8) char value_here[kValueHere];  // int-aligned, as a numeric or container needs

    const char* key() const { return key_len <= kKeyHere ? key_here : key_away; }
    const char* value() const { return value_away ? away : value_here; }
};

std::string_view key_of(const LeanTrait& t) { return std::string_view(t.key(), t.key_len); }

// The kind of a value as a TraitValue.
TraitValue::Kind kind_of(const JsonbValue& v) {
    switch (v.type) {
        case jbvNull:
            return TraitValue::Null;
        case jbvBool:
            return TraitValue::Bool;
        case jbvString:
            return TraitValue::String;
        case jbvNumeric:
            return TraitValue::Number;
        default:
            return JsonContainerIsArray(v.val.binary.data) ? TraitValue::Array : TraitValue::Object;
    }
}

// The survivor of a trait as a JsonbValue over the state's bytes.
void value_of(const LeanTrait& t, JsonbValue* v) {
    switch (t.kind) {
        case TraitValue::Null:
            v->type = jbvNull;
            break;
        case TraitValue::Bool:
            v->type = jbvBool;
            v->val.boolean = t.boolean;
            break;
        case TraitValue::String:
            v->type = jbvString;
            v->val.string.val = const_cast<char*>(t.value());
            v->val.string.len = static_cast<int>(t.len);
            break;
        case TraitValue::Number:
            v->type = jbvNumeric;
            v->val.numeric = reinterpret_cast<Numeric>(const_cast<char*>(t.value()));
            break;
        default:
            v->type = jbvBinary;
            v->val.binary.data = reinterpret_cast<JsonbContainer*>(const_cast<char*>(t.value()));
            v->val.binary.len = static_cast<int>(t.len);
            break;
    }
}

// A value as a TraitMerger sees it: its JSON text (in `buf`), kind and number.
TraitValueView view_of(JsonbValue* v, StringInfo buf) {
    TraitValueView view;
    resetStringInfo(buf);
    append_json(buf, v, &view.kind, &view.number);
    view.json = std::string_view(buf->data, static_cast<size_t>(buf->len));
    return view;
}

}  // namespace

struct LeanTraits {
    MemoryContext context;
    int count, room;
    LeanTrait* traits;  // in jsonb's order of keys
};

LeanTraits* make_lean_traits(MemoryContext context) {
    auto* state = static_cast<LeanTraits*>(MemoryContextAllocZero(context, sizeof(LeanTraits)));
    state->context = context;
    return state;
}

namespace {

// The place of a trait with the key (made, with its rule, when it has none); `near`: where it is
// expected (after the previous key of the row), checked first.
int lean_place(LeanTraits* s, std::string_view key, const TraitRules& rules, int near) {
    if (near < s->count && same_key(key_of(s->traits[near]), key)) return near;
    int lo = 0, hi = s->count;
    if (s->count > 0 && key_before(key_of(s->traits[s->count - 1]), key)) {
        lo = s->count;  // after every trait held: a record's first row comes in key order
    } else {
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (key_before(key_of(s->traits[mid]), key)) lo = mid + 1;
            else hi = mid;
        }
        if (lo < s->count && same_key(key_of(s->traits[lo]), key)) return lo;
    }
    if (s->count == s->room) {
        int room = std::max(8, s->room * 2);
        s->traits = static_cast<LeanTrait*>(
            s->traits == nullptr ? MemoryContextAlloc(s->context, sizeof(LeanTrait) * room)
                                 : repalloc(s->traits, sizeof(LeanTrait) * room));
        s->room = room;
    }
    memmove(&s->traits[lo + 1], &s->traits[lo], sizeof(LeanTrait) * (s->count - lo));
    ++s->count;
    LeanTrait& t = s->traits[lo];
    memset(&t, 0, sizeof t);
    t.key_len = static_cast<uint32>(key.size());
    char* to = t.key_here;
    if (t.key_len > LeanTrait::kKeyHere) to = t.key_away = static_cast<char*>(MemoryContextAlloc(s->context, t.key_len));
    memcpy(to, key.data(), key.size());
    guarded([&] { t.rule = rules.rule_of(key); });
    return lo;
}

// Makes the value the trait's survivor, its bytes copied into the trait's room.
void lean_take(LeanTraits* s, LeanTrait& t, const JsonbValue& v, Micros ts, int priority) {
    t.kind = kind_of(v);
    const char* bytes = nullptr;
    uint32 len = 0;
    switch (v.type) {
        case jbvBool:
            t.boolean = v.val.boolean;
            break;
        case jbvString:
            bytes = v.val.string.val;
            len = static_cast<uint32>(v.val.string.len);
            break;
        case jbvNumeric:
            bytes = reinterpret_cast<const char*>(v.val.numeric);
            len = static_cast<uint32>(VARSIZE_ANY(v.val.numeric));
            break;
        case jbvBinary:
            bytes = reinterpret_cast<const char*>(v.val.binary.data);
            len = static_cast<uint32>(v.val.binary.len);
            break;
        default:
            break;
    }
    t.value_away = len > LeanTrait::kValueHere;
    if (t.value_away && len > t.room) {  // room of its own, kept for the trait's next values
        if (t.away != nullptr) pfree(t.away);
        t.room = len;
        t.away = static_cast<char*>(MemoryContextAlloc(s->context, t.room));
    }
    if (len > 0) memcpy(t.value_away ? t.away : t.value_here, bytes, len);
    t.len = len;
    t.ts = ts;
    t.priority = priority;
    t.has = true;
}

}  // namespace

void lean_add_jsonb_traits(LeanTraits* s, Jsonb* traits, const TraitRules& rules, Micros ts, int priority) {
    Members members(traits);  // only an object has traits
    StringInfoData mine, theirs;  // two values' JSON texts, when their order counts
    mine.data = theirs.data = nullptr;
    int near = 0;
    for (int i = 0; i < members.count(); ++i) {
        JsonbValue v;
        members.next_value(&v);
        int at = lean_place(s, members.key(i), rules, near);
        near = at + 1;
        LeanTrait& t = s->traits[at];
        if (v.type == jbvNull && passes_over_nulls(t.rule)) continue;
        if (t.has) {
            if (!may_beat(t.rule, ts, priority, t.ts, t.priority)) continue;
            int by_value = 0;
            if (value_decides(t.rule, ts, priority, t.ts, t.priority)) {
                // As a TraitMerger orders them: by their JSON texts (and numbers' values).
                if (mine.data == nullptr) {
                    initStringInfo(&mine);
                    initStringInfo(&theirs);
                }
                JsonbValue best;
                value_of(t, &best);
                TraitValueView a = view_of(&v, &mine), b = view_of(&best, &theirs);
                by_value = compare_trait_values(a, b);
            }
            if (!beats(t.rule, ts, priority, t.ts, t.priority, by_value)) continue;
        }
        lean_take(s, t, v, ts, priority);
    }
}

void lean_into(const LeanTraits* s, TraitMerger* merger) {
    StringInfoData buf;
    initStringInfo(&buf);
    size_t near = 0;
    for (int i = 0; i < s->count; ++i) {
        const LeanTrait& t = s->traits[i];
        if (!t.has) continue;  // a max or min trait seen only as null: no value to tell
        JsonbValue v;
        value_of(t, &v);
        TraitValueView view = view_of(&v, &buf);
        guarded([&] { near = merger->add(key_of(t), view, t.rule, t.ts, t.priority, {}, near) + 1; });
    }
}

Datum lean_record(const LeanTraits* s) {
    auto* keys = static_cast<std::string_view*>(palloc(sizeof(std::string_view) * std::max(s->count, 1)));
    auto* values = static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * std::max(s->count, 1)));
    int n = 0;
    for (int i = 0; i < s->count; ++i) {
        if (!s->traits[i].has) continue;
        keys[n] = key_of(s->traits[i]);
        value_of(s->traits[i], &values[n++]);
    }
    return jsonb_object_of(keys, values, n);
}

}  // namespace cdp::pg
