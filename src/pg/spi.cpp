#include "cdp/pg/spi.hpp"

namespace cdp::pg {

void spi_connect() {
    int rc = SPI_connect();
    if (rc != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not connect to SPI"),
                        errdetail("SPI_connect returned %s.", SPI_result_code_string(rc)),
                        errhint("This is a bug; please report it.")));
}

void spi_finish() {
    int rc = SPI_finish();
    if (rc != SPI_OK_FINISH)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not finish SPI"),
                        errdetail("SPI_finish returned %s.", SPI_result_code_string(rc)),
                        errhint("This is a bug; please report it.")));
}

namespace {

void run_kept(SPIPlanPtr* plan, int cursor_options, const char* sql, int nargs, Oid* types, Datum* args,
              const char* nulls, bool read_only) {
    if (*plan == nullptr) {
        SPIPlanPtr p = SPI_prepare_cursor(sql, nargs, types, cursor_options);
        if (p == nullptr)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not prepare an internal statement"),
                            errdetail("SPI_prepare failed with %s for: %s", SPI_result_code_string(SPI_result), sql),
                            errhint("Check that the cdp extension is installed completely.")));
        if (SPI_keepplan(p) != 0)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not keep an internal statement"),
                            errdetail("SPI_keepplan failed for: %s", sql), errhint("This is a bug; please report it.")));
        *plan = p;
    }
    int rc = SPI_execute_plan(*plan, args, nulls, read_only, 0);
    if (rc < 0)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("an internal statement failed"),
                        errdetail("SPI_execute_plan returned %s for: %s", SPI_result_code_string(rc), sql),
                        errhint("This is a bug; please report it.")));
}

}  // namespace

void spi_run_cached(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types, Datum* args, const char* nulls,
                    bool read_only) {
    // The statements are written so that their plan does not depend on the arguments or on
    // table sizes (keyed probes through LATERAL, inserts from arrays): one generic plan,
    // never planned again per batch. (Left to itself, the plan cache keeps making custom
    // plans, since a generic plan cannot know how long the argument arrays are.)
    run_kept(plan, CURSOR_OPT_GENERIC_PLAN, sql, nargs, types, args, nulls, read_only);
}

void spi_run_cached_growing(SPIPlanPtr* plan, BlockNumber* planned_blocks, Oid table, const char* sql, int nargs,
                            Oid* types, Datum* args, const char* nulls, bool read_only) {
    Relation rel = table_open(table, AccessShareLock);
    BlockNumber blocks = RelationGetNumberOfBlocks(rel);
    table_close(rel, AccessShareLock);
    // Planned again when the table has doubled, and when it has shrunk to less than half (a
    // TRUNCATE): PostgreSQL itself makes the plan again after a truncation, from the statistics
    // of an empty table, and only a size counted from then on catches the growth that follows.
    if (*plan != nullptr && (blocks > 2 * *planned_blocks + 8 || 2 * blocks + 8 < *planned_blocks)) {
        SPI_freeplan(*plan);
        *plan = nullptr;
    }
    if (*plan == nullptr) *planned_blocks = blocks;
    run_kept(plan, CURSOR_OPT_GENERIC_PLAN, sql, nargs, types, args, nulls, read_only);
}

void spi_run_replanned(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types, Datum* args, const char* nulls,
                       bool read_only) {
    run_kept(plan, CURSOR_OPT_CUSTOM_PLAN, sql, nargs, types, args, nulls, read_only);
}

}  // namespace cdp::pg
