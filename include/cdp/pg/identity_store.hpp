// Identity state in PostgreSQL: loads the rules and the components a batch touches, runs the
// core's identity graph, writes back only what changed. Callers hold an SPI connection.
#pragma once

#include <utility>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/core/identity.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// Takes the workspace's identity lock until the transaction ends. Every writer of the identity
// tables takes it first, so merges never race (nor deadlock) and nothing is lost.
void lock_identity(int32 workspace);

// The workspace's rules: the built-in blocklist plus cdp.identity_rules and
// cdp.identity_blocklist. Returns a context-owned object (freed with the context).
IdentityRules* load_identity_rules(int32 workspace, MemoryContext owner);

// Links the identifiers of the events into profiles and sets each event's profile_id. When
// `moved` is given, it receives each existing profile the batch merged into another, as
// (absorbed, survivor).
void stitch_events(std::vector<Event>& events, int32 workspace, const IdentityRules& rules,
                   std::vector<std::pair<int64, int64>>* moved = nullptr);

// Selects the merged edges inside a profile into SPI_tuptable: a_type, a_value, b_type, b_value,
// source, event_id, first_seen, oldest first.
void select_profile_edges(int32 workspace, int64 profile_id);

// One part of a profile after a split: its profile id and how many identifiers it holds.
struct ProfilePart {
    int64 profile_id;
    int identifiers;
};

// Recomputes a profile from its merged edges after some were cut: when it falls apart, the
// largest part (then the one holding the oldest identifier) keeps the id and the others get new
// ones. The split is recorded with `cause` and the cut edge. Returns the parts (palloc'd).
ProfilePart* split_profile(int32 workspace, int64 profile_id, const Identifier& a, const Identifier& b,
                           const char* cause, int* nparts);

}  // namespace cdp::pg
