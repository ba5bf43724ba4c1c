// Segments in PostgreSQL: moving realtime segments to the present for some profiles, and
// running behavioural triggers over a batch's events, writing only the changes to the feed
// (cdp.segment_changes). Callers hold an SPI connection and the workspace's identity lock.
#pragma once

#include <utility>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// Evaluates the workspace's realtime segments for the profiles at time `at`; returns how many
// changes it wrote.
uint64 evaluate_segments(int32 workspace, const std::vector<int64>& profiles, TimestampTz at, const char* cause);

// After a batch: profiles merged into others leave their segments and hand their open trigger
// occurrences to their survivors; the batch's events start, cancel and fire triggers.
void segments_after_batch(int32 workspace, const std::vector<Event>& events,
                          const std::vector<std::pair<int64, int64>>& moved, TimestampTz at);

}  // namespace cdp::pg
