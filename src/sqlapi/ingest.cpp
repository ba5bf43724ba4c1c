// cdp.ingest(text|jsonb, workspace_id, received_at): the SQL entry points of event ingest.
// The C++ core parses, validates, enriches and sessionizes; this file moves data between it and
// PostgreSQL: set-based SPI statements for dedup and session state, bulk insert for the rows.
#include <algorithm>
#include <memory>
#include <unordered_map>

#include "cdp/core/ingest.hpp"
#include "cdp/core/session.hpp"
#include "cdp/core/url.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/identity_store.hpp"
#include "cdp/pg/jsonb.hpp"
#include "cdp/pg/privacy_store.hpp"
#include "cdp/pg/profile_store.hpp"
#include "cdp/pg/row_writer.hpp"
#include "cdp/pg/segment_store.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
PGDLLEXPORT Datum cdp_ingest_text(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_ingest_jsonb(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_ingest_text);
PG_FUNCTION_INFO_V1(cdp_ingest_jsonb);
}

namespace cdp::pg {

namespace {

// A session actor and its key in cdp_internal.session_state.
struct ActorKey {
    Hash128 key;
    std::string_view actor;                // a view of an event's session_actor, or of a key of sessions
    const SessionState* state = nullptr;   // for a changed session: its new state
    bool operator<(const ActorKey& o) const { return key < o.key; }
    bool operator==(const ActorKey& o) const { return key == o.key; }
};

// All C++ state of one call. One is kept per backend and reused call after call (see
// borrow_work): a batch then finds its buffers already allocated instead of mallocing and
// freeing about 2 MB each time, which made glibc consolidate and return memory per call.
struct IngestWork {
    IngestBatch batch;
    IngestOptions options;
    std::unordered_map<std::string, SessionState> sessions;
    std::vector<ActorKey> actors;                     // distinct session actors, in key order (the lock order)
    std::vector<ActorKey> changed_actors;             // those whose sessions moved on, in key order
    std::vector<Micros> months;                       // first instant of each month with events
    std::vector<Hash128> sorted_hashes;               // message hashes of the events, sorted
    std::vector<std::pair<int64, int64>> moved_profiles;  // merged by this batch: (absorbed, survivor)
    size_t payload_bytes = 0;

    void clear() {
        batch.clear();
        options.internal_domains.clear();
        changed_actors.clear();  // first: they point into sessions
        sessions.clear();
        actors.clear();
        months.clear();
        sorted_hashes.clear();
        moved_profiles.clear();
        payload_bytes = 0;
    }
};

// The backend's reusable work, and whether a call is using it (a nested call, from a trigger
// on a table ingest writes through SQL, gets one of its own).
IngestWork* backend_work = nullptr;
bool backend_work_busy = false;
// Past this payload size the work's buffers are freed after the call rather than kept.
constexpr size_t kKeptPayloadBytes = 4 << 20;

void return_work(void* arg) {
    auto* work = static_cast<IngestWork*>(arg);
    if (work != backend_work) {
        delete work;
        return;
    }
    if (work->payload_bytes > kKeptPayloadBytes) {
        delete work;
        backend_work = nullptr;
    } else {
        work->clear();
    }
    backend_work_busy = false;
}

// Lends the call the backend's work; it is cleared and given back when `context` goes away,
// whether the call ends or fails.
IngestWork* borrow_work(MemoryContext context) {
    auto* callback = static_cast<MemoryContextCallback*>(MemoryContextAllocZero(context, sizeof(MemoryContextCallback)));
    IngestWork* work = nullptr;
    guarded([&] {
        if (backend_work == nullptr) backend_work = new IngestWork();
        if (backend_work_busy) {
            work = new IngestWork();
        } else {
            work = backend_work;
            backend_work_busy = true;
        }
    });
    callback->func = &return_work;
    callback->arg = work;
    MemoryContextRegisterResetCallback(context, callback);
    return work;
}

// The user-agent parser, built once per backend (and again if cdp.uap_regexes_path changes).
struct UserAgents {
    std::string path;
    std::unique_ptr<UserAgentParser> parser;
    std::unique_ptr<CachedUserAgentParser> cache;
};
UserAgents* user_agents = nullptr;

CachedUserAgentParser* user_agent_parser() {
    const char* path = setting_uap_regexes_path != nullptr ? setting_uap_regexes_path : "";
    if (path[0] == '\0') return nullptr;
    CachedUserAgentParser* result = nullptr;
    guarded([&] {
        if (user_agents == nullptr) user_agents = new UserAgents();
        if (!user_agents->parser || user_agents->path != path) {
            user_agents->cache.reset();
            user_agents->parser.reset();
            user_agents->parser = std::make_unique<UserAgentParser>(path);
            user_agents->cache = std::make_unique<CachedUserAgentParser>(*user_agents->parser);
            user_agents->path = path;
        }
        result = user_agents->cache.get();
    });
    return result;
}

// ---- dedup ----------------------------------------------------------------------------------

// The general path: an upsert that claims each messageId unless it was seen within the window
// (past it, the claim renews), then keeps only the events whose claim succeeded.
void claim_message_ids_by_upsert(IngestWork* work, int32 workspace, TimestampTz received_at, Micros window) {
    static SPIPlanPtr plan = nullptr;
    const std::vector<Event>& events = work->batch.events;
    int n = static_cast<int>(events.size());
    Datum* hashes = datums(n);
    for (int i = 0; i < n; ++i) hashes[i] = uuid_datum(events[i].message_hash);
    Datum window_datum = (Datum)0;
    if (window >= 0) {
        auto* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
        iv->time = window;
        window_datum = IntervalPGetDatum(iv);
    }
    Oid types[] = {INT4OID, UUIDARRAYOID, TIMESTAMPTZOID, INTERVALOID};
    Datum args[] = {Int32GetDatum(workspace),
                    uuid_array(hashes, n),
                    TimestampTzGetDatum(received_at), window_datum};
    char nulls[] = {' ', ' ', ' ', window >= 0 ? ' ' : 'n'};
    spi_run_cached(&plan,
                   "INSERT INTO cdp_internal.message_ids AS d (workspace_id, message_hash, received_at)"
                   " SELECT $1, h, $3 FROM unnest($2) AS h ORDER BY h"  // lock order: see claim_message_ids
                   " ON CONFLICT (message_hash) DO UPDATE SET received_at = excluded.received_at"
                   "  WHERE d.received_at < excluded.received_at - $4"
                   " RETURNING message_hash",
                   4, types, args, nulls, false);
    // The claimed hashes, as plain bytes for the core.
    uint64 claimed = SPI_processed;
    auto* bytes = static_cast<unsigned char*>(palloc(claimed * UUID_LEN + 1));
    for (uint64 r = 0; r < claimed; ++r) {
        bool isnull;
        pg_uuid_t* h = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        memcpy(bytes + r * UUID_LEN, h->data, UUID_LEN);
    }
    guarded([&] {
        std::vector<Hash128> keys(claimed);
        for (uint64 r = 0; r < claimed; ++r) memcpy(keys[r].data(), bytes + r * UUID_LEN, UUID_LEN);
        work->batch.keep_claimed(keys);
    });
}

// The fast path, for the common batch that holds only new messageIds: a bulk insert of the
// claims inside a subtransaction. The primary key refuses a messageId that is already claimed
// (or being claimed by a concurrent transaction, once that commits); then the subtransaction
// is rolled back and the caller takes the general path. Returns whether all claims went in.
bool claim_new_message_ids(IngestWork* work, int32 workspace, TimestampTz received_at, Oid relid) {
    const std::vector<Hash128>& hashes = work->sorted_hashes;
    MemoryContext context = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(context);
    bool claimed = true;
    PG_TRY();
    {
        RowWriter* writer = row_writer_begin(relid);
        TupleDesc desc = row_writer_descriptor(writer);
        if (desc->natts != 3 || strcmp(NameStr(TupleDescAttr(desc, 1)->attname), "message_hash") != 0)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("cdp_internal.message_ids has an unexpected layout"),
                            errdetail("Expected (workspace_id, message_hash, received_at)."),
                            errhint("Run ALTER EXTENSION cdp UPDATE.")));
        Datum values[3];
        bool nulls[3] = {false, false, false};
        values[0] = Int32GetDatum(workspace);
        values[2] = TimestampTzGetDatum(received_at);
        for (const Hash128& h : hashes) {
            values[1] = uuid_datum(h);
            row_writer_add(writer, values, nulls);
        }
        row_writer_end(writer);
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(context);
        CurrentResourceOwner = owner;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        ErrorData* error = CopyErrorData();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(context);
        CurrentResourceOwner = owner;
        if (error->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) ReThrowError(error);
        FlushErrorState();
        FreeErrorData(error);
        claimed = false;
    }
    PG_END_TRY();
    return claimed;
}

// Claims the messageIds of the batch's events in cdp_internal.message_ids, keeping only the
// events whose claim succeeded: within cdp.dedup_window a stored messageId makes an event a
// duplicate. Claims go in hash order, so concurrent batches never deadlock on each other.
void claim_message_ids(IngestWork* work, int32 workspace, TimestampTz received_at, Micros window,
                       Oid message_ids_relid) {
    guarded([&] {
        work->sorted_hashes.clear();
        for (const Event& e : work->batch.events) work->sorted_hashes.push_back(e.message_hash);
        std::sort(work->sorted_hashes.begin(), work->sorted_hashes.end());
    });
    if (!claim_new_message_ids(work, workspace, received_at, message_ids_relid))
        claim_message_ids_by_upsert(work, workspace, received_at, window);
}

// ---- sessions -------------------------------------------------------------------------------

// The key of an actor's row in cdp_internal.session_state.
Hash128 actor_key(std::string_view actor, int32 workspace) {
    return hash128(actor, static_cast<std::uint32_t>(workspace));
}

void load_session_states(IngestWork* work, Oid session_state) {
    static SPIPlanPtr plan = nullptr;
    static BlockNumber planned_blocks = 0;
    int n = static_cast<int>(work->actors.size());
    Datum* keys = datums(n);
    for (int i = 0; i < n; ++i) keys[i] = uuid_datum(work->actors[i].key);
    Oid types[] = {UUIDARRAYOID};
    Datum args[] = {uuid_array(keys, n)};
    spi_run_cached_growing(&plan, &planned_blocks, session_state,
                   // One probe of the primary key per actor, locked in the order of $1. A lateral
                   // subquery with FOR UPDATE is not flattened into a join, so the planner cannot
                   // trade the probes for a scan of the whole table (and the plan is made again
                   // as the table grows: one made while it was small would scan it).
                   "SELECT s.actor, s.session_id, s.started_at, s.last_seen, s.campaign"
                   " FROM unnest($1) AS a(k) CROSS JOIN LATERAL ("
                   "  SELECT * FROM cdp_internal.session_state s WHERE s.actor_key = a.k FOR UPDATE) s",
                   1, types, args, nullptr, false);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        HeapTuple tup = SPI_tuptable->vals[r];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        text* actor = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
        pg_uuid_t* sid = DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull));
        TimestampTz started = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
        TimestampTz last = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
        text* campaign = DatumGetTextPP(SPI_getbinval(tup, desc, 5, &isnull));
        const char* actor_data = VARDATA_ANY(actor);
        size_t actor_len = VARSIZE_ANY_EXHDR(actor);
        const char* campaign_data = VARDATA_ANY(campaign);
        size_t campaign_len = VARSIZE_ANY_EXHDR(campaign);
        guarded([&] {
            SessionState& s = work->sessions[std::string(actor_data, actor_len)];
            memcpy(s.session_id.data(), sid->data, UUID_LEN);
            s.started_at = to_unix(started);
            s.last_seen = to_unix(last);
            s.campaign.assign(campaign_data, campaign_len);
        });
    }
}

void save_session_states(IngestWork* work, int32 workspace) {
    static SPIPlanPtr plan = nullptr;
    int n = static_cast<int>(work->changed_actors.size());
    if (n == 0) return;
    Datum *keys = datums(n), *actors = datums(n), *ids = datums(n), *started = datums(n), *last = datums(n),
          *campaigns = datums(n);
    for (int i = 0; i < n; ++i) {
        const ActorKey& actor = work->changed_actors[i];
        const SessionState& s = *actor.state;
        keys[i] = uuid_datum(actor.key);
        actors[i] = text_datum(actor.actor);
        ids[i] = uuid_datum(s.session_id);
        started[i] = TimestampTzGetDatum(to_postgres(s.started_at));
        last[i] = TimestampTzGetDatum(to_postgres(s.last_seen));
        campaigns[i] = text_datum(s.campaign);
    }
    Oid types[] = {INT4OID,      UUIDARRAYOID,        TEXTARRAYOID, UUIDARRAYOID,
                   TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
    Datum args[] = {Int32GetDatum(workspace),      uuid_array(keys, n),         text_array(actors, n),
                    uuid_array(ids, n),            timestamptz_array(started, n), timestamptz_array(last, n),
                    text_array(campaigns, n)};
    spi_run_cached(&plan,
                   "INSERT INTO cdp_internal.session_state AS s"
                   " (workspace_id, actor_key, actor, session_id, started_at, last_seen, campaign)"
                   " SELECT $1, k, a, sid, st, ls, c FROM unnest($2, $3, $4, $5, $6, $7) AS u(k, a, sid, st, ls, c)"
                   " ORDER BY k"  // the lock order of load_session_states
                   " ON CONFLICT (actor_key) DO UPDATE SET session_id = excluded.session_id,"
                   "  started_at = excluded.started_at, last_seen = excluded.last_seen, campaign = excluded.campaign",
                   7, types, args, nullptr, false);
}

// ---- partitions and rows --------------------------------------------------------------------

// Makes sure a partition of cdp.events exists for each month the batch has events in.
void ensure_partitions(IngestWork* work, Oid cdp_namespace) {
    static SPIPlanPtr plan = nullptr;
    for (Micros month : work->months) {
        int y;
        unsigned m, d;
        civil_from_days(month / kMicrosPerDay, y, m, d);
        char name[NAMEDATALEN];
        snprintf(name, sizeof name, "events_%04d_%02u", y, m);
        if (OidIsValid(get_relname_relid(name, cdp_namespace))) continue;
        Oid types[] = {TIMESTAMPTZOID};
        Datum args[] = {TimestampTzGetDatum(to_postgres(month))};
        spi_run_cached(&plan, "SELECT cdp_internal.ensure_events_partition($1)", 1, types, args, nullptr, false);
    }
}

// The columns of cdp.events that ingest fills, by name (their positions are looked up).
enum Column {
    kWorkspaceId, kEventId, kType, kEvent, kName, kAnonymousId, kUserId, kGroupId, kPreviousId, kTimestamp,
    kOriginalTimestamp, kSentAt, kReceivedAt, kSessionId, kPageUrl, kPagePath, kPageTitle, kReferrer,
    kReferrerHost, kReferrerMedium, kUtmSource, kUtmMedium, kUtmCampaign, kUtmTerm, kUtmContent, kDeviceType,
    kOs, kOsVersion, kBrowser, kBrowserVersion, kIp, kLocale, kProperties, kTraits, kContext, kExtra, kProfileId,
    kColumnCount
};
const char* const kColumnNames[kColumnCount] = {
    "workspace_id", "event_id", "type", "event", "name", "anonymous_id", "user_id", "group_id", "previous_id",
    "timestamp", "original_timestamp", "sent_at", "received_at", "session_id", "page_url", "page_path",
    "page_title", "referrer", "referrer_host", "referrer_medium", "utm_source", "utm_medium", "utm_campaign",
    "utm_term", "utm_content", "device_type", "os", "os_version", "browser", "browser_version", "ip", "locale",
    "properties", "traits", "context", "extra", "profile_id"};

void write_events(IngestWork* work, int32 workspace, Oid events_relid) {
    RowWriter* writer = row_writer_begin(events_relid);
    TupleDesc desc = row_writer_descriptor(writer);
    int position[kColumnCount];
    for (int c = 0; c < kColumnCount; ++c) {
        position[c] = -1;
        for (int a = 0; a < desc->natts; ++a) {
            Form_pg_attribute att = TupleDescAttr(desc, a);
            if (!att->attisdropped && strcmp(NameStr(att->attname), kColumnNames[c]) == 0) position[c] = a;
        }
        if (position[c] < 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("cdp.events has no column \"%s\"", kColumnNames[c]),
                            errdetail("The table does not match the installed version of the cdp extension."),
                            errhint("Run ALTER EXTENSION cdp UPDATE, or restore the column.")));
    }
    Datum* values = datums(desc->natts);
    bool* nulls = flags(desc->natts);
    char ip[64];
    MemoryContext row_context = AllocSetContextCreate(CurrentMemoryContext, "cdp ingest row", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(row_context);

    for (const Event& e : work->batch.events) {
        CHECK_FOR_INTERRUPTS();
        for (int a = 0; a < desc->natts; ++a) nulls[a] = true;
        auto set = [&](Column c, Datum d) {
            values[position[c]] = d;
            nulls[position[c]] = false;
        };
        auto set_text = [&](Column c, std::string_view s) {
            if (!s.empty()) set(c, text_datum(s));
        };
        auto set_json = [&](Column c, const rapidjson::Value* v) {
            if (v != nullptr) set(c, jsonb_from_json(*v));
        };
        set(kWorkspaceId, Int32GetDatum(workspace));
        set_text(kEventId, e.message_id);
        set(kType, CStringGetTextDatum(event_type_name(e.type)));
        set_text(kEvent, e.event);
        set_text(kName, e.name);
        set_text(kAnonymousId, e.anonymous_id);
        set_text(kUserId, e.user_id);
        set_text(kGroupId, e.group_id);
        set_text(kPreviousId, e.previous_id);
        set(kTimestamp, TimestampTzGetDatum(to_postgres(e.timestamp)));
        if (e.has_original_timestamp) set(kOriginalTimestamp, TimestampTzGetDatum(to_postgres(e.original_timestamp)));
        if (e.has_sent_at) set(kSentAt, TimestampTzGetDatum(to_postgres(e.sent_at)));
        set(kReceivedAt, TimestampTzGetDatum(to_postgres(e.received_at)));
        set(kSessionId, uuid_datum(e.session_id));
        set_text(kPageUrl, e.page_url);
        set_text(kPagePath, e.page_path);
        set_text(kPageTitle, e.page_title);
        set_text(kReferrer, e.referrer);
        set_text(kReferrerHost, e.referrer_host);
        set_text(kReferrerMedium, e.referrer_medium);
        set_text(kUtmSource, e.utm_source);
        set_text(kUtmMedium, e.utm_medium);
        set_text(kUtmCampaign, e.utm_campaign);
        set_text(kUtmTerm, e.utm_term);
        set_text(kUtmContent, e.utm_content);
        set_text(kDeviceType, e.device_type);
        set_text(kOs, e.os);
        set_text(kOsVersion, e.os_version);
        set_text(kBrowser, e.browser);
        set_text(kBrowserVersion, e.browser_version);
        if (!e.ip.empty() && e.ip.size() < sizeof ip) {  // an address as the core formats it
            memcpy(ip, e.ip.data(), e.ip.size());
            ip[e.ip.size()] = '\0';
            set(kIp, DirectFunctionCall1(inet_in, CStringGetDatum(ip)));
        }
        set_text(kLocale, e.locale);
        set_json(kProperties, e.properties);
        set_json(kTraits, e.traits);
        set_json(kContext, e.context);
        set_json(kExtra, e.extra);
        if (e.profile_id != 0) set(kProfileId, Int64GetDatum(e.profile_id));
        row_writer_add(writer, values, nulls);
        MemoryContextReset(row_context);
    }
    MemoryContextSwitchTo(old);
    MemoryContextDelete(row_context);
    row_writer_end(writer);
}

void write_rejections(IngestWork* work, int32 workspace, TimestampTz received_at) {
    static SPIPlanPtr plan = nullptr;
    const std::vector<Rejection>& rejections = work->batch.rejections;
    int n = static_cast<int>(rejections.size());
    if (n == 0) return;
    Datum *reasons = datums(n), *details = datums(n), *message_ids = datums(n), *indexes = datums(n), *raws = datums(n);
    bool *message_id_nulls = flags(n), *index_nulls = flags(n);
    for (int i = 0; i < n; ++i) {
        const Rejection& r = rejections[i];
        reasons[i] = CStringGetTextDatum(r.reason);
        details[i] = text_datum(r.detail);
        message_id_nulls[i] = r.message_id.empty();
        message_ids[i] = r.message_id.empty() ? (Datum)0 : text_datum(r.message_id);
        index_nulls[i] = r.whole_payload;
        indexes[i] = Int32GetDatum(static_cast<int32>(r.item_index));
        raws[i] = text_datum(r.raw);
    }
    int dims[] = {n};
    int lbs[] = {1};
    Oid types[] = {INT4OID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
    Datum args[] = {
        Int32GetDatum(workspace),
        TimestampTzGetDatum(received_at),
        text_array(reasons, n),
        text_array(details, n),
        PointerGetDatum(construct_md_array(message_ids, message_id_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT)),
        PointerGetDatum(construct_md_array(indexes, index_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT)),
        text_array(raws, n)};
    spi_run_cached(&plan,
                   "INSERT INTO cdp.rejected_events (workspace_id, received_at, reason, detail, message_id, item_index, raw)"
                   " SELECT $1, $2, r, d, m, i, w FROM unnest($3, $4, $5, $6, $7) AS u(r, d, m, i, w)",
                   7, types, args, nullptr, false);
}

// Checks that the workspace exists, so events never land under an id nobody created.
// What a batch must check in its workspace, learnt in one statement: whether the caller may write
// to it, and whether it has tombstones, consent policies or tracking plans at all (most have
// none, and then those checks cost nothing).
struct WorkspaceChecks {
    bool tombstones, consent_policies, tracking_plans;
};

WorkspaceChecks check_workspace(int32 workspace) {
    // The caller outside this SECURITY DEFINER function: it must reach the workspace.
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, OIDOID};
    Datum args[] = {Int32GetDatum(workspace), ObjectIdGetDatum(GetOuterUserId())};
    spi_run_cached(&plan,
                   "SELECT CASE WHEN NOT EXISTS (SELECT FROM cdp.workspace_grants) THEN true"
                   "            ELSE cdp_internal.may_use_workspace(w.workspace_id, $2) END,"
                   " EXISTS (SELECT FROM cdp.erasure_tombstones t WHERE t.workspace_id = $1),"
                   " EXISTS (SELECT FROM cdp.consent_policies p WHERE p.workspace_id = $1),"
                   " EXISTS (SELECT FROM cdp.tracking_plans p WHERE p.workspace_id = $1)"
                   "  OR EXISTS (SELECT FROM cdp.tracking_settings s WHERE s.workspace_id = $1)"
                   " FROM cdp.workspaces w WHERE w.workspace_id = $1",
                   2, types, args, nullptr, true);
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("workspace %d does not exist", workspace),
                        errdetail("cdp.ingest was called with workspace_id => %d.", workspace),
                        errhint("Create it with cdp.create_workspace(name), or omit workspace_id for the default.")));
    bool isnull;
    auto flag = [&](int column) { return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull)); };
    if (!flag(1))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("role \"%s\" may not ingest into this workspace", GetUserNameFromId(GetOuterUserId(), false)),
                        errdetail("cdp.workspace_grants grants workspace %d to other roles only.", workspace),
                        errhint("An admin can grant it: INSERT INTO cdp.workspace_grants VALUES ('<role>', %d).", workspace)));
    return {flag(2), flag(3), flag(4)};
}

// The whole ingest of one payload; returns the summary row.
Datum ingest(FunctionCallInfo fcinfo, const char* data, size_t len) {
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("workspace_id must not be null"),
                        errdetail("cdp.ingest was called with workspace_id => NULL."),
                        errhint("Omit the argument to use the default workspace (1).")));
    int32 workspace = PG_GETARG_INT32(1);
    TimestampTz received_at = PG_ARGISNULL(2) ? GetCurrentTimestamp() : PG_GETARG_TIMESTAMPTZ(2);
    if (TIMESTAMP_NOT_FINITE(received_at))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("received_at must be finite"),
                        errdetail("cdp.ingest was called with received_at => %s.",
                                  timestamptz_to_str(received_at)),
                        errhint("Pass the time the events reached you, or NULL for now.")));

    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cdp.ingest must return a record"),
                        errdetail("The function's declared result type is not composite."),
                        errhint("Reinstall the extension.")));
    Micros window = dedup_window();
    Micros timeout = session_timeout();
    CachedUserAgentParser* uap = user_agent_parser();

    MemoryContext caller_context = CurrentMemoryContext;
    MemoryContext batch_context = AllocSetContextCreate(caller_context, "cdp ingest", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(batch_context);
    IngestWork* work = borrow_work(batch_context);
    work->payload_bytes = len;
    const char* internal_domains = setting_internal_domains != nullptr ? setting_internal_domains : "";
    IpPolicy ip = ip_policy();
    int max_batch = setting_max_batch_bytes;
    bool utf8 = GetDatabaseEncoding() == PG_UTF8;  // then text input was verified on the way in

    guarded([&] {
        work->options.received_at = to_unix(received_at);
        work->options.ip_policy = ip;
        work->options.internal_domains = split_domain_list(internal_domains);
        work->options.user_agents = uap;
        work->options.input_is_utf8 = utf8;
        work->options.dedup_scope = static_cast<std::uint32_t>(workspace);
        work->options.limits.max_batch_bytes = static_cast<size_t>(max_batch);
        work->batch.parse(std::string_view(data, len), work->options);
    });

    Oid cdp_namespace = get_namespace_oid("cdp", false);
    Oid events_relid = get_relname_relid("events", cdp_namespace);
    if (!OidIsValid(events_relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table cdp.events does not exist"),
                        errdetail("The cdp extension's events table was dropped."),
                        errhint("Recreate the extension: DROP EXTENSION cdp; CREATE EXTENSION cdp;")));

    spi_connect();
    WorkspaceChecks checks = check_workspace(workspace);
    if (checks.tombstones) suppress_erased(work->batch, workspace, batch_context);  // before anything is claimed
    if (checks.consent_policies) apply_consent_policies(work->batch, workspace, batch_context);
    auto* flagged = make_context_owned<FlaggedEvents>(batch_context)->object;
    if (checks.tracking_plans) check_tracking_plans(work->batch, workspace, batch_context, flagged);
    size_t duplicates = work->batch.duplicates_in_payload;
    if (!work->batch.events.empty()) {
        size_t before = work->batch.events.size();
        claim_message_ids(work, workspace, received_at, window,
                          table_oid("cdp_internal", "message_ids"));
        guarded([&] {
            for (const Event& e : work->batch.events)
                work->actors.push_back({actor_key(e.session_actor, workspace), e.session_actor});
            std::sort(work->actors.begin(), work->actors.end());
            work->actors.erase(std::unique(work->actors.begin(), work->actors.end()), work->actors.end());
        });
        duplicates += before - work->batch.events.size();
    }
    if (!work->batch.events.empty()) {
        load_session_states(work, table_oid("cdp_internal", "session_state"));
        guarded([&] {
            assign_sessions(work->batch.events, work->sessions, timeout, workspace);
            for (const auto& [actor, state] : work->sessions)
                if (state.changed) work->changed_actors.push_back({actor_key(actor, workspace), actor, &state});
            std::sort(work->changed_actors.begin(), work->changed_actors.end());
            for (const Event& e : work->batch.events) work->months.push_back(month_start(e.timestamp));
            std::sort(work->months.begin(), work->months.end());
            work->months.erase(std::unique(work->months.begin(), work->months.end()), work->months.end());
        });
        save_session_states(work, workspace);
        if (setting_stitch_identities) {
            lock_identity(workspace);
            IdentityRules* rules = load_identity_rules(workspace, batch_context);
            stitch_events(work->batch.events, workspace, *rules, &work->moved_profiles);
            if (setting_update_profiles) {
                auto* written = make_context_owned<std::vector<int64>>(batch_context)->object;
                update_profile_records(work->batch.events, work->moved_profiles, workspace, to_unix(received_at),
                                       batch_context, written);
                segments_after_batch(workspace, work->batch.events, work->moved_profiles, received_at);
                evaluate_segments(workspace, *written, received_at, "ingest");
            }
        }
        ensure_partitions(work, cdp_namespace);
        write_events(work, workspace, events_relid);
        record_flagged(work->batch, *flagged, workspace, received_at);
    }
    write_rejections(work, workspace, received_at);
    spi_finish();

    Datum result_values[3] = {Int32GetDatum(static_cast<int32>(work->batch.events.size())),
                              Int32GetDatum(static_cast<int32>(duplicates)),
                              Int32GetDatum(static_cast<int32>(work->batch.rejections.size()))};
    bool result_nulls[3] = {false, false, false};
    MemoryContextSwitchTo(caller_context);
    HeapTuple tuple = heap_form_tuple(BlessTupleDesc(result_desc), result_values, result_nulls);
    MemoryContextDelete(batch_context);  // gives the work back
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

void reject_null_payload(FunctionCallInfo fcinfo) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("payload must not be null"),
                        errdetail("cdp.ingest was called with a NULL payload."),
                        errhint("Pass one event, an array of events, or a {\"batch\": [...]} envelope.")));
}

}  // namespace

}  // namespace cdp::pg

Datum cdp_ingest_text(PG_FUNCTION_ARGS) {
    cdp::pg::reject_null_payload(fcinfo);
    text* payload = PG_GETARG_TEXT_PP(0);
    return cdp::pg::ingest(fcinfo, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload));
}

// Callers holding jsonb: serialised once to text and parsed by the same core parser.
Datum cdp_ingest_jsonb(PG_FUNCTION_ARGS) {
    cdp::pg::reject_null_payload(fcinfo);
    Jsonb* payload = PG_GETARG_JSONB_P(0);
    char* text = JsonbToCString(nullptr, &payload->root, VARSIZE(payload));
    return cdp::pg::ingest(fcinfo, text, strlen(text));
}
