#include "cdp/pg/segment_store.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "utils/array.h"
}

namespace cdp::pg {

namespace {

// The last segment query prepared in this backend, with its text: a new text (segments or
// computed traits changed, or another workspace) is prepared again.
char* prepared_text = nullptr;
SPIPlanPtr prepared_plan = nullptr;
BlockNumber prepared_blocks = 0;

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

// One membership change: (profile, exited before entered, segment) is the order of the feed.
struct Change {
    int64 profile;
    bool entered;
    int64 segment;
    bool operator<(const Change& o) const {
        return std::tie(profile, entered, segment) < std::tie(o.profile, o.entered, o.segment);
    }
};

struct Evaluation {
    std::set<std::pair<int64, int64>> now_in, was_in;  // (profile, segment)
    std::vector<Change> changes;
};

// Consent the events carry in context.consent.categoryPreferences ({"marketing": true, ...}),
// recorded for their profiles, the latest by event time winning; a category the object does not
// list is simply not granted.
void record_consent_of(int32 workspace, const std::vector<Event>& events) {
    struct Decision {
        int64 profile;
        std::string purpose;
        bool granted;
        Micros at;
    };
    auto* decisions = make_context_owned<std::vector<Decision>>(CurrentMemoryContext)->object;
    guarded([&] {
        for (const Event& e : events) {
            if (e.profile_id == 0 || e.context == nullptr || !e.context->IsObject()) continue;
            auto consent = e.context->FindMember("consent");
            if (consent == e.context->MemberEnd() || !consent->value.IsObject()) continue;
            auto prefs = consent->value.FindMember("categoryPreferences");
            if (prefs == consent->value.MemberEnd() || !prefs->value.IsObject()) continue;
            for (auto& m : prefs->value.GetObject())
                if (m.value.IsBool())
                    decisions->push_back({e.profile_id, std::string(m.name.GetString(), m.name.GetStringLength()),
                                          m.value.GetBool(), e.timestamp});
        }
    });
    int n = static_cast<int>(decisions->size());
    if (n == 0) return;
    Datum *profiles = datums(n), *purposes = datums(n), *granted = datums(n), *times = datums(n);
    for (int i = 0; i < n; ++i) {
        const Decision& d = (*decisions)[static_cast<size_t>(i)];
        profiles[i] = Int64GetDatum(d.profile);
        purposes[i] = text_datum(d.purpose);
        granted[i] = BoolGetDatum(d.granted);
        times[i] = TimestampTzGetDatum(to_postgres(d.at));
    }
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, INT8ARRAYOID, TEXTARRAYOID, BOOLARRAYOID, TIMESTAMPTZARRAYOID};
    Datum args[] = {Int32GetDatum(workspace), int8_array(profiles, n), text_array(purposes, n),
                    PointerGetDatum(construct_array(granted, n, BOOLOID, 1, true, TYPALIGN_CHAR)),
                    timestamptz_array(times, n)};
    spi_run_cached(&plan, "SELECT cdp_internal.record_consent($1, $2, $3, $4, $5, 'context.consent')", 5, types, args,
                   nullptr, false);
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
    Evaluation* ev = make_context_owned<Evaluation>(CurrentMemoryContext)->object;
    int n = static_cast<int>(profiles.size());
    Datum* ids = datums(n);
    for (int i = 0; i < n; ++i) ids[i] = Int64GetDatum(profiles[static_cast<size_t>(i)]);
    Datum id_array = int8_array(ids, n);

    // Where the profiles belong now. The tables it probes start empty and grow to millions of
    // rows: its plan is made again whenever the profile records have doubled (spi.hpp).
    {
        Oid types[] = {INT4OID, INT8ARRAYOID, TIMESTAMPTZOID};
        Datum args[] = {Int32GetDatum(workspace), id_array, TimestampTzGetDatum(at)};
        // Not read-only: it must see the records this batch has just written.
        spi_run_cached_growing(&prepared_plan, &prepared_blocks, table_oid("cdp_internal", "profile_state"), sql, 3,
                               types, args, nullptr, false);
        if (prepared_text == nullptr) prepared_text = MemoryContextStrdup(TopMemoryContext, sql);
    }
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool isnull;
        int64 profile = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        ArrayType* segments = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        Datum* items;
        bool* nulls;
        int count;
        deconstruct_array(segments, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &items, &nulls, &count);
        guarded([&] {
            for (int i = 0; i < count; ++i) ev->now_in.emplace(profile, DatumGetInt64(items[i]));
        });
    }
    // Where they were: their realtime memberships.
    {
        static SPIPlanPtr plan = nullptr;
        static BlockNumber planned = 0;
        Oid types[] = {INT4OID, INT8ARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), id_array};
        spi_run_cached_growing(&plan, &planned, table_oid("cdp", "segment_members"),
                               "SELECT m.profile_id, m.segment_id FROM unnest($2::bigint[]) AS ids(id)"
                               " CROSS JOIN LATERAL (SELECT m.profile_id, m.segment_id FROM cdp.segment_members m"
                               "  WHERE m.workspace_id = $1 AND m.profile_id = ids.id) m"
                               " JOIN cdp.segments s ON s.segment_id = m.segment_id AND s.mode = 'realtime'",
                               2, types, args, nullptr, false);
    }
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool isnull;
        int64 profile = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        int64 segment = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        guarded([&] { ev->was_in.emplace(profile, segment); });
    }
    guarded([&] {
        for (const auto& [profile, segment] : ev->now_in)
            if (ev->was_in.count({profile, segment}) == 0) ev->changes.push_back({profile, true, segment});
        for (const auto& [profile, segment] : ev->was_in)
            if (ev->now_in.count({profile, segment}) == 0) ev->changes.push_back({profile, false, segment});
        std::sort(ev->changes.begin(), ev->changes.end());
    });
    int m = static_cast<int>(ev->changes.size());
    if (m == 0) return 0;

    // Only the differences are written: memberships, then the feed in (profile, exits first) order.
    Datum *segment_ids = datums(m), *profile_ids = datums(m), *kinds = datums(m);
    for (int i = 0; i < m; ++i) {
        const Change& c = ev->changes[static_cast<size_t>(i)];
        segment_ids[i] = Int64GetDatum(c.segment);
        profile_ids[i] = Int64GetDatum(c.profile);
        kinds[i] = CStringGetTextDatum(c.entered ? "entered" : "exited");
    }
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID, TEXTOID};
    Datum args[] = {Int32GetDatum(workspace), int8_array(segment_ids, m), int8_array(profile_ids, m),
                    text_array(kinds, m), TimestampTzGetDatum(at), CStringGetTextDatum(cause)};
    spi_run_cached(&plan,
                   "WITH changes AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[]) WITH ORDINALITY"
                   "   AS u(segment_id, profile_id, change, n)),"
                   " gone AS (DELETE FROM cdp.segment_members m USING changes c"
                   "   WHERE c.change = 'exited' AND m.segment_id = c.segment_id AND m.profile_id = c.profile_id),"
                   " came AS (INSERT INTO cdp.segment_members (workspace_id, segment_id, profile_id, entered_at)"
                   "   SELECT $1, c.segment_id, c.profile_id, $5 FROM changes c WHERE c.change = 'entered')"
                   " INSERT INTO cdp.segment_changes (workspace_id, segment_id, segment, profile_id, change, at, cause)"
                   " SELECT $1, c.segment_id, s.name, c.profile_id, c.change, $5, $6"
                   " FROM changes c JOIN cdp.segments s ON s.segment_id = c.segment_id ORDER BY c.n",
                   6, types, args, nullptr, false);
    return static_cast<uint64>(m);
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
    record_consent_of(workspace, events);
    if (events.empty()) return;
    // Most workspaces have no trigger: then the batch's events are not even listed.
    {
        static SPIPlanPtr plan = nullptr;
        Oid types[] = {INT4OID};
        Datum args[] = {Int32GetDatum(workspace)};
        spi_run_cached(&plan, "SELECT FROM cdp.segments s WHERE s.workspace_id = $1 AND s.mode = 'trigger' LIMIT 1", 1,
                       types, args, nullptr, true);
        if (SPI_processed == 0) return;
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
        std::string_view name = event_name_of(e);
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
