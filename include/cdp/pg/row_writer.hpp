// Bulk insert into a (partitioned) table the way COPY FROM does it: tuple routing to the leaf
// partition, the table AM's multi-insert with a bulk-insert state, then index insertion.
// Plain PostgreSQL code: no C++ objects, everything palloc'd in the current memory context.
#pragma once

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

struct RowWriter;

// Opens the table (RowExclusiveLock) after checking the caller's INSERT privilege. Tables with
// row triggers are refused: rows written here would bypass them.
RowWriter* row_writer_begin(Oid relid);

// The root table's tuple descriptor, to fill values in.
TupleDesc row_writer_descriptor(RowWriter* w);

// Adds one row given in the root table's column order; flushes by itself when a buffer fills.
void row_writer_add(RowWriter* w, Datum* values, bool* nulls);

// Flushes what is buffered and closes everything.
void row_writer_end(RowWriter* w);

}  // namespace cdp::pg
