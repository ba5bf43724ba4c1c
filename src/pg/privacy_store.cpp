#include "cdp/pg/privacy_store.hpp"

#include <set>
#include <vector>

#include "cdp/core/identity.hpp"
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

}  // namespace cdp::pg
