// cdp_internal.hmac_sha256(key bytea, data text): the keyed hash erasure keeps of identifiers.
#include "cdp/core/tracking_plan.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/privacy_store.hpp"

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
