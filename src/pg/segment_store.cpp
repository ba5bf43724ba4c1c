#include "cdp/pg/segment_store.hpp"

#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

namespace cdp::pg {

namespace {

// The last segment query prepared in this backend, with its text: a new text (segments or
// computed traits changed, or another workspace) is prepared again.
char* prepared_text = nullptr;
SPIPlanPtr prepared_plan = nullptr;

// The workspace's segment query (cdp_internal.segment_query), in the caller's memory context;
// nullptr when it has no realtime segment.
char* segment_query(int32 workspace) {
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&plan, "SELECT cdp_internal.segment_query($1)", 1, types, args, nullptr, true);
    bool isnull;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return isnull ? nullptr : TextDatumGetCString(d);
}

}  // namespace

uint64 evaluate_segments(int32 workspace, const std::vector<int64>& profiles, TimestampTz at, const char* cause) {
    if (profiles.empty()) return 0;
    char* sql = segment_query(workspace);
    if (sql == nullptr) return 0;
    if (prepared_text == nullptr || strcmp(prepared_text, sql) != 0) {
        if (prepared_plan != nullptr) SPI_freeplan(prepared_plan);
        prepared_plan = nullptr;
        if (prepared_text != nullptr) pfree(prepared_text);
        prepared_text = nullptr;
    }
    int n = static_cast<int>(profiles.size());
    Datum* ids = datums(n);
    for (int i = 0; i < n; ++i) ids[i] = Int64GetDatum(profiles[static_cast<size_t>(i)]);
    Oid types[] = {INT4OID, INT8ARRAYOID, TIMESTAMPTZOID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), int8_array(ids, n), TimestampTzGetDatum(at), CStringGetTextDatum(cause)};
    spi_run_cached(&prepared_plan, sql, 4, types, args, nullptr, false);
    if (prepared_text == nullptr) prepared_text = MemoryContextStrdup(TopMemoryContext, sql);
    return SPI_processed;
}

void segments_after_batch(int32 workspace, const std::vector<Event>& events,
                          const std::vector<std::pair<int64, int64>>& moved, TimestampTz at) {
    if (!moved.empty()) {
        static SPIPlanPtr plan = nullptr;
        int n = static_cast<int>(moved.size());
        Datum *absorbed = datums(n), *survivors = datums(n);
        for (int i = 0; i < n; ++i) {
            absorbed[i] = Int64GetDatum(moved[static_cast<size_t>(i)].first);
            survivors[i] = Int64GetDatum(moved[static_cast<size_t>(i)].second);
        }
        Oid types[] = {INT4OID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(absorbed, n), int8_array(survivors, n),
                        TimestampTzGetDatum(at)};
        spi_run_cached(&plan, "SELECT cdp_internal.absorb_profiles($1, $2, $3, $4)", 4, types, args, nullptr, false);
    }
    // The batch's events that a trigger may care about: those of a profile, with a name.
    int n = 0;
    for (const Event& e : events)
        if (e.profile_id != 0) ++n;
    if (n == 0) return;
    Datum *profiles = datums(n), *names = datums(n), *times = datums(n), *ids = datums(n);
    int k = 0;
    for (const Event& e : events) {
        if (e.profile_id == 0) continue;
        std::string_view name = e.type == EventType::Track ? e.event
                                : e.type == EventType::Page || e.type == EventType::Screen ? e.name
                                                                                            : event_type_name(e.type);
        profiles[k] = Int64GetDatum(e.profile_id);
        names[k] = text_datum(name);
        times[k] = TimestampTzGetDatum(to_postgres(e.timestamp));
        ids[k] = text_datum(e.message_id);
        ++k;
    }
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
    Datum args[] = {Int32GetDatum(workspace), int8_array(profiles, n), text_array(names, n), timestamptz_array(times, n),
                    text_array(ids, n), TimestampTzGetDatum(at)};
    spi_run_cached(&plan, "SELECT cdp_internal.run_triggers($1, $2, $3, $4, $5, $6)", 6, types, args, nullptr, false);
}

}  // namespace cdp::pg
