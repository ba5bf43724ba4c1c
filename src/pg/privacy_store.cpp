#include "cdp/pg/privacy_store.hpp"

#include <set>
#include <vector>

#include "cdp/core/identity.hpp"
#include "cdp/core/tracking_plan.hpp"
#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/identity_store.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

extern "C" {
#include "common/hmac.h"
}

namespace cdp::pg {

uint8* hmac_sha256(const uint8* key, size_t key_len, const char* data, size_t len) {
    auto* out = static_cast<uint8*>(palloc(32));
    pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
    if (ctx == nullptr || pg_hmac_init(ctx, key, key_len) < 0 ||
        pg_hmac_update(ctx, reinterpret_cast<const uint8*>(data), len) < 0 || pg_hmac_final(ctx, out, 32) < 0) {
        const char* why = ctx != nullptr ? pg_hmac_error(ctx) : "out of memory";
        if (ctx != nullptr) pg_hmac_free(ctx);
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not compute HMAC-SHA256: %s", why),
                        errdetail("Keyed hashes protect the identifiers of erased people."),
                        errhint("Check the server's cryptographic library.")));
    }
    pg_hmac_free(ctx);
    return out;
}

namespace {

struct Suppression {
    std::vector<std::pair<size_t, std::string>> keys;  // (event index, "type:value")
    std::set<std::string> erased;                      // keyed hashes that are tombstones
    std::vector<Event> kept;
};

}  // namespace

void suppress_erased(IngestBatch& batch, int32 workspace, MemoryContext context) {
    if (batch.events.empty()) return;
    static SPIPlanPtr secret_plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&secret_plan,
                   "SELECT s.secret FROM cdp_internal.secrets s WHERE s.workspace_id = $1"
                   " AND EXISTS (SELECT FROM cdp.erasure_tombstones t WHERE t.workspace_id = $1)",
                   1, types, args, nullptr, true);
    if (SPI_processed == 0) return;  // no tombstones (or no secret to make any with)
    bool isnull;
    bytea* secret = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

    IdentityRules* rules = load_identity_rules(workspace, context);
    const char* country = setting_phone_country != nullptr ? setting_phone_country : "";
    Suppression* s = make_context_owned<Suppression>(context)->object;
    guarded([&] {
        for (size_t i = 0; i < batch.events.size(); ++i)
            for (Identifier& id : event_identifiers(batch.events[i], *rules, country))
                s->keys.emplace_back(i, id.type + ":" + id.value);
    });
    int n = static_cast<int>(s->keys.size());
    if (n == 0) return;
    Datum* hashes = datums(n);
    for (int k = 0; k < n; ++k) {
        const std::string& key = s->keys[static_cast<size_t>(k)].second;
        uint8* h = hmac_sha256(reinterpret_cast<uint8*>(VARDATA_ANY(secret)), VARSIZE_ANY_EXHDR(secret), key.data(),
                               key.size());
        auto* b = static_cast<bytea*>(palloc(VARHDRSZ + 32));
        SET_VARSIZE(b, VARHDRSZ + 32);
        memcpy(VARDATA(b), h, 32);
        hashes[k] = PointerGetDatum(b);
    }
    static SPIPlanPtr plan = nullptr;
    Oid match_types[] = {INT4OID, BYTEAARRAYOID};
    Datum match_args[] = {Int32GetDatum(workspace), bytea_array(hashes, n)};
    spi_run_cached(&plan,
                   "SELECT t.keyed_hash FROM cdp.erasure_tombstones t"
                   " WHERE t.workspace_id = $1 AND t.keyed_hash = ANY ($2)",
                   2, match_types, match_args, nullptr, true);
    if (SPI_processed == 0) return;
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bytea* h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        std::string_view hash(VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h));
        guarded([&] { s->erased.emplace(hash); });
    }
    guarded([&] {
        std::set<size_t> out;
        for (int k = 0; k < n; ++k) {
            bytea* b = reinterpret_cast<bytea*>(DatumGetPointer(hashes[k]));
            if (s->erased.count(std::string(VARDATA(b), 32)) != 0) out.insert(s->keys[static_cast<size_t>(k)].first);
        }
        for (size_t i = 0; i < batch.events.size(); ++i) {
            if (out.count(i) == 0) {
                s->kept.push_back(batch.events[i]);
                continue;
            }
            Rejection r;
            r.item_index = batch.events[i].item_index;
            r.reason = reason::kSuppressed;
            r.detail = "an identifier of this event belongs to an erased person (cdp.erasure_tombstones); the payload is not kept";
            batch.rejections.push_back(std::move(r));
        }
        batch.events.swap(s->kept);
    });
}

namespace {

struct PlanCheck {
    TrackingPlan plan;
    std::map<std::string, std::string, std::less<>> modes;  // event -> allow | flag | block
    std::string unplanned = "allow";
    std::vector<Event> kept;
};

}  // namespace

void check_tracking_plans(IngestBatch& batch, int32 workspace, MemoryContext context, FlaggedEvents* flagged) {
    if (batch.events.empty()) return;
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&plan,
                   "SELECT NULL::text, NULL::text, s.unplanned, s.naming FROM cdp.tracking_settings s WHERE s.workspace_id = $1"
                   " UNION ALL SELECT p.event, p.schema::text, p.mode, NULL FROM cdp.tracking_plans p WHERE p.workspace_id = $1",
                   1, types, args, nullptr, true);
    if (SPI_processed == 0) return;
    PlanCheck* c = make_context_owned<PlanCheck>(context)->object;
    for (uint64 r = 0; r < SPI_processed; ++r) {
        char* event = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        char* schema = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
        char* mode = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3);
        char* naming = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 4);
        guarded([&] {
            if (event == nullptr) {
                c->unplanned = mode != nullptr ? mode : "allow";
                std::string_view n = naming != nullptr ? naming : "";
                c->plan.set_naming(n == "snake_case"   ? NamingConvention::SnakeCase
                                   : n == "title_case" ? NamingConvention::TitleCaseObjectAction
                                                       : NamingConvention::None);
            } else {
                c->plan.add_event(event, schema);
                c->modes[event] = mode;
            }
        });
    }
    guarded([&] {
        c->plan.set_unplanned_is_violation(c->unplanned != "allow");
        for (Event& e : batch.events) {
            std::vector<Violation> v = c->plan.check(e);
            std::string_view name = event_name_of(e);
            auto m = c->modes.find(name);
            const std::string& mode = m != c->modes.end() ? m->second : c->unplanned;
            if (v.empty() || mode == "allow") {
                c->kept.push_back(e);
            } else if (mode == "flag") {
                flagged->by_item[e.item_index] = violations_json(v);
                c->kept.push_back(e);
            } else {
                Rejection r;
                r.item_index = e.item_index;
                r.reason = reason::kSchemaViolation;
                r.detail = violations_json(v);
                r.raw = std::string(e.raw);
                r.message_id = std::string(e.message_id);
                batch.rejections.push_back(std::move(r));
            }
        }
        batch.events.swap(c->kept);
    });
}

void record_flagged(const IngestBatch& batch, const FlaggedEvents& flagged, int32 workspace, TimestampTz received_at) {
    if (flagged.by_item.empty()) return;
    int n = 0;
    Datum* ids = datums(static_cast<int>(flagged.by_item.size()));
    Datum* names = datums(static_cast<int>(flagged.by_item.size()));
    Datum* violations = datums(static_cast<int>(flagged.by_item.size()));
    for (const Event& e : batch.events) {
        auto it = flagged.by_item.find(e.item_index);
        if (it == flagged.by_item.end()) continue;
        std::string_view name = event_name_of(e);
        ids[n] = text_datum(e.message_id);
        names[n] = text_datum(name);
        violations[n] = text_datum(it->second);
        ++n;
    }
    if (n == 0) return;
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
    Datum args[] = {Int32GetDatum(workspace), text_array(ids, n), text_array(names, n), text_array(violations, n),
                    TimestampTzGetDatum(received_at)};
    spi_run_cached(&plan,
                   "INSERT INTO cdp.tracking_violations (workspace_id, event_id, event, received_at, violations)"
                   " SELECT $1, u.id, nullif(u.name, ''), $5, u.v::jsonb FROM unnest($2::text[], $3::text[], $4::text[]) AS u(id, name, v)"
                   " ON CONFLICT (workspace_id, event_id) DO UPDATE SET violations = excluded.violations,"
                   "  received_at = excluded.received_at",
                   5, types, args, nullptr, false);
}

namespace {

// Whether the event's own consent object grants the purpose.
bool grants(const Event& e, std::string_view purpose) {
    if (e.context == nullptr || !e.context->IsObject()) return false;
    auto consent = e.context->FindMember("consent");
    if (consent == e.context->MemberEnd() || !consent->value.IsObject()) return false;
    auto prefs = consent->value.FindMember("categoryPreferences");
    if (prefs == consent->value.MemberEnd() || !prefs->value.IsObject()) return false;
    auto it = prefs->value.FindMember(rapidjson::Value(rapidjson::StringRef(purpose.data(), purpose.size())));
    return it != prefs->value.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

struct ConsentPolicies {
    std::vector<std::pair<std::string, bool>> purposes;  // (purpose, drop: else strip)
    std::vector<Event> kept;
};

}  // namespace

void apply_consent_policies(IngestBatch& batch, int32 workspace, MemoryContext context) {
    if (batch.events.empty()) return;
    static SPIPlanPtr plan = nullptr;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    spi_run_cached(&plan, "SELECT purpose, at_ingest = 'drop' FROM cdp.consent_policies WHERE workspace_id = $1",
                   1, types, args, nullptr, true);
    if (SPI_processed == 0) return;
    ConsentPolicies* p = make_context_owned<ConsentPolicies>(context)->object;
    for (uint64 r = 0; r < SPI_processed; ++r) {
        char* purpose = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        bool isnull;
        bool drop = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
        guarded([&] { p->purposes.emplace_back(purpose, drop); });
    }
    guarded([&] {
        for (Event& e : batch.events) {
            bool drop = false, strip = false;
            std::string missing;
            for (const auto& [purpose, drops] : p->purposes)
                if (!grants(e, purpose)) {
                    (drops ? drop : strip) = true;
                    if (missing.empty()) missing = purpose;
                }
            if (drop) {
                Rejection r;
                r.item_index = e.item_index;
                r.reason = reason::kNoConsent;
                r.detail = "the event does not grant " + missing + " consent (cdp.consent_policies); the payload is not kept";
                batch.rejections.push_back(std::move(r));
                continue;
            }
            if (strip) {
                // It still counts (page, event, campaign, device type) but identifies no one.
                std::string anonymous = "stripped:";
                static const char* kHex = "0123456789abcdef";
                for (unsigned char b : e.message_hash) {
                    anonymous += kHex[b >> 4];
                    anonymous += kHex[b & 15];
                }
                e.anonymous_id = batch.keep(anonymous);
                e.user_id = {};
                e.previous_id = {};
                e.ip = {};
                e.traits = nullptr;
                e.context = nullptr;
                e.extra = nullptr;
                e.session_actor = batch.keep("a:", e.anonymous_id);
            }
            p->kept.push_back(e);
        }
        batch.events.swap(p->kept);
    });
}

}  // namespace cdp::pg
