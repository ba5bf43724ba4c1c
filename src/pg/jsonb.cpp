#include "cdp/pg/jsonb.hpp"

#include "cdp/core/json.hpp"

#include <rapidjson/internal/dtoa.h>

extern "C" {
#include "utils/numeric.h"
}

namespace cdp::pg {

namespace {

Datum numeric_from_text(const char* text) {
    return DirectFunctionCall3(numeric_in, CStringGetDatum(text), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

// Fills a scalar JsonbValue. Integers convert exactly; doubles through their shortest
// round-trip decimal form (Grisu2), which is how they were most likely written.
void scalar(const rapidjson::Value& v, JsonbValue& out) {
    if (v.IsString()) {
        out.type = jbvString;
        out.val.string.val = const_cast<char*>(v.GetString());
        out.val.string.len = static_cast<int>(v.GetStringLength());
    } else if (v.IsBool()) {
        out.type = jbvBool;
        out.val.boolean = v.GetBool();
    } else if (v.IsNull()) {
        out.type = jbvNull;
    } else {
        out.type = jbvNumeric;
        if (v.IsInt64()) {
            out.val.numeric = int64_to_numeric(v.GetInt64());
        } else {
            char buf[64];
            if (v.IsUint64()) {
                std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v.GetUint64()));
            } else {
                char* end = rapidjson::internal::dtoa(v.GetDouble(), buf);
                *end = '\0';
            }
            out.val.numeric = DatumGetNumeric(numeric_from_text(buf));
        }
    }
}

// Pushes a value; `token` is WJB_VALUE inside an object, WJB_ELEM inside an array.
JsonbValue* push(JsonbParseState** state, const rapidjson::Value& v, JsonbIteratorToken token) {
    if (v.IsObject()) {
        pushJsonbValue(state, WJB_BEGIN_OBJECT, nullptr);
        for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
            JsonbValue key;
            key.type = jbvString;
            key.val.string.val = const_cast<char*>(it->name.GetString());
            key.val.string.len = static_cast<int>(it->name.GetStringLength());
            pushJsonbValue(state, WJB_KEY, &key);
            push(state, it->value, WJB_VALUE);
        }
        return pushJsonbValue(state, WJB_END_OBJECT, nullptr);
    }
    if (v.IsArray()) {
        pushJsonbValue(state, WJB_BEGIN_ARRAY, nullptr);
        for (const rapidjson::Value& e : v.GetArray()) push(state, e, WJB_ELEM);
        return pushJsonbValue(state, WJB_END_ARRAY, nullptr);
    }
    JsonbValue jv;
    scalar(v, jv);
    return pushJsonbValue(state, token, &jv);
}

}  // namespace

Datum jsonb_from_json(const rapidjson::Value& value) {
    JsonbParseState* state = nullptr;
    if (!value.IsObject() && !value.IsArray()) {
        // A scalar document is stored by jsonb as a one-element raw-scalar array.
        JsonbValue jv;
        scalar(value, jv);
        return JsonbPGetDatum(JsonbValueToJsonb(&jv));
    }
    JsonbValue* result = push(&state, value, WJB_VALUE);
    return JsonbPGetDatum(JsonbValueToJsonb(result));
}

}  // namespace cdp::pg
