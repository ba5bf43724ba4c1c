// Turns one ingest payload (an event, an array of events, or a batch envelope) into validated,
// enriched events and rejections. Pure C++: the PostgreSQL layer stores what this produces.
#pragma once
#include "cdp/core/pure.hpp"

#include "cdp/core/json.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/core/ip.hpp"
#include "cdp/core/user_agent.hpp"

namespace cdp {

struct IngestLimits {
    size_t max_event_bytes = 32 * 1024;   // Segment HTTP API: 32 KB per event
    size_t max_batch_bytes = 500 * 1024;  // Segment HTTP API: 500 KB per batch
    int max_depth = 64;                   // nesting of objects and arrays inside one event
    Micros max_future = kMicrosPerDay;    // how far past receivedAt a corrected timestamp may lie
    Micros min_timestamp = 946684800LL * kMicrosPerSecond;  // 2000-01-01: earlier is a broken clock
};

struct IngestOptions {
    Micros received_at = 0;
    IpPolicy ip_policy = IpPolicy::Truncate;
    std::vector<std::string> internal_domains;
    CachedUserAgentParser* user_agents = nullptr;  // no device/os/browser columns when null
    bool input_is_utf8 = false;  // the caller guarantees valid UTF-8 (PostgreSQL text in a UTF8 database)
    // Seeds the message hashes: the same messageId in two scopes (workspaces) is two events.
    std::uint32_t dedup_scope = 0;
    IngestLimits limits;
};

// Owns the parsed document; events point into it, so it lives as long as they are used.
class IngestBatch {
public:
    IngestBatch() = default;
    IngestBatch(const IngestBatch&) = delete;
    IngestBatch& operator=(const IngestBatch&) = delete;

    // Parses, validates and enriches; fills events (first occurrence of each messageId only),
    // rejections, and duplicates_in_payload, replacing what an earlier parse left.
    void parse(std::string_view payload, const IngestOptions& options);

    // Keeps the events whose message hash is among `claimed` (the rest are duplicates of
    // events stored earlier).
    void keep_claimed(const std::vector<Hash128>& claimed);

    // A copy of the text (of a + b), kept with the parsed payload until the next parse or
    // clear(): the events' fields that are not the payload's own text view such copies.
    std::string_view keep(std::string_view text) { return keep(text, {}); }
    std::string_view keep(std::string_view a, std::string_view b);
    // The text in lowercase: itself when it has no capitals, else a kept copy.
    std::string_view keep_lowercase(std::string_view text);

    // Forgets the payload, its events and rejections, keeping the memory already allocated for
    // them (the payload copy, the DOM pool, the event vector), so that a batch object reused
    // for the next payload of the same size allocates little.
    void clear();

    std::vector<Event> events;
    std::vector<Rejection> rejections;
    size_t duplicates_in_payload = 0;
    size_t items = 0;  // how many items the payload held

private:
    IpPolicy ip_policy_ = IpPolicy::Full;  // of the payload being parsed (rejections follow it too)
    void parse_item(rapidjson::Value& item, size_t index, std::string_view raw, const rapidjson::Value* batch_context,
                    const rapidjson::Value* batch_integrations, const IngestOptions& options, bool deep_check);
    void reject(size_t index, const char* reason, std::string detail, std::string_view raw,
                std::string_view message_id = {});

    std::string buffer_;  // the payload copy the document is parsed in (and points into)
    // The DOM's nodes come from a pool whose first 1 MB (a 500 kB batch fits in it) is a buffer
    // kept across clear(); past it, further chunks of 1 MB rather than RapidJSON's default 64 kB.
    static constexpr size_t kPoolBytes = 1 << 20;
    std::unique_ptr<char[]> pool_buffer_{new char[kPoolBytes]};
    rapidjson::MemoryPoolAllocator<> pool_{pool_buffer_.get(), kPoolBytes, kPoolBytes};
    rapidjson::Document doc_{&pool_};
    std::deque<rapidjson::Value> owned_;  // values made here (the extra column), at stable addresses
};

// The byte spans of the items of a payload that parsed as valid JSON: the elements of a
// top-level array, the elements of the "batch" array of an envelope, or the whole object.
// Returns an empty vector when the structure is none of these. When max_depth is given, it is
// set to the deepest nesting of objects and arrays in the payload (for invalid JSON, a guess).
std::vector<std::string_view> payload_item_spans(std::string_view json, int* max_depth = nullptr);

}  // namespace cdp
