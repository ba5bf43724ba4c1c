#include "cdp/core/session.hpp"

#include <gtest/gtest.h>

#include <deque>

using namespace cdp;

namespace {
// Events view their text; here it is kept for the whole test run.
void set_session_actor(Event& e) {
    static std::deque<std::string> actors;
    e.session_actor = actors.emplace_back(session_actor_of(e));
}

Event at(const char* anon, Micros minutes, const char* utm_campaign = "") {
    Event e;
    e.anonymous_id = anon;
    e.timestamp = 1'700'000'000'000'000LL + minutes * kMicrosPerMinute;
    e.utm_campaign = utm_campaign;
    set_session_actor(e);
    return e;
}
constexpr Micros kTimeout = 30 * kMicrosPerMinute;
}  // namespace

TEST(Sessions, GapOfMoreThanTimeoutStartsANewSession) {
    std::vector<Event> ev = {at("a", 0), at("a", 10), at("a", 40), at("a", 71)};
    std::unordered_map<std::string, SessionState> states;
    assign_sessions(ev, states, kTimeout, 1);
    EXPECT_EQ(ev[0].session_id, ev[1].session_id);
    EXPECT_EQ(ev[1].session_id, ev[2].session_id);  // 30 minutes exactly is still the same visit
    EXPECT_NE(ev[2].session_id, ev[3].session_id);
    EXPECT_TRUE(states["a:a"].changed);
    EXPECT_EQ(states["a:a"].session_id, ev[3].session_id);
}

TEST(Sessions, OrderInTheBatchDoesNotMatterOnlyEventTime) {
    std::vector<Event> ev = {at("a", 50), at("a", 0), at("a", 20)};
    std::unordered_map<std::string, SessionState> states;
    assign_sessions(ev, states, kTimeout, 1);
    EXPECT_EQ(ev[0].session_id, ev[1].session_id);
    EXPECT_EQ(ev[1].session_id, ev[2].session_id);
}

TEST(Sessions, ActorsAreIndependentAndUserIdStandsInForAnonymous) {
    Event u = at("", 5);
    u.user_id = "u1";
    set_session_actor(u);
    EXPECT_EQ(u.session_actor, "u:u1");
    EXPECT_EQ(at("d-7", 0).session_actor, "a:d-7");  // the anonymous id wins when both are known
    Event both = at("d-8", 0);
    both.user_id = "u8";
    EXPECT_EQ(session_actor_of(both), "a:d-8");
    std::vector<Event> ev = {at("a", 0), at("b", 1), u};
    std::unordered_map<std::string, SessionState> states;
    assign_sessions(ev, states, kTimeout, 1);
    EXPECT_NE(ev[0].session_id, ev[1].session_id);
    EXPECT_EQ(states.count("u:u1"), 1u);
}

TEST(Sessions, NewCampaignStartsANewSession) {
    std::vector<Event> ev = {at("a", 0, "spring"), at("a", 5), at("a", 6, "spring"), at("a", 7, "summer")};
    std::unordered_map<std::string, SessionState> states;
    assign_sessions(ev, states, kTimeout, 1);
    EXPECT_EQ(ev[0].session_id, ev[1].session_id);  // no UTM: the visit goes on
    EXPECT_EQ(ev[1].session_id, ev[2].session_id);  // same campaign again
    EXPECT_NE(ev[2].session_id, ev[3].session_id);
}

TEST(Sessions, ContinuesStateAcrossBatches) {
    std::unordered_map<std::string, SessionState> states;
    std::vector<Event> first = {at("a", 0)};
    assign_sessions(first, states, kTimeout, 1);
    states["a:a"].changed = false;
    std::vector<Event> second = {at("a", 20)};
    assign_sessions(second, states, kTimeout, 1);
    EXPECT_EQ(first[0].session_id, second[0].session_id);
    std::vector<Event> third = {at("a", 200)};
    assign_sessions(third, states, kTimeout, 1);
    EXPECT_NE(second[0].session_id, third[0].session_id);
}

TEST(Sessions, VeryLateEventGetsItsOwnSessionAndLeavesStateAlone) {
    std::unordered_map<std::string, SessionState> states;
    std::vector<Event> now = {at("a", 1000)};
    assign_sessions(now, states, kTimeout, 1);
    SessionState before = states["a:a"];
    std::vector<Event> late = {at("a", 10), at("a", 15)};
    assign_sessions(late, states, kTimeout, 1);
    EXPECT_NE(late[0].session_id, now[0].session_id);
    EXPECT_EQ(late[0].session_id, late[1].session_id);  // same 30-minute bucket
    EXPECT_EQ(states["a:a"].session_id, before.session_id);
    EXPECT_EQ(states["a:a"].last_seen, before.last_seen);
}

TEST(Sessions, IdsAreStableAndShapedAsUuids) {
    Hash128 a = make_session_id(1, "anon", 42), b = make_session_id(1, "anon", 42), c = make_session_id(2, "anon", 42);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_EQ(a[6] >> 4, 4);
    EXPECT_EQ(a[8] & 0xC0, 0x80);
}
