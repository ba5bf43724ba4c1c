// Builds jsonb straight from a parsed RapidJSON tree, without a text round trip through jsonb_in.
#pragma once

#include "cdp/core/json.hpp"

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// A jsonb Datum (palloc'd in CurrentMemoryContext) equal to the value. May ereport (out of memory).
Datum jsonb_from_json(const rapidjson::Value& value);

}  // namespace cdp::pg
