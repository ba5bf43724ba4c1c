// Profile records kept by ingest (cdp_internal.profile_state): per profile the merge state of
// the traits its events carried, and when it was first and last seen. Callers hold an SPI
// connection and the workspace's identity lock.
#pragma once

#include <string_view>
#include <utility>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// Folds a stitched batch into the records of its profiles: identify and group traits and
// context.traits by the rules of cdp.trait_rules, first and last seen; the records of the
// profiles the batch merged (`moved`: absorbed, survivor) go into their survivors'; computed
// traits (cdp.computed_traits) count the events, windows as of `now` (the batch's receipt).
// Rows of a registered table (cdp.sources) come as identify events with `from` set: their traits
// carry that source's name and priority, and they are not events to count.
struct RecordSource {
    std::string_view name;
    int priority;
};
// `written` receives the profiles whose records were written (the batch's, merges' survivors).
void update_profile_records(const std::vector<Event>& events, const std::vector<std::pair<int64, int64>>& moved,
                            int32 workspace, Micros now, MemoryContext context, std::vector<int64>* written,
                            const RecordSource* from = nullptr);

// Rebuilds the records of the given profiles from their events (after a split), and moves their
// realtime segments (`cause` goes to the feed).
void recompute_profile_records(int32 workspace, const int64* profiles, int n, const char* cause);

}  // namespace cdp::pg
