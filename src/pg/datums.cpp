#include "cdp/pg/datums.hpp"

namespace cdp::pg {

Datum* datums(int n) { return static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1))); }
bool* flags(int n) { return static_cast<bool*>(palloc0(sizeof(bool) * (n > 0 ? n : 1))); }

Datum text_array(Datum* items, int n) {
    return PointerGetDatum(construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}
Datum int8_array(Datum* items, int n) {
    return PointerGetDatum(construct_array(items, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
Datum uuid_array(Datum* items, int n) {
    return PointerGetDatum(construct_array(items, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}
Datum bytea_array(Datum* items, int n) {
    return PointerGetDatum(construct_array(items, n, BYTEAOID, -1, false, TYPALIGN_INT));
}
Datum timestamptz_array(Datum* items, int n) {
    return PointerGetDatum(construct_array(items, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum uuid_datum(const Hash128& h) {
    auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    memcpy(u->data, h.data(), UUID_LEN);
    return UUIDPGetDatum(u);
}

}  // namespace cdp::pg
