// jsonb written straight from a RapidJSON tree in jsonb's on-disk format (utils/jsonb.h), the
// layout jsonb_util.c's convertToJsonb produces: no intermediate JsonbValue tree, no qsort of
// JsonbPairs, one pass into one buffer. The result is byte for byte what jsonb_in makes of the
// same text (cdp_internal.jsonb_matches_jsonb_in checks this in the tests), numbers aside: those
// go through a double, so 1.50 is stored as 1.5.
#include "cdp/pg/jsonb.hpp"

#include "cdp/core/json.hpp"
#include "cdp/pg/guard.hpp"

#include <rapidjson/internal/dtoa.h>

#include <algorithm>

extern "C" {
#include "utils/numeric.h"
}

extern "C" {
PGDLLEXPORT Datum cdp_jsonb_matches_jsonb_in(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_jsonb_matches_jsonb_in);
}

namespace cdp::pg {

namespace {

using Value = rapidjson::Value;

Numeric numeric_of(const Value& v) {
    if (v.IsInt64()) return int64_to_numeric(v.GetInt64());
    // Integers past int64 and doubles: through their shortest round-trip decimal form (Grisu2),
    // which is how they were most likely written.
    char buf[64];
    if (v.IsUint64()) {
        snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v.GetUint64()));
    } else {
        char* end = rapidjson::internal::dtoa(v.GetDouble(), buf);
        *end = '\0';
    }
    return DatumGetNumeric(
        DirectFunctionCall3(numeric_in, CStringGetDatum(buf), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

// jsonb's key order: shorter keys first, then bytewise.
int compare_keys(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    return memcmp(a.data(), b.data(), a.size());
}
int compare_keys(const Value& a, const Value& b) {
    return compare_keys(std::string_view(a.GetString(), a.GetStringLength()),
                        std::string_view(b.GetString(), b.GetStringLength()));
}

class JsonbWriter {
public:
    JsonbWriter() { initStringInfo(&buf_); }

    Jsonb* finish(const Value& root) {
        reserve(VARHDRSZ);
        JEntry ignored;
        if (root.IsObject()) {
            object(root, ignored);
        } else if (root.IsArray()) {
            array(root.Begin(), root.Size(), false, ignored);
        } else {
            array(&root, 1, true, ignored);  // a scalar document: a one-element raw-scalar array
        }
        auto* result = reinterpret_cast<Jsonb*>(buf_.data);
        SET_VARSIZE(result, buf_.len);
        return result;
    }

private:
    StringInfoData buf_;

    int reserve(int n) {
        enlargeStringInfo(&buf_, n);
        int offset = buf_.len;
        buf_.len += n;
        buf_.data[buf_.len] = '\0';
        return offset;
    }
    void append(const void* data, int n) { appendBinaryStringInfo(&buf_, static_cast<const char*>(data), n); }
    int pad_to_int() {
        int pad = INTALIGN(buf_.len) - buf_.len;
        if (pad > 0) memset(buf_.data + reserve(pad), 0, pad);
        return pad;
    }
    void put_entry(int offset, JEntry e) { memcpy(buf_.data + offset, &e, sizeof e); }
    // Appends data kept at an int-aligned place (a numeric, a container); its length with the
    // padding before it.
    int aligned(const void* data, int n) {
        int pad = pad_to_int();
        append(data, n);
        return pad + n;
    }

    static void check_length(int total) {
        if (total > static_cast<int>(JENTRY_OFFLENMASK))
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                            errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
                                   JENTRY_OFFLENMASK),
                            errdetail("An event's JSON value is too large for jsonb."),
                            errhint("Send smaller properties, traits or context.")));
    }

    // Appends one value's data; its JEntry (length form) goes to `entry`.
    void value(const Value& v, JEntry& entry) {
        switch (v.GetType()) {
            case rapidjson::kNullType:
                entry = JENTRY_ISNULL;
                break;
            case rapidjson::kFalseType:
                entry = JENTRY_ISBOOL_FALSE;
                break;
            case rapidjson::kTrueType:
                entry = JENTRY_ISBOOL_TRUE;
                break;
            case rapidjson::kStringType:
                append(v.GetString(), static_cast<int>(v.GetStringLength()));
                entry = v.GetStringLength();
                break;
            case rapidjson::kNumberType: {
                Numeric n = numeric_of(v);
                entry = JENTRY_ISNUMERIC | aligned(n, static_cast<int>(VARSIZE_ANY(n)));
                break;
            }
            case rapidjson::kArrayType:
                array(v.Begin(), v.Size(), false, entry);
                break;
            case rapidjson::kObjectType:
                object(v, entry);
                break;
        }
    }

    // Every JB_OFFSET_STRIDE'th entry holds the end offset of its data instead of the length.
    static JEntry stride(JEntry e, int index, int total) {
        if (index % JB_OFFSET_STRIDE == 0) return (e & JENTRY_TYPEMASK) | total | JENTRY_HAS_OFF;
        return e;
    }

    void array(const Value* elems, rapidjson::SizeType n, bool raw_scalar, JEntry& entry) {
        check_stack_depth();
        int base = buf_.len;
        pad_to_int();
        uint32 header = n | JB_FARRAY | (raw_scalar ? JB_FSCALAR : 0);
        append(&header, sizeof header);
        int entries = reserve(static_cast<int>(sizeof(JEntry) * n));
        int total = 0;
        for (rapidjson::SizeType i = 0; i < n; ++i) {
            JEntry e;
            value(elems[i], e);
            total += JBE_OFFLENFLD(e);
            check_length(total);
            put_entry(entries + static_cast<int>(i * sizeof(JEntry)), stride(e, static_cast<int>(i), total));
        }
        check_length(buf_.len - base);
        entry = JENTRY_ISCONTAINER | (buf_.len - base);
    }

    void object(const Value& v, JEntry& entry) {
        check_stack_depth();
        // Members in jsonb's key order; of duplicate keys the last one wins, as in jsonb_in.
        rapidjson::SizeType count = v.MemberCount();
        const Value::Member* first = count > 0 ? &*v.MemberBegin() : nullptr;
        const Value::Member* small[32];  // most objects are small: no allocation for them
        auto** members = count <= 32 ? small : static_cast<const Value::Member**>(palloc(sizeof(void*) * count));
        for (rapidjson::SizeType i = 0; i < count; ++i) members[i] = first + i;
        std::sort(members, members + count, [](const Value::Member* a, const Value::Member* b) {
            int c = compare_keys(a->name, b->name);
            return c != 0 ? c < 0 : a > b;  // equal keys: the later member first
        });
        int pairs = 0;
        for (rapidjson::SizeType i = 0; i < count; ++i)
            if (pairs == 0 || compare_keys(members[i]->name, members[pairs - 1]->name) != 0)
                members[pairs++] = members[i];

        members_of(
            pairs, [&](int i) { return std::string_view(members[i]->name.GetString(), members[i]->name.GetStringLength()); },
            [&](int i, JEntry& e) { value(members[i]->value, e); }, entry);
        if (members != small) pfree(members);
    }

    // An object of `pairs` members, their keys in jsonb's order, each once: the header, a JEntry
    // per key and per value, the keys' bytes, then the values' (`value(i, entry)` appends one).
    template <typename KeyAt, typename ValueAt>
    void members_of(int pairs, KeyAt key_at, ValueAt value, JEntry& entry) {
        int base = buf_.len;
        pad_to_int();
        uint32 header = static_cast<uint32>(pairs) | JB_FOBJECT;
        append(&header, sizeof header);
        int entries = reserve(static_cast<int>(sizeof(JEntry) * pairs * 2));
        int total = 0;
        for (int i = 0; i < pairs; ++i) {
            std::string_view key = key_at(i);
            int len = static_cast<int>(key.size());
            append(key.data(), len);
            total += len;
            check_length(total);
            put_entry(entries + i * static_cast<int>(sizeof(JEntry)), stride(static_cast<JEntry>(len), i, total));
        }
        for (int i = 0; i < pairs; ++i) {
            JEntry e;
            value(i, e);
            total += JBE_OFFLENFLD(e);
            check_length(total);
            put_entry(entries + (i + pairs) * static_cast<int>(sizeof(JEntry)), stride(e, i + pairs, total));
        }
        check_length(buf_.len - base);
        entry = JENTRY_ISCONTAINER | (buf_.len - base);
    }

public:
    // An object of JsonbValues (scalars, or jbvBinary containers) under keys in jsonb's order.
    Jsonb* finish_object(const std::string_view* keys, const JsonbValue* values, int n) {
        reserve(VARHDRSZ);
        for (int i = 1; i < n; ++i)
            if (compare_keys(keys[i - 1], keys[i]) >= 0)
                ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("the keys of a jsonb object to write are out of order"),
                                errdetail("Key \"%.*s\" comes after \"%.*s\".", static_cast<int>(keys[i].size()),
                                          keys[i].data(), static_cast<int>(keys[i - 1].size()), keys[i - 1].data()),
                                errhint("Report this as a bug.")));
        JEntry ignored;
        members_of(
            n, [&](int i) { return keys[i]; }, [&](int i, JEntry& e) { value(values[i], e); }, ignored);
        auto* result = reinterpret_cast<Jsonb*>(buf_.data);
        SET_VARSIZE(result, buf_.len);
        return result;
    }

private:
    void value(const JsonbValue& v, JEntry& entry) {
        switch (v.type) {
            case jbvNull:
                entry = JENTRY_ISNULL;
                break;
            case jbvBool:
                entry = v.val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
                break;
            case jbvString:
                append(v.val.string.val, v.val.string.len);
                entry = static_cast<JEntry>(v.val.string.len);
                break;
            case jbvNumeric:
                entry = JENTRY_ISNUMERIC | aligned(v.val.numeric, static_cast<int>(VARSIZE_ANY(v.val.numeric)));
                break;
            case jbvBinary:
                entry = JENTRY_ISCONTAINER | aligned(v.val.binary.data, v.val.binary.len);
                break;
            default:
                ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("unexpected jsonb value to write"),
                                errdetail("Value type %d.", static_cast<int>(v.type)), errhint("Report this as a bug.")));
        }
    }
};

}  // namespace

Datum jsonb_from_json(const rapidjson::Value& value) {
    JsonbWriter writer;
    return JsonbPGetDatum(writer.finish(value));
}

Datum jsonb_object_of(const std::string_view* keys, const JsonbValue* values, int n) {
    JsonbWriter writer;
    return JsonbPGetDatum(writer.finish_object(keys, values, n));
}

}  // namespace cdp::pg

// cdp_internal.jsonb_matches_jsonb_in(text): whether the jsonb written from RapidJSON's parse of
// the text has the same bytes as jsonb_in's. For the tests of the writer above.
Datum cdp_jsonb_matches_jsonb_in(PG_FUNCTION_ARGS) {
    text* input = PG_GETARG_TEXT_PP(0);
    char* cstring = text_to_cstring(input);
    auto* owned = cdp::pg::make_context_owned<rapidjson::Document>(CurrentMemoryContext);
    rapidjson::Document& doc = *owned->object;
    cdp::pg::guarded([&] { doc.Parse<rapidjson::kParseFullPrecisionFlag>(cstring); });
    if (doc.HasParseError())
        ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), errmsg("RapidJSON cannot parse the input"),
                        errdetail("Error code %d at offset %zu.", static_cast<int>(doc.GetParseError()),
                                  doc.GetErrorOffset()),
                        errhint("Pass text that jsonb_in accepts.")));
    Datum expected = DirectFunctionCall1(jsonb_in, CStringGetDatum(cstring));
    Jsonb* ours = DatumGetJsonbP(cdp::pg::jsonb_from_json(doc));
    Jsonb* theirs = DatumGetJsonbP(expected);
    bool same = VARSIZE(ours) == VARSIZE(theirs) && memcmp(ours, theirs, VARSIZE(ours)) == 0;
    owned->release();
    PG_RETURN_BOOL(same);
}
