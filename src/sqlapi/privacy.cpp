// cdp_internal.hmac_sha256(key bytea, data text): the keyed hash erasure keeps of identifiers.
#include "cdp/pg/privacy_store.hpp"

extern "C" {
PGDLLEXPORT Datum cdp_hmac_sha256(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_hmac_sha256);
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
