// One Segment-spec event after validation and enrichment, and one payload item that was rejected.
#pragma once
#include "cdp/core/pure.hpp"

#include "cdp/core/json.hpp"

#include <cstdint>
#include <string>
#include <string_view>

#include "cdp/core/hash.hpp"
#include "cdp/core/timestamp.hpp"

namespace cdp {

enum class EventType { Track, Identify, Page, Screen, Group, Alias };

const char* event_type_name(EventType t);

// The typed columns of cdp.events. Empty strings stand for SQL NULL.
// The text fields are views: of the batch's parsed payload when a value is used as sent, else of
// a copy the batch keeps (see IngestBatch), so an event costs no allocation of its own; they
// stay valid as long as the batch that made the event holds its payload.
struct Event {
    size_t item_index = 0;      // position of the item in the payload
    std::string_view raw;       // the item's bytes as sent (for replay of a later rejection)
    std::string_view message_id;  // messageId as sent, or "generated:" + hash of the raw item
    Hash128 message_hash{};     // the dedup key: the messageId hashed within IngestOptions::dedup_scope
    EventType type = EventType::Track;
    std::string_view event;     // track: the event name
    std::string_view name;      // page/screen: the name
    std::string_view anonymous_id, user_id, group_id, previous_id;

    Micros timestamp = 0;  // after the clock-skew rule
    bool has_original_timestamp = false, has_sent_at = false;
    Micros original_timestamp = 0, sent_at = 0, received_at = 0;

    std::string_view page_url, page_path, page_title, page_host, referrer, referrer_host, referrer_medium;
    std::string_view utm_source, utm_medium, utm_campaign, utm_term, utm_content;
    std::string_view device_type, os, os_version, browser, browser_version;
    std::string_view ip, locale;

    // jsonb columns, pointing into the batch's document; null when absent.
    const rapidjson::Value* properties = nullptr;
    const rapidjson::Value* traits = nullptr;
    const rapidjson::Value* context = nullptr;
    const rapidjson::Value* extra = nullptr;  // integrations and every other top-level key

    // Sessionization: whose visit this is (session_actor_of) and the result.
    std::string_view session_actor;
    Hash128 session_id{};
    std::int64_t profile_id = 0;  // set by identity stitching; 0 for none (SQL NULL)
};

// What an event is called: a track call's event, a page's or screen's name, else its type
// ("identify", "group", "alias"). Tracking plans, computed traits and triggers match on it.
std::string_view event_name_of(const Event& e);

// Whose visit an event belongs to: "a:" + anonymous_id, else "u:" + user_id.
std::string session_actor_of(const Event& e);

// Stable reason codes of cdp.rejected_events.
namespace reason {
inline constexpr const char* kInvalidJson = "invalid_json";
inline constexpr const char* kInvalidUtf8 = "invalid_utf8";
inline constexpr const char* kNotAnObject = "not_an_object";
inline constexpr const char* kTooDeep = "too_deep";
inline constexpr const char* kNulByte = "nul_byte";
inline constexpr const char* kSizeViolation = "size_violation";
inline constexpr const char* kInvalidType = "invalid_type";
inline constexpr const char* kMissingIdentity = "missing_identity";
inline constexpr const char* kMissingField = "missing_field";
inline constexpr const char* kInvalidField = "invalid_field";
inline constexpr const char* kInvalidTimestamp = "invalid_timestamp";
inline constexpr const char* kSuppressed = "suppressed";  // an identifier of an erased person (payload not kept)
inline constexpr const char* kSchemaViolation = "schema_violation";  // blocked by a tracking plan
inline constexpr const char* kNoConsent = "no_consent";  // the event does not grant a purpose its workspace requires (payload not kept)
}  // namespace reason

struct Rejection {
    size_t item_index = 0;  // position in the payload; 0 for a rejection of the whole payload
    bool whole_payload = false;
    const char* reason = "";
    std::string detail;
    std::string raw;         // the bytes as sent (made storable as text if they were not)
    std::string message_id;  // when one could be read
};

}  // namespace cdp
