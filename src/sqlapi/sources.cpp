// cdp_internal.link_source_rows(rows jsonb, workspace_id, source, priority): rows of a registered
// table (cdp.sources), made into identify calls by cdp.sync_source, linked into the identity
// graph and folded into profile records with the source's name and priority. Nothing is copied
// into cdp.events: the table stays the one place that holds them.
#include <string>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cdp/core/ingest.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/identity_store.hpp"
#include "cdp/pg/privacy_store.hpp"
#include "cdp/pg/profile_store.hpp"
#include "cdp/pg/segment_store.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "utils/json.h"

PGDLLEXPORT Datum cdp_link_source_rows(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_link_source_rows);
}

using namespace cdp;
using namespace cdp::pg;

Datum cdp_link_source_rows(PG_FUNCTION_ARGS) {
    Jsonb* rows = PG_GETARG_JSONB_P(0);
    int32 workspace = PG_GETARG_INT32(1);
    text* source = PG_GETARG_TEXT_PP(2);
    int32 priority = PG_GETARG_INT32(3);
    char* payload = JsonbToCString(nullptr, &rows->root, VARSIZE(rows));
    TimestampTz now = GetCurrentTransactionStartTimestamp();

    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("link_source_rows must return a record"),
                        errdetail("The function's declared result type is not composite."),
                        errhint("Reinstall the extension.")));

    MemoryContext caller_context = CurrentMemoryContext;
    MemoryContext context = AllocSetContextCreate(caller_context, "cdp source rows", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(context);
    IngestBatch* batch = make_context_owned<IngestBatch>(context)->object;
    auto* rejections = make_context_owned<std::string>(context)->object;
    guarded([&] {
        IngestOptions options;
        options.received_at = to_unix(now);
        options.input_is_utf8 = GetDatabaseEncoding() == PG_UTF8;
        options.dedup_scope = static_cast<std::uint32_t>(workspace);
        // A table's rows are not a client's events: any age is fine (a customer since 1998),
        // and a chunk of rows is not held to the HTTP API's batch limit.
        options.limits.min_timestamp = INT64_MIN;
        options.limits.max_future = INT64_MAX / 2;
        options.limits.max_batch_bytes = SIZE_MAX / 2;
        batch->parse(payload, options);
    });

    spi_connect();
    suppress_erased(*batch, workspace, context);  // an erased person's row links nothing
    guarded([&] {
        for (const Rejection& r : batch->rejections) {
            rapidjson::StringBuffer buf;
            rapidjson::Writer<rapidjson::StringBuffer> w(buf);
            w.StartObject();
            w.Key("row");
            w.Uint64(r.item_index);
            w.Key("reason");
            w.String(r.reason);
            w.Key("detail");
            w.String(r.detail.c_str());
            w.EndObject();
            *rejections += (rejections->empty() ? "[" : ", ") + std::string(buf.GetString(), buf.GetSize());
        }
        *rejections += rejections->empty() ? "[]" : "]";
    });

    if (!batch->events.empty()) {
        lock_identity(workspace);
        IdentityRules* rules = load_identity_rules(workspace, context);
        // Owned by the context: stitching and the records below can ereport.
        auto& moved = *make_context_owned<std::vector<std::pair<int64, int64>>>(context)->object;
        stitch_events(batch->events, workspace, *rules, &moved);
        if (setting_update_profiles) {
            RecordSource from{std::string_view(VARDATA_ANY(source), VARSIZE_ANY_EXHDR(source)), priority};
            auto* written = make_context_owned<std::vector<int64>>(context)->object;
            update_profile_records(batch->events, moved, workspace, to_unix(now), context, written, &from);
            // Rows are not events: no trigger sees them, but segments see what they changed.
            static const std::vector<Event> kNoEvents;
            segments_after_batch(workspace, kNoEvents, moved, now);
            evaluate_segments(workspace, *written, now, psprintf("source %s", text_to_cstring(source)));
        }
    }
    spi_finish();

    Datum values[2] = {Int32GetDatum(static_cast<int32>(batch->events.size())),
                       DirectFunctionCall1(jsonb_in, CStringGetDatum(rejections->c_str()))};
    bool nulls[2] = {false, false};
    MemoryContextSwitchTo(caller_context);
    HeapTuple tuple = heap_form_tuple(BlessTupleDesc(result_desc), values, nulls);
    MemoryContextDelete(context);
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
