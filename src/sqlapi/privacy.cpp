// cdp_internal.hmac_sha256(key bytea, data text): the keyed hash erasure keeps of identifiers;
// the tracking-plan checker; what analysts see of identifiers and traits.
#include <map>
#include <optional>
#include <string>

#include "cdp/core/identity.hpp"
#include "cdp/core/tracking_plan.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/privacy_store.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
PGDLLEXPORT Datum cdp_hmac_sha256(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_hmac_sha256);
PGDLLEXPORT Datum cdp_check_tracking_plan(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_check_tracking_plan);
}

Datum cdp_hmac_sha256(PG_FUNCTION_ARGS) {
    bytea* key = PG_GETARG_BYTEA_PP(0);
    text* data = PG_GETARG_TEXT_PP(1);
    uint8* h = cdp::pg::hmac_sha256(reinterpret_cast<uint8*>(VARDATA_ANY(key)), VARSIZE_ANY_EXHDR(key),
                                    VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
    auto* out = static_cast<bytea*>(palloc(VARHDRSZ + 32));
    SET_VARSIZE(out, VARHDRSZ + 32);
    memcpy(VARDATA(out), h, 32);
    PG_RETURN_BYTEA_P(out);
}

// cdp_internal.check_tracking_plan(event, schema): an error saying what in the plan is wrong.
Datum cdp_check_tracking_plan(PG_FUNCTION_ARGS) {
    char* event = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* schema = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(1)));
    cdp::pg::guarded([&] {
        cdp::TrackingPlan plan;
        plan.add_event(event, schema);
    });
    PG_RETURN_VOID();
}

// ---- What analysts see: cdp_internal.pseudonym and cdp_internal.pseudonymise_traits --------
//
// In C, for the analyst views: they call these once or more per row. A workspace's policy
// (cdp.pseudonymisation) and secret are read once per query; a value costs a lookup and, when
// hashed, one HMAC. SECURITY DEFINER (the secrets are the owner's), without a search_path
// setting to switch on every call: the statements they run name every table and operator by
// its schema, so a caller's search_path cannot reach into them.

extern "C" {
PGDLLEXPORT Datum cdp_pseudonym(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_pseudonym);
PGDLLEXPORT Datum cdp_pseudonymise_traits(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_pseudonymise_traits);
}

namespace cdp::pg {
namespace {

enum class Shown : std::uint8_t { Keep, Hash, Drop };

struct Policy {
    std::map<std::string, Shown, std::less<>> fields;  // the workspace's rows of cdp.pseudonymisation
    bool has_secret = false;
    std::string secret;
    bool loaded = false;  // read to the end (not cut short by an error)
};

// Kept with the calling function's info for the query.
struct Policies {
    std::map<int32, Policy> by_workspace;
    std::string input;  // what is hashed: "field:normalised value"
};

Policies& policies_of(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra == nullptr)
        fcinfo->flinfo->fn_extra = make_context_owned<Policies>(fcinfo->flinfo->fn_mcxt)->object;
    return *static_cast<Policies*>(fcinfo->flinfo->fn_extra);
}

const Policy& policy_of(Policies& all, int32 workspace) {
    Policy* policy = nullptr;
    guarded([&] { policy = &all.by_workspace[workspace]; });
    if (policy->loaded) return *policy;
    guarded([&] {
        policy->fields.clear();
        policy->secret.clear();
    });
    policy->has_secret = false;
    static SPIPlanPtr fields_plan = nullptr, secret_plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_connect();
    spi_run_cached(&fields_plan,
                   "SELECT p.field, p.action FROM cdp.pseudonymisation p WHERE p.workspace_id OPERATOR(pg_catalog.=) $1",
                   1, types, args, nullptr, true);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool isnull;
        text* field = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        text* action = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        std::string_view name(VARDATA_ANY(field), VARSIZE_ANY_EXHDR(field));
        std::string_view shown(VARDATA_ANY(action), VARSIZE_ANY_EXHDR(action));
        guarded([&] {
            policy->fields[std::string(name)] = shown == "keep" ? Shown::Keep : shown == "drop" ? Shown::Drop : Shown::Hash;
        });
    }
    spi_run_cached(&secret_plan, "SELECT s.secret FROM cdp_internal.secrets s WHERE s.workspace_id OPERATOR(pg_catalog.=) $1",
                   1, types, args, nullptr, true);
    if (SPI_processed > 0) {
        bool isnull;
        bytea* secret = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        guarded([&] { policy->secret.assign(VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret)); });
        policy->has_secret = true;
    }
    spi_finish();
    policy->loaded = true;
    return *policy;
}

// How a field is shown: its row in cdp.pseudonymisation, else the default (identifier types
// hashed, IPs dropped, the rest kept; `identifier_defaults` false: the rest only).
Shown shown_as(const Policy& policy, std::string_view field, bool identifier_defaults) {
    Shown shown = Shown::Keep;
    bool found = false;
    guarded([&] {
        auto it = policy.fields.find(field);
        if ((found = it != policy.fields.end())) shown = it->second;
    });
    if (found || !identifier_defaults) return shown;
    for (std::string_view hashed : {"user_id", "anonymous_id", "device_id", "email", "phone"})
        if (field == hashed) return Shown::Hash;
    return field == "ip" ? Shown::Drop : Shown::Keep;
}

// The keyed hash an analyst sees of a value: "h:" + hex of HMAC-SHA256(secret,
// "field:" + the value normalised as an identifier of that type, or as it is).
text* keyed_pseudonym(Policies& all, const Policy& policy, std::string_view field, std::string_view value) {
    guarded([&] {
        all.input.assign(field.data(), field.size());
        all.input += ':';
        std::optional<std::string> normalised = normalise_identifier(
            field, value, setting_phone_country != nullptr ? setting_phone_country : "");
        if (normalised) all.input += *normalised;
        else all.input.append(value.data(), value.size());
    });
    uint8* h = hmac_sha256(reinterpret_cast<const uint8*>(policy.secret.data()), policy.secret.size(), all.input.data(),
                           all.input.size());
    static const char hex[] = "0123456789abcdef";
    auto* out = static_cast<text*>(palloc(VARHDRSZ + 2 + 64));
    SET_VARSIZE(out, VARHDRSZ + 2 + 64);
    char* p = VARDATA(out);
    *p++ = 'h';
    *p++ = ':';
    for (int i = 0; i < 32; ++i) {
        *p++ = hex[h[i] >> 4];
        *p++ = hex[h[i] & 15];
    }
    return out;
}

// A value as shown under the workspace's policy; nullptr for none.
text* pseudonym_of(Policies& all, const Policy& policy, std::string_view field, text* value) {
    switch (shown_as(policy, field, true)) {
        case Shown::Keep:
            return value;
        case Shown::Drop:
            return nullptr;
        default:
            if (!policy.has_secret) return nullptr;  // nothing to hash with: nothing shown
            return keyed_pseudonym(all, policy, field, std::string_view(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
    }
}

}  // namespace
}  // namespace cdp::pg

// cdp_internal.pseudonym(workspace, field, value): the value itself, its keyed hash, or NULL
// (dropped, or hashed in a workspace without a secret).
Datum cdp_pseudonym(PG_FUNCTION_ARGS) {
    using namespace cdp::pg;
    text* field = PG_GETARG_TEXT_PP(1);
    Policies& all = policies_of(fcinfo);
    text* shown = pseudonym_of(all, policy_of(all, PG_GETARG_INT32(0)),
                               std::string_view(VARDATA_ANY(field), VARSIZE_ANY_EXHDR(field)), PG_GETARG_TEXT_PP(2));
    if (shown == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(shown);
}

// cdp_internal.pseudonymise_traits(workspace, traits): each top-level trait as its key's policy
// shows it. Strings as pseudonym() shows them (null when not shown); other values only where
// the key is kept (a row saying keep, or no row), else null.
Datum cdp_pseudonymise_traits(PG_FUNCTION_ARGS) {
    using namespace cdp::pg;
    Jsonb* traits = PG_GETARG_JSONB_P(1);
    if (!JB_ROOT_IS_OBJECT(traits)) PG_RETURN_JSONB_P(traits);
    Policies& all = policies_of(fcinfo);
    const Policy& policy = policy_of(all, PG_GETARG_INT32(0));
    JsonbParseState* parse = nullptr;
    JsonbValue* result = pushJsonbValue(&parse, WJB_BEGIN_OBJECT, nullptr);
    JsonbIterator* it = JsonbIteratorInit(&traits->root);
    JsonbValue v;
    JsonbIteratorToken token;
    std::string_view key;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            key = std::string_view(v.val.string.val, static_cast<size_t>(v.val.string.len));
            (void)pushJsonbValue(&parse, WJB_KEY, &v);
            continue;
        }
        if (token != WJB_VALUE) continue;
        if (v.type == jbvString) {
            text* shown = pseudonym_of(all, policy, key, cstring_to_text_with_len(v.val.string.val, v.val.string.len));
            if (shown == nullptr) {
                v.type = jbvNull;
            } else {
                v.val.string.val = VARDATA_ANY(shown);
                v.val.string.len = static_cast<int>(VARSIZE_ANY_EXHDR(shown));
            }
        } else if (shown_as(policy, key, false) != Shown::Keep) {
            v.type = jbvNull;
        }
        (void)pushJsonbValue(&parse, WJB_VALUE, &v);
    }
    result = pushJsonbValue(&parse, WJB_END_OBJECT, nullptr);
    PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
