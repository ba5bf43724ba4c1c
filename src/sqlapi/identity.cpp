// SQL entry points of identity: normalise, explain, unlink, block, and connected components
// over any query. Data movement here; the graph logic is in the core.
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "cdp/core/error.hpp"
#include "cdp/core/identity.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/identity_store.hpp"
#include "cdp/pg/profile_store.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "optimizer/cost.h"
}

extern "C" {
PGDLLEXPORT Datum cdp_normalise_identifier(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_explain_identity(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_unlink(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_block_identifier(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_connected_components(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_normalise_identifier);
PG_FUNCTION_INFO_V1(cdp_explain_identity);
PG_FUNCTION_INFO_V1(cdp_unlink);
PG_FUNCTION_INFO_V1(cdp_block_identifier);
PG_FUNCTION_INFO_V1(cdp_connected_components);
PGDLLEXPORT Datum cdp_rebuild_profile_records(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_rebuild_profile_records);
PGDLLEXPORT Datum cdp_lock_identity(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_lock_identity);
}

namespace cdp::pg {

namespace {

const char* phone_country() { return setting_phone_country != nullptr ? setting_phone_country : ""; }

// The normalised identifier of the (type, value) arguments at `arg`, or an error saying why not.
// Owned by the current memory context (C++ objects must not live on a stack an error unwinds).
Identifier& identifier_arg(FunctionCallInfo fcinfo, int arg) {
    char* type = text_to_cstring(PG_GETARG_TEXT_PP(arg));
    char* value = text_to_cstring(PG_GETARG_TEXT_PP(arg + 1));
    Identifier& id = *make_context_owned<Identifier>(CurrentMemoryContext)->object;
    bool ok = false;
    guarded([&] {
        std::optional<std::string> v = normalise_identifier(type, value, phone_country());
        ok = v.has_value();
        if (ok) id = {type, *v};
    });
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("\"%s\" is not a valid %s", value, type),
                        errdetail("It does not normalise to an identifier of type %s.", type),
                        errhint("Emails need an @; phone numbers a country code or cdp.phone_default_country.")));
    return id;
}

// The profile of an identifier now, or 0.
int64 profile_of(int32 workspace, const Identifier& id) {
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, TEXTOID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), text_datum(id.type), text_datum(id.value)};
    spi_run_replanned(&plan,
                   "SELECT profile_id FROM cdp.identifiers WHERE workspace_id = $1 AND id_type = $2 AND id_value = $3",
                   3, types, args, nullptr, true);
    if (SPI_processed == 0) return 0;
    bool isnull;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return isnull ? 0 : DatumGetInt64(d);
}

void unknown_identifier(const Identifier& id) {
    ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                    errmsg("identifier %s \"%s\" belongs to no profile", id.type.c_str(), id.value.c_str()),
                    errdetail("cdp.identifiers has no profile for it (never seen, or blocked)."),
                    errhint("Check the type and value; cdp.normalise_identifier shows the stored form.")));
}

// After a split, each part's record is rebuilt from its own events.
void recompute_parts(int32 workspace, const ProfilePart* parts, int n) {
    if (n == 0 || !setting_update_profiles) return;
    auto* ids = static_cast<int64*>(palloc(sizeof(int64) * n));
    for (int i = 0; i < n; ++i) ids[i] = parts[i].profile_id;
    recompute_profile_records(workspace, ids, n, "split");
}

void return_parts(FunctionCallInfo fcinfo, const ProfilePart* parts, int n) {
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (int i = 0; i < n; ++i) {
        Datum values[2] = {Int64GetDatum(parts[i].profile_id), Int32GetDatum(parts[i].identifiers)};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
}

// The graph being built, and the rules it applies (which must outlive it).
struct Components {
    std::unique_ptr<IdentityRules> rules;
    std::unique_ptr<ComponentBuilder> graph;
};

// Receives the edges query's rows: each row's two ends, as text, go into the graph.
struct EdgeReceiver {
    DestReceiver pub;
    Components* components;
    MemoryContext row_context;
    bool started;
    bool as_text;     // both columns are text: read in place, no output function
    FmgrInfo output[2];
    uint64 rows;
};

void start_edges(DestReceiver* self, int, TupleDesc desc) {
    auto* r = reinterpret_cast<EdgeReceiver*>(self);
    if (desc->natts != 2)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("the edges query must return two columns"),
                        errdetail("It returns %d.", desc->natts),
                        errhint("Select the two identifiers of each edge, such as SELECT a, b FROM edges.")));
    r->started = true;
    r->as_text = TupleDescAttr(desc, 0)->atttypid == TEXTOID && TupleDescAttr(desc, 1)->atttypid == TEXTOID;
    for (int e = 0; e < 2; ++e) {
        Oid output;
        bool varlena;
        getTypeOutputInfo(TupleDescAttr(desc, e)->atttypid, &output, &varlena);
        fmgr_info(output, &r->output[e]);
    }
}

bool receive_edge(TupleTableSlot* slot, DestReceiver* self) {
    auto* r = reinterpret_cast<EdgeReceiver*>(self);
    if ((++r->rows & 0xFFFF) == 0) CHECK_FOR_INTERRUPTS();
    slot_getallattrs(slot);
    if (slot->tts_isnull[0] || slot->tts_isnull[1]) return true;  // an edge with a missing end links nothing
    MemoryContext old = MemoryContextSwitchTo(r->row_context);
    std::string_view ends[2];
    for (int e = 0; e < 2; ++e) {
        Datum d = slot->tts_values[e];
        if (r->as_text) {
            text* t = DatumGetTextPP(d);  // may detoast into the row context
            ends[e] = std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
        } else {
            char* s = OutputFunctionCall(&r->output[e], d);
            ends[e] = std::string_view(s);
        }
    }
    Components* c = r->components;
    guarded([&] { c->graph->add_edge(ends[0], ends[1]); });
    MemoryContextSwitchTo(old);
    MemoryContextReset(r->row_context);
    return true;
}

}  // namespace

}  // namespace cdp::pg

using namespace cdp;
using namespace cdp::pg;

Datum cdp_normalise_identifier(PG_FUNCTION_ARGS) {
    char* type = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* value = text_to_cstring(PG_GETARG_TEXT_PP(1));
    std::string* out = nullptr;
    auto* owned = make_context_owned<std::string>(CurrentMemoryContext);
    bool ok = false;
    guarded([&] {
        std::optional<std::string> v = normalise_identifier(type, value, phone_country());
        ok = v.has_value();
        if (ok) *owned->object = *v;
        out = owned->object;
    });
    if (!ok) PG_RETURN_NULL();
    Datum result = text_datum(*out);
    owned->release();
    PG_RETURN_DATUM(result);
}

Datum cdp_explain_identity(PG_FUNCTION_ARGS) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Identifier& id = identifier_arg(fcinfo, 0);
    int32 workspace = PG_GETARG_INT32(2);
    spi_connect();
    int64 profile = profile_of(workspace, id);
    if (profile == 0) {
        spi_finish();
        return (Datum)0;
    }
    IdentityRules* rules = load_identity_rules(workspace, CurrentMemoryContext);
    static SPIPlanPtr ids_plan = nullptr;
    struct Explain {
        std::vector<Identifier> ids;
        std::map<Identifier, size_t> index;
        std::vector<std::pair<size_t, size_t>> edges;
        std::vector<size_t> path;
    };
    Explain* w = make_context_owned<Explain>(CurrentMemoryContext)->object;
    Oid types[] = {INT4OID, INT8OID};
    Datum args[] = {Int32GetDatum(workspace), Int64GetDatum(profile)};
    spi_run_replanned(&ids_plan,
                   "SELECT id_type, id_value FROM cdp.identifiers WHERE workspace_id = $1 AND profile_id = $2"
                   " ORDER BY first_seen, id_type, id_value",
                   2, types, args, nullptr, true);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool n1, n2;
        Datum t = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &n1);
        Datum v = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &n2);
        guarded([&] {
            w->ids.push_back({text_string(t), text_string(v)});
            w->index[w->ids.back()] = w->ids.size() - 1;
        });
    }
    select_profile_edges(workspace, profile);
    SPITupleTable* edge_rows = SPI_tuptable;
    uint64 nedges = SPI_processed;
    for (uint64 r = 0; r < nedges; ++r) {
        bool n[4];
        Datum d[4];
        for (int c = 0; c < 4; ++c) d[c] = SPI_getbinval(edge_rows->vals[r], edge_rows->tupdesc, c + 1, &n[c]);
        guarded([&] {
            size_t a = w->index.at({text_string(d[0]), text_string(d[1])});
            size_t b = w->index.at({text_string(d[2]), text_string(d[3])});
            w->edges.emplace_back(a, b);
        });
    }
    // The anchor: the profile's strongest identifier, the oldest of those.
    guarded([&] {
        size_t anchor = 0;
        for (size_t i = 1; i < w->ids.size(); ++i)
            if (rules->rule(w->ids[i].type).priority < rules->rule(w->ids[anchor].type).priority) anchor = i;
        w->path = shortest_path(w->ids.size(), w->edges, w->index.at(id), anchor);
    });
    size_t at = 0;
    guarded([&] { at = w->index.at(id); });
    for (size_t s = 0; s < w->path.size(); ++s) {
        size_t e = w->path[s];
        HeapTuple row = edge_rows->vals[e];
        size_t next = w->edges[e].first == at ? w->edges[e].second : w->edges[e].first;
        Datum values[8];
        bool nulls[8] = {false, false, false, false, false, false, false, false};
        values[0] = Int32GetDatum(static_cast<int32>(s + 1));
        values[1] = text_datum(w->ids[at].type);
        values[2] = text_datum(w->ids[at].value);
        values[3] = text_datum(w->ids[next].type);
        values[4] = text_datum(w->ids[next].value);
        values[5] = SPI_getbinval(row, edge_rows->tupdesc, 5, &nulls[5]);
        values[6] = SPI_getbinval(row, edge_rows->tupdesc, 6, &nulls[6]);
        values[7] = SPI_getbinval(row, edge_rows->tupdesc, 7, &nulls[7]);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        at = next;
    }
    spi_finish();
    return (Datum)0;
}

Datum cdp_unlink(PG_FUNCTION_ARGS) {
    InitMaterializedSRF(fcinfo, 0);
    Identifier* a = &identifier_arg(fcinfo, 0);
    Identifier* b = &identifier_arg(fcinfo, 2);
    int32 workspace = PG_GETARG_INT32(4);
    bool ordered = false;
    guarded([&] { ordered = *a < *b; });
    if (!ordered) std::swap(a, b);
    spi_connect();
    lock_identity(workspace);
    static SPIPlanPtr cut_plan = nullptr;
    Oid types[] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), text_datum(a->type), text_datum(a->value), text_datum(b->type),
                    text_datum(b->value)};
    spi_run_replanned(&cut_plan,
                      // The edge is cut and the decision recorded (the split, if any, is recorded apart).
                      "WITH cut AS (SELECT cdp_internal.cut_edges($1, ARRAY[$2], ARRAY[$3], ARRAY[$4], ARRAY[$5],"
                      "  'unlinked') AS n)"
                      " INSERT INTO cdp.identity_changes (workspace_id, kind, profile_id, a_type, a_value, b_type,"
                      "  b_value, reason)"
                      " SELECT $1, 'unlink', (SELECT profile_id FROM cdp.identifiers WHERE workspace_id = $1"
                      "  AND id_type = $2 AND id_value = $3), $2, $3, $4, $5, 'unlinked by cdp.unlink' FROM cut"
                      " WHERE cut.n > 0",
                      5, types, args, nullptr, false);
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("no edge between %s \"%s\" and %s \"%s\"", a->type.c_str(), a->value.c_str(),
                               b->type.c_str(), b->value.c_str()),
                        errdetail("cdp.identity_edges shows no such pair in workspace %d.", workspace),
                        errhint("cdp.explain_identity shows the edges that join an identifier to its profile.")));
    int64 profile = profile_of(workspace, *a);
    int n = 0;
    ProfilePart* parts = profile != 0 ? split_profile(workspace, profile, *a, *b, "unlinked", &n) : nullptr;
    recompute_parts(workspace, parts, n);
    spi_finish();
    return_parts(fcinfo, parts, n);
    return (Datum)0;
}

Datum cdp_block_identifier(PG_FUNCTION_ARGS) {
    InitMaterializedSRF(fcinfo, 0);
    Identifier& id = identifier_arg(fcinfo, 0);
    int32 workspace = PG_GETARG_INT32(2);
    spi_connect();
    lock_identity(workspace);
    int64 profile = profile_of(workspace, id);
    if (profile == 0) unknown_identifier(id);
    static SPIPlanPtr cut_plan = nullptr, block_plan = nullptr;
    Oid types[] = {INT4OID, TEXTOID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), text_datum(id.type), text_datum(id.value)};
    // Its edges cut (found while it still has its profile), then blocklisted, recorded and
    // detached from its profile.
    spi_run_replanned(&cut_plan,
                      "SELECT cdp_internal.cut_edges($1, array_agg(t.a_type), array_agg(t.a_value), array_agg(t.b_type),"
                      "  array_agg(t.b_value), 'blocked')"
                      " FROM cdp_internal.edges_touching($1, ARRAY[$2], ARRAY[$3]) t",
                      3, types, args, nullptr, false);
    spi_run_replanned(&block_plan,
                   "WITH b AS (INSERT INTO cdp.identity_blocklist (workspace_id, id_type, value) VALUES ($1, $2, $3)"
                   "  ON CONFLICT DO NOTHING RETURNING 1),"
                   " l AS (INSERT INTO cdp.identity_changes (workspace_id, kind, profile_id, a_type, a_value, reason)"
                   "  SELECT $1, 'block', profile_id, $2, $3, 'blocked by cdp.block_identifier' FROM cdp.identifiers"
                   "  WHERE workspace_id = $1 AND id_type = $2 AND id_value = $3 RETURNING 1)"
                   " UPDATE cdp.identifiers SET profile_id = NULL"
                   " WHERE workspace_id = $1 AND id_type = $2 AND id_value = $3",
                   3, types, args, nullptr, false);
    int n = 0;
    ProfilePart* parts = split_profile(workspace, profile, id, id, "blocked", &n);
    recompute_parts(workspace, parts, n);
    spi_finish();
    return_parts(fcinfo, parts, n);
    return (Datum)0;
}

Datum cdp_connected_components(PG_FUNCTION_ARGS) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    char* query = text_to_cstring(PG_GETARG_TEXT_PP(0));
    bool apply_rules = PG_GETARG_BOOL(1);
    int32 workspace = PG_GETARG_INT32(2);
    MemoryContext call_context = CurrentMemoryContext;
    Components* c = make_context_owned<Components>(call_context)->object;
    spi_connect();
    if (apply_rules) {
        IdentityRules* rules = load_identity_rules(workspace, call_context);
        guarded([&] { c->rules = std::make_unique<IdentityRules>(std::move(*rules)); });
    }
    // A second core reads no rows but interns and unites them, while this backend reads the next
    // ones: when the DBA allows a query more than one process (max_parallel_workers_per_gather).
    guarded([&] { c->graph = std::make_unique<ComponentBuilder>(c->rules.get(), max_parallel_workers_per_gather > 0); });
    // The rows go straight from the executor into the graph, through a DestReceiver: no copy
    // of each row into an SPI tuple table.
    EdgeReceiver receiver;
    memset(&receiver, 0, sizeof receiver);
    receiver.pub.receiveSlot = receive_edge;
    receiver.pub.rStartup = start_edges;
    receiver.pub.rShutdown = [](DestReceiver*) {};
    receiver.pub.rDestroy = [](DestReceiver*) {};
    receiver.pub.mydest = DestNone;
    receiver.components = c;
    receiver.row_context = AllocSetContextCreate(call_context, "cdp components row", ALLOCSET_SMALL_SIZES);
    SPIPlanPtr plan = SPI_prepare(query, 0, nullptr);
    if (plan == nullptr)
        ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("cannot prepare the edges query"),
                        errdetail("SPI_prepare failed with %s.", SPI_result_code_string(SPI_result)),
                        errhint("Pass a SELECT that yields two columns, the identifiers at each end of an edge.")));
    // The planner's row estimate sizes the graph up front (growing it costs rehashing and copies).
    double estimate = 0;
    if (CachedPlan* cached = SPI_plan_get_cached_plan(plan)) {
        ListCell* lc;
        foreach (lc, cached->stmt_list) {
            auto* stmt = static_cast<PlannedStmt*>(lfirst(lc));
            if (IsA(stmt, PlannedStmt) && stmt->commandType == CMD_SELECT && stmt->planTree != nullptr)
                estimate = stmt->planTree->plan_rows;
        }
        ReleaseCachedPlan(cached, nullptr);  // an unsaved plan: SPI took it without a resource owner
    }
    guarded([&] { c->graph->reserve(static_cast<size_t>(std::min(estimate, 50e6))); });
    SPIExecuteOptions options;
    memset(&options, 0, sizeof options);
    options.read_only = true;
    options.dest = &receiver.pub;
    int rc = SPI_execute_plan_extended(plan, &options);
    if (rc < 0)
        ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("cannot run the edges query"),
                        errdetail("SPI_execute_plan_extended failed with %s.", SPI_result_code_string(rc)),
                        errhint("Pass a SELECT that yields two columns, the identifiers at each end of an edge.")));
    guarded([&] { c->graph->finish(); });
    if (!receiver.started)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("the edges query returned no rows at all"),
                        errdetail("It is not a query that returns rows (perhaps a utility statement)."),
                        errhint("Pass a SELECT that yields two columns, such as SELECT a, b FROM edges.")));
    spi_finish();
    // The component of a node: the smallest node name in it.
    std::vector<std::uint32_t>* label = make_context_owned<std::vector<std::uint32_t>>(call_context)->object;
    const StringInterner& names = c->graph->names();
    size_t count = names.size(), longest = 0;
    guarded([&] {
        *label = c->graph->smallest_names();
        for (size_t i = 0; i < count; ++i) longest = std::max(longest, names.name(static_cast<std::uint32_t>(i)).size());
    });
    // Two text values rewritten for every row (the tuplestore copies them).
    auto* node_text = static_cast<text*>(palloc(VARHDRSZ + longest));
    auto* comp_text = static_cast<text*>(palloc(VARHDRSZ + longest));
    Datum values[2] = {PointerGetDatum(node_text), PointerGetDatum(comp_text)};
    bool nulls[2] = {false, false};
    for (size_t i = 0; i < count; ++i) {
        if ((i & 0xFFFF) == 0) CHECK_FOR_INTERRUPTS();
        std::string_view node = names.name(static_cast<std::uint32_t>(i));
        std::string_view comp = names.name((*label)[i]);
        SET_VARSIZE(node_text, VARHDRSZ + node.size());
        memcpy(VARDATA(node_text), node.data(), node.size());
        SET_VARSIZE(comp_text, VARHDRSZ + comp.size());
        memcpy(VARDATA(comp_text), comp.data(), comp.size());
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum)0;
}

// cdp.rebuild_profile_records(workspace_id): every live profile's record rebuilt from its
// events (after ingest ran with cdp.update_profiles off, or after changing cdp.trait_rules).
Datum cdp_rebuild_profile_records(PG_FUNCTION_ARGS) {
    int32 workspace = PG_GETARG_INT32(0);
    spi_connect();
    lock_identity(workspace);  // no ingest changes profiles meanwhile
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&plan, "SELECT profile_id FROM cdp.profiles WHERE workspace_id = $1 AND merged_into IS NULL",
                   1, types, args, nullptr, true);
    int n = static_cast<int>(SPI_processed);
    auto* ids = static_cast<int64*>(palloc(sizeof(int64) * std::max(n, 1)));
    for (int i = 0; i < n; ++i) {
        bool isnull;
        ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    }
    recompute_profile_records(workspace, ids, n, "rebuild");
    // What registered tables said comes from them again: their rows are not events.
    static SPIPlanPtr sources_plan = nullptr;
    spi_run_cached(&sources_plan,
                   "SELECT (cdp.sync_source(name, workspace_id, full_sync => true)).rows_read FROM cdp.sources"
                   " WHERE workspace_id = $1 ORDER BY name",
                   1, types, args, nullptr, false);
    spi_finish();
    PG_RETURN_INT64(n);
}

// cdp_internal.lock_identity(workspace_id): the identity lock (see lock_identity), for SQL-level
// writers of profile records.
Datum cdp_lock_identity(PG_FUNCTION_ARGS) {
    spi_connect();
    lock_identity(PG_GETARG_INT32(0));
    spi_finish();
    PG_RETURN_VOID();
}
