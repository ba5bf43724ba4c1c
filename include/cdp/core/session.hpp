// Sessionization: one visit per actor (anonymous id, else user id), cut after a gap of
// inactivity or when a new campaign arrives.
#pragma once
#include "cdp/core/pure.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cdp/core/event.hpp"

namespace cdp {

// The open session of one actor, as stored between batches.
struct SessionState {
    Hash128 session_id{};
    Micros started_at = 0;
    Micros last_seen = 0;
    std::string campaign;  // "source/medium/name" of the campaign that opened it ("" if none)
    bool changed = false;  // set when a batch moved it on
};

// The campaign key of an event ("" when it carries no UTM parameters).
std::string campaign_key(const Event& e);

// A session id: a stable hash of workspace, actor and session start.
Hash128 make_session_id(std::int32_t workspace, std::string_view actor, Micros started_at);

// Assigns session_id to every event, in timestamp order per actor, continuing each actor's
// state (absent actors start fresh) and leaving each touched state marked changed. A new
// session starts after `timeout` without events or when an event brings a campaign other
// than the session's. An event older than the open session's start minus the timeout (a very
// late arrival) gets a session of its own, keyed by its time bucket, and leaves the state alone.
void assign_sessions(std::vector<Event>& events, std::unordered_map<std::string, SessionState>& states,
                     Micros timeout, std::int32_t workspace);

}  // namespace cdp
