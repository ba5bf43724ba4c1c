#include "cdp/core/session.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace cdp {

std::string campaign_key(const Event& e) {
    if (e.utm_source.empty() && e.utm_medium.empty() && e.utm_campaign.empty()) return {};
    std::string key;
    key.reserve(e.utm_source.size() + e.utm_medium.size() + e.utm_campaign.size() + 2);
    key.append(e.utm_source).append("/").append(e.utm_medium).append("/").append(e.utm_campaign);
    return key;
}

Hash128 make_session_id(std::int32_t workspace, std::string_view actor, Micros started_at) {
    std::string key;
    key.reserve(actor.size() + 12);
    key.append(reinterpret_cast<const char*>(&workspace), sizeof workspace);
    key.append(reinterpret_cast<const char*>(&started_at), sizeof started_at);
    key.append(actor);
    Hash128 h = hash128(key, 0x5e55);
    // Shape it as an RFC 4122 version-4-style UUID so that tools recognise it.
    h[6] = static_cast<unsigned char>((h[6] & 0x0F) | 0x40);
    h[8] = static_cast<unsigned char>((h[8] & 0x3F) | 0x80);
    return h;
}

void assign_sessions(std::vector<Event>& events, std::unordered_map<std::string, SessionState>& states,
                     Micros timeout, std::int32_t workspace) {
    std::vector<size_t> order(events.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        int c = events[a].session_actor.compare(events[b].session_actor);
        if (c != 0) return c < 0;
        return events[a].timestamp < events[b].timestamp;
    });
    SessionState* state = nullptr;
    std::string_view current_actor;
    for (size_t idx : order) {
        Event& e = events[idx];
        std::string_view actor = e.session_actor;
        if (state == nullptr || actor != current_actor) {
            auto [it, inserted] = states.try_emplace(std::string(actor));
            state = &it->second;
            current_actor = it->first;
            if (inserted) state->started_at = state->last_seen = INT64_MIN;
        }
        std::string campaign = campaign_key(e);
        bool fresh = state->last_seen == INT64_MIN;
        if (!fresh && e.timestamp < state->started_at - timeout) {
            // Far older than the open session: a visit of its own, not continued later.
            Micros bucket = e.timestamp - ((e.timestamp % timeout) + timeout) % timeout;
            e.session_id = make_session_id(workspace, actor, bucket);
            continue;
        }
        bool new_session = fresh || e.timestamp - state->last_seen > timeout ||
                           (!campaign.empty() && campaign != state->campaign && e.timestamp >= state->last_seen);
        if (new_session) {
            state->session_id = make_session_id(workspace, actor, e.timestamp);
            state->started_at = e.timestamp;
            state->last_seen = e.timestamp;
            state->campaign = campaign;
        } else {
            state->started_at = std::min(state->started_at, e.timestamp);
            state->last_seen = std::max(state->last_seen, e.timestamp);
        }
        state->changed = true;
        e.session_id = state->session_id;
    }
}

}  // namespace cdp
