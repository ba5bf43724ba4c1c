#include "cdp/pg/profile_store.hpp"

#include <algorithm>
#include <climits>
#include <map>
#include <string>

#include "cdp/core/computed.hpp"
#include "cdp/core/traits.hpp"
#include "cdp/pg/computed_store.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/jsonb.hpp"
#include "cdp/pg/segment_store.hpp"
#include "cdp/pg/spi.hpp"
#include "cdp/pg/trait_input.hpp"

namespace cdp::pg {

namespace {

struct Record {
    TraitMerger traits;
    ComputedState computed;
    Micros first_seen = INT64_MAX;
    Micros last_seen = INT64_MIN;
};

// All C++ state of one update, owned by the caller's memory context.
struct ProfileUpdate {
    TraitRules rules;
    ComputedDefinitions definitions;
    std::map<int64, Record> records;   // survivors: the profiles whose records are written
    std::map<int64, int64> survivor;   // absorbed profile -> the profile it went into
    std::vector<int64> load;           // every profile whose stored record is read, in order
    TraitMerger stored;                // one stored record at a time, read back
    ComputedState stored_computed;
};

// The traits objects an event brings, for each place one can be: identify and group calls'
// traits, and any event's context.traits (kSources names them).
constexpr const char* kSources[2] = {nullptr, "context.traits"};
void traits_of_event(const Event& e, const rapidjson::Value** out) {
    out[0] = (e.type == EventType::Identify || e.type == EventType::Group) && e.traits != nullptr &&
                     e.traits->IsObject()
                 ? e.traits
                 : nullptr;
    out[1] = nullptr;
    if (e.context != nullptr && e.context->IsObject()) {
        auto it = e.context->FindMember("traits");
        if (it != e.context->MemberEnd() && it->value.IsObject()) out[1] = &it->value;
    }
}

}  // namespace

void update_profile_records(const std::vector<Event>& events, const std::vector<std::pair<int64, int64>>& moved,
                            int32 workspace, Micros now, MemoryContext context, std::vector<int64>* written,
                            const RecordSource* from) {
    ProfileUpdate* u = make_context_owned<ProfileUpdate>(context)->object;
    load_trait_rules(workspace, &u->rules);
    load_computed_definitions(workspace, &u->definitions);
    const std::vector<ComputedDefinition>& definitions = u->definitions.list;
    MemoryContext row_context = AllocSetContextCreate(context, "cdp profile traits", ALLOCSET_DEFAULT_SIZES);
    for (const Event& e : events) {
        if (e.profile_id == 0) continue;
        Record* r = nullptr;
        const rapidjson::Value* objects[2];
        guarded([&] {
            r = &u->records[e.profile_id];
            r->first_seen = std::min(r->first_seen, e.timestamp);
            r->last_seen = std::max(r->last_seen, e.timestamp);
            if (!definitions.empty() && from == nullptr) r->computed.observe(definitions, e, now);
            traits_of_event(e, objects);
        });
        for (int place = 0; place < 2; ++place) {
            const rapidjson::Value* object = objects[place];
            if (object == nullptr || object->MemberCount() == 0) continue;
            MemoryContext old = MemoryContextSwitchTo(row_context);
            Jsonb* traits = DatumGetJsonbP(jsonb_from_json(*object));  // jsonb's own text for every value
            Provenance origin{from != nullptr ? from->name : place == 0 ? event_type_name(e.type) : kSources[place],
                              e.message_id};
            add_jsonb_traits(&r->traits, traits, u->rules, e.timestamp,
                             from != nullptr ? from->priority : TraitMerger::kNoPriority, origin);
            MemoryContextSwitchTo(old);
            MemoryContextReset(row_context);
        }
    }
    MemoryContextDelete(row_context);
    guarded([&] {
        for (const auto& [absorbed, survivor] : moved) {
            u->survivor[absorbed] = survivor;
            u->records[survivor];  // the survivor's record is rewritten with the absorbed one's
            u->records.erase(absorbed);
        }
        for (const auto& [profile, record] : u->records) u->load.push_back(profile);
        for (const auto& [absorbed, survivor] : u->survivor) u->load.push_back(absorbed);
        std::sort(u->load.begin(), u->load.end());  // the lock order
    });
    if (u->records.empty()) return;
    guarded([&] {
        for (const auto& [profile, record] : u->records) written->push_back(profile);
    });

    // The stored records, locked until the transaction ends.
    int n = static_cast<int>(u->load.size());
    Datum* ids = datums(n);
    for (int i = 0; i < n; ++i) ids[i] = Int64GetDatum(u->load[static_cast<size_t>(i)]);
    {
        static SPIPlanPtr plan = nullptr;
        static BlockNumber planned_blocks = 0;
        Oid types[] = {INT4OID, INT8ARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(ids, n)};
        spi_run_cached_growing(&plan, &planned_blocks, table_oid("cdp_internal", "profile_state"),
                               "SELECT s.profile_id, s.traits, s.first_seen, s.last_seen, s.computed"
                               " FROM unnest($2) AS p(id) CROSS JOIN LATERAL ("
                               "  SELECT * FROM cdp_internal.profile_state s"
                               "  WHERE s.workspace_id = $1 AND s.profile_id = p.id FOR UPDATE) s",
                               2, types, args, nullptr, false);
    }
    for (uint64 row = 0; row < SPI_processed; ++row) {
        bool isnull;
        HeapTuple tup = SPI_tuptable->vals[row];
        TupleDesc desc = SPI_tuptable->tupdesc;
        int64 profile = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
        bytea* bytes = DatumGetByteaPP(SPI_getbinval(tup, desc, 2, &isnull));
        Micros first = to_unix(DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull)));
        Micros last = to_unix(DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull)));
        read_trait_state(std::string_view(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes)), &u->stored,
                         "a profile record (cdp_internal.profile_state)");
        Datum computed = SPI_getbinval(tup, desc, 5, &isnull);
        if (isnull) guarded([&] { u->stored_computed = ComputedState(); });
        else read_computed_state(DatumGetByteaPP(computed), &u->stored_computed);
        guarded([&] {
            u->stored_computed.expire(definitions, now);  // its buckets now out of their windows, its dropped traits
            auto it = u->survivor.find(profile);
            Record& r = u->records[it != u->survivor.end() ? it->second : profile];
            r.first_seen = std::min(r.first_seen, first);
            r.last_seen = std::max(r.last_seen, last);
            r.traits.merge(std::move(u->stored));
            r.computed.merge(std::move(u->stored_computed));
        });
    }

    // The survivors' records written back; the absorbed ones' are gone into them.
    int m = static_cast<int>(u->records.size());
    Datum *profiles = datums(m), *states = datums(m), *firsts = datums(m), *lasts = datums(m);
    Datum *computed = datums(m), *expires = datums(m);  // empty bytes and infinity: none
    int k = 0;
    for (const auto& [profile, record] : u->records) {
        profiles[k] = Int64GetDatum(profile);
        states[k] = PointerGetDatum(trait_state_bytes(record.traits));
        computed[k] = PointerGetDatum(computed_state_bytes(record.computed));
        std::optional<Micros> expiry;
        guarded([&] { expiry = record.computed.next_expiry(); });
        expires[k] = TimestampTzGetDatum(expiry ? to_postgres(*expiry) : DT_NOEND);
        firsts[k] = TimestampTzGetDatum(to_postgres(record.first_seen));
        lasts[k] = TimestampTzGetDatum(to_postgres(record.last_seen));
        ++k;
    }
    {
        static SPIPlanPtr plan = nullptr;
        Oid types[] = {INT4OID, INT8ARRAYOID, BYTEAARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
                       BYTEAARRAYOID, TIMESTAMPTZARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(profiles, m), bytea_array(states, m),
                        timestamptz_array(firsts, m), timestamptz_array(lasts, m), bytea_array(computed, m),
                        timestamptz_array(expires, m)};
        spi_run_cached(&plan,
                       "INSERT INTO cdp_internal.profile_state AS s"
                       "  (workspace_id, profile_id, traits, first_seen, last_seen, computed, computed_expires_at)"
                       " SELECT $1, p, t, f, l, nullif(c, ''::bytea), nullif(x, 'infinity')"
                       " FROM unnest($2, $3, $4, $5, $6, $7) AS u(p, t, f, l, c, x) ORDER BY p"
                       " ON CONFLICT (workspace_id, profile_id) DO UPDATE SET traits = excluded.traits,"
                       "  first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
                       "  computed = excluded.computed, computed_expires_at = excluded.computed_expires_at",
                       7, types, args, nullptr, false);
    }
    if (!u->survivor.empty()) {
        static SPIPlanPtr plan = nullptr;
        int na = static_cast<int>(u->survivor.size());
        Datum* absorbed = datums(na);
        int a = 0;
        for (const auto& [profile, survivor] : u->survivor) absorbed[a++] = Int64GetDatum(profile);
        Oid types[] = {INT4OID, INT8ARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(absorbed, na)};
        spi_run_cached(&plan, "DELETE FROM cdp_internal.profile_state WHERE workspace_id = $1 AND profile_id = ANY ($2)",
                       2, types, args, nullptr, false);
    }
}

void recompute_profile_records(int32 workspace, const int64* profiles, int n, const char* cause) {
    if (n == 0) return;
    static SPIPlanPtr plan = nullptr;
    Datum* ids = datums(n);
    for (int i = 0; i < n; ++i) ids[i] = Int64GetDatum(profiles[i]);
    Oid types[] = {INT4OID, INT8ARRAYOID};
    Datum args[] = {Int32GetDatum(workspace), int8_array(ids, n)};
    spi_run_cached(&plan, "SELECT cdp_internal.recompute_profile_records($1, $2)", 2, types, args, nullptr, false);
    auto* ids_vector = make_context_owned<std::vector<int64>>(CurrentMemoryContext)->object;
    guarded([&] { ids_vector->assign(profiles, profiles + n); });
    evaluate_segments(workspace, *ids_vector, GetCurrentTransactionStartTimestamp(), cause);
}

}  // namespace cdp::pg
