// Small helpers for moving values between the core and SPI: palloc'd argument arrays, SQL
// arrays built from them, and the two clocks (core: microseconds since 1970; PostgreSQL: 2000).
#pragma once

#include <string>

#include "cdp/core/hash.hpp"
#include "cdp/core/timestamp.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

constexpr Micros kPostgresEpochOffset =
    static_cast<Micros>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

inline Micros to_unix(TimestampTz t) { return t + kPostgresEpochOffset; }
inline TimestampTz to_postgres(Micros t) { return t - kPostgresEpochOffset; }

inline Datum text_datum(std::string_view s) {
    return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}
// A text Datum's bytes, as a std::string (call inside guarded()).
inline std::string text_string(Datum d) {
    text* t = DatumGetTextPP(d);
    return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

Datum* datums(int n);
bool* flags(int n);
Datum text_array(Datum* items, int n);
Datum int8_array(Datum* items, int n);
Datum uuid_array(Datum* items, int n);
Datum timestamptz_array(Datum* items, int n);
Datum bytea_array(Datum* items, int n);
Datum uuid_datum(const Hash128& h);

}  // namespace cdp::pg
