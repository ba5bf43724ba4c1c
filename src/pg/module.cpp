// The shared library's entry: module magic, settings, and the cancel probe for core loops.
#include "cdp/core/error.hpp"
#include "cdp/pg/postgres.hpp"
#include "cdp/pg/settings.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace {
// Core loops poll this (CPP_IN_POSTGRES.md rule 5); the C layer then runs CHECK_FOR_INTERRUPTS.
bool cancel_pending() { return QueryCancelPending || ProcDiePending; }
}  // namespace

void _PG_init(void) {
    cdp::pg::define_settings();
    cdp::set_cancel_probe(&cancel_pending);
}
