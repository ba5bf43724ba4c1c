// SPI helpers: connect, run a statement from a per-backend plan cache, finish; errors reported
// with the statement that failed.
#pragma once

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

void spi_connect();
void spi_finish();

// Prepares `sql` on first use (kept for the backend's lifetime in *plan), then executes it.
// `nulls` is SPI's convention ('n' for null, ' ' otherwise) or nullptr for no nulls.
void spi_run_cached(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types, Datum* args, const char* nulls,
                    bool read_only);

}  // namespace cdp::pg
