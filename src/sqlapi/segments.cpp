// Segments from SQL: checking a definition before it is stored, and moving realtime segments to
// a time for some profiles (what ingest does after each batch).
#include <vector>

#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/segment_store.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "commands/async.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/array.h"

PGDLLEXPORT Datum cdp_check_segment_definition(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_evaluate_segments(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_announce_change(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_announce_change);
PG_FUNCTION_INFO_V1(cdp_check_segment_definition);
PG_FUNCTION_INFO_V1(cdp_evaluate_segments);
}

namespace cdp::pg {

namespace {

[[noreturn]] void refuse(const char* mode, const char* definition, const char* why) {
    bool realtime = strcmp(mode, "realtime") == 0;
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("invalid %s segment definition: %s", mode, why),
                    errdetail("The definition was: %s", definition),
                    errhint(realtime ? "A realtime segment is one boolean expression over a profile, such as "
                                       "computed.orders_30d = 0 AND traits ->> 'plan' = 'pro'."
                                     : "A batch segment is one SELECT whose first column is a profile id, such as "
                                       "SELECT profile_id FROM cdp.profile_records WHERE traits ? 'email'.")));
}

bool select_is_plain(SelectStmt* s) {
    if (s->intoClause != nullptr || s->lockingClause != NIL) return false;
    if (s->withClause != nullptr) {
        ListCell* lc;
        foreach (lc, s->withClause->ctes) {
            auto* cte = castNode(CommonTableExpr, lfirst(lc));
            if (!IsA(cte->ctequery, SelectStmt) || !select_is_plain(castNode(SelectStmt, cte->ctequery))) return false;
        }
    }
    if (s->op != SETOP_NONE) return select_is_plain(s->larg) && select_is_plain(s->rarg);
    return true;
}

}  // namespace

}  // namespace cdp::pg

using namespace cdp::pg;

// cdp_internal.check_segment_definition(mode, definition): parses the definition the way it
// will be embedded (a realtime expression between parentheses on lines of its own, a batch query
// as a subquery) and refuses anything but one expression or one plain SELECT.
Datum cdp_check_segment_definition(PG_FUNCTION_ARGS) {
    char* mode = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* definition = text_to_cstring(PG_GETARG_TEXT_PP(1));
    bool realtime = strcmp(mode, "realtime") == 0;
    if (!realtime && strcmp(mode, "batch") != 0) refuse(mode, definition, "unknown mode");
    if (strlen(definition) == 0 || strspn(definition, " \t\r\n") == strlen(definition))
        refuse(mode, definition, "it is empty");
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, realtime ? "SELECT (\n%s\n)" : "%s", definition);
    List* statements = NIL;
    MemoryContext context = CurrentMemoryContext;
    PG_TRY();
    { statements = raw_parser(sql.data, RAW_PARSE_DEFAULT); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        ErrorData* e = CopyErrorData();
        FlushErrorState();
        refuse(mode, definition, e->message);
    }
    PG_END_TRY();
    if (list_length(statements) != 1) refuse(mode, definition, "it is more than one statement");
    Node* stmt = linitial_node(RawStmt, statements)->stmt;
    if (!IsA(stmt, SelectStmt)) refuse(mode, definition, "it is not a SELECT");
    auto* select = castNode(SelectStmt, stmt);
    if (!select_is_plain(select))
        refuse(mode, definition, "it writes, locks or selects into something");
    if (realtime &&
        (select->op != SETOP_NONE || list_length(select->targetList) != 1 || select->fromClause != NIL ||
         select->whereClause != nullptr || select->groupClause != NIL || select->havingClause != nullptr ||
         select->windowClause != NIL || select->sortClause != NIL || select->limitCount != nullptr ||
         select->limitOffset != nullptr || select->distinctClause != NIL || select->withClause != nullptr ||
         select->valuesLists != NIL))
        refuse(mode, definition, "it is not a single expression");
    PG_RETURN_VOID();
}

// cdp_internal.evaluate_segments(workspace, profiles, at, cause): how many changes it wrote.
Datum cdp_evaluate_segments(PG_FUNCTION_ARGS) {
    int32 workspace = PG_GETARG_INT32(0);
    ArrayType* array = PG_GETARG_ARRAYTYPE_P(1);
    Datum* items;
    bool* nulls;
    int n;
    deconstruct_array(array, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &items, &nulls, &n);
    std::vector<int64>* profiles = nullptr;
    ContextOwned<std::vector<int64>>* holder = make_context_owned<std::vector<int64>>(CurrentMemoryContext);
    profiles = holder->object;
    cdp::pg::guarded([&] {
        for (int i = 0; i < n; ++i)
            if (!nulls[i]) profiles->push_back(DatumGetInt64(items[i]));
    });
    char* cause = text_to_cstring(PG_GETARG_TEXT_PP(3));
    spi_connect();
    uint64 changes = evaluate_segments(workspace, *profiles, PG_GETARG_TIMESTAMPTZ(2), cause);
    spi_finish();
    PG_RETURN_INT64(static_cast<int64>(changes));
}

// The row trigger on cdp.segment_changes: NOTIFY cdp_segment_changes, '{"workspace_id": N}'.
// PostgreSQL folds a transaction's equal notifications into one, delivered after commit.
Datum cdp_announce_change(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("cdp_internal.announce_change is a trigger function"),
                        errdetail("It announces rows inserted into cdp.segment_changes."),
                        errhint("Do not call it directly.")));
    auto* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    bool isnull;
    int attribute = SPI_fnumber(trigger->tg_relation->rd_att, "workspace_id");
    Datum workspace = heap_getattr(trigger->tg_trigtuple, attribute, trigger->tg_relation->rd_att, &isnull);
    Async_Notify("cdp_segment_changes", psprintf("{\"workspace_id\": %d}", isnull ? 0 : DatumGetInt32(workspace)));
    return PointerGetDatum(nullptr);
}
