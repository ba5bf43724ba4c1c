// Privacy in PostgreSQL: keyed hashes (HMAC-SHA256 with the workspace's secret) and the
// suppression of events that carry an erased person's identifier.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "cdp/core/ingest.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// HMAC-SHA256 of data under key: 32 bytes (palloc'd). An error if the hash cannot be made.
uint8* hmac_sha256(const uint8* key, size_t key_len, const char* data, size_t len);

// Takes out of the batch every event carrying an identifier whose keyed hash is a tombstone of
// the workspace (cdp.erasure_tombstones), as a rejection `suppressed` without its payload.
// Cheap when the workspace has none. The caller holds an SPI connection.
void suppress_erased(IngestBatch& batch, int32 workspace, MemoryContext context);

// Applies the workspace's consent policies (cdp.consent_policies) to the batch: an event whose
// context.consent.categoryPreferences does not grant a required purpose is dropped (rejection
// `no_consent`, payload not kept) or stripped of what identifies a person.
void apply_consent_policies(IngestBatch& batch, int32 workspace, MemoryContext context);

// Events flagged by a tracking plan: item index -> the violations as JSON.
struct FlaggedEvents {
    std::map<size_t, std::string> by_item;
};

// Checks the batch's events against the workspace's tracking plans (cdp.tracking_plans and
// cdp.tracking_settings): blocked events become rejections `schema_violation`; flagged ones
// stay and are listed in `flagged`. Cheap when the workspace has no plan.
void check_tracking_plans(IngestBatch& batch, int32 workspace, MemoryContext context, FlaggedEvents* flagged);

// Records the violations of the flagged events that landed (after dedup) in cdp.tracking_violations.
void record_flagged(const IngestBatch& batch, const FlaggedEvents& flagged, int32 workspace, TimestampTz received_at);

}  // namespace cdp::pg
