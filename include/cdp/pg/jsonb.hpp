// Builds jsonb straight in its binary form (from a parsed RapidJSON tree, or an object's members),
// without a text round trip through jsonb_in.
#pragma once

#include <string_view>

#include "cdp/core/json.hpp"

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// A jsonb Datum (palloc'd in CurrentMemoryContext) equal to the value. May ereport (out of memory).
Datum jsonb_from_json(const rapidjson::Value& value);

// A jsonb object (palloc'd) written straight in jsonb's binary form: its keys (raw bytes) in
// jsonb's order (shorter first, then bytewise), each once, an internal error otherwise; its values
// scalars (jbvNull, jbvBool, jbvString, jbvNumeric) or containers (jbvBinary), copied as they are.
Datum jsonb_object_of(const std::string_view* keys, const JsonbValue* values, int n);

}  // namespace cdp::pg
