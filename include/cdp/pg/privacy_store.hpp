// Privacy in PostgreSQL: keyed hashes (HMAC-SHA256 with the workspace's secret) and the
// suppression of events that carry an erased person's identifier.
#pragma once

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

}  // namespace cdp::pg
