#include "cdp/core/ingest.hpp"

#include "cdp/core/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstring>

#include "cdp/core/error.hpp"
#include "cdp/core/text.hpp"
#include "cdp/core/url.hpp"

namespace cdp {

const char* event_type_name(EventType t) {
    switch (t) {
        case EventType::Track: return "track";
        case EventType::Identify: return "identify";
        case EventType::Page: return "page";
        case EventType::Screen: return "screen";
        case EventType::Group: return "group";
        case EventType::Alias: return "alias";
    }
    return "track";
}

namespace {
// The two parts of an event's session actor: its kind and its id.
std::pair<std::string_view, std::string_view> session_actor_parts(const Event& e) {
    if (e.anonymous_id.empty()) return {"u:", e.user_id};
    return {"a:", e.anonymous_id};
}
}  // namespace

std::string_view event_name_of(const Event& e) {
    if (e.type == EventType::Track) return e.event;
    if (e.type == EventType::Page || e.type == EventType::Screen) return e.name;
    return event_type_name(e.type);
}

std::string session_actor_of(const Event& e) {
    auto [kind, id] = session_actor_parts(e);
    std::string actor(kind);
    actor += id;
    return actor;
}

namespace {

using rapidjson::Value;

// Full precision: numbers keep their exact value.
constexpr unsigned kParseFlags = rapidjson::kParseFullPrecisionFlag;

// ---- scanning item spans of valid JSON ---------------------------------------------------

size_t skip_ws(std::string_view s, size_t p) {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
    return p;
}

// End (one past) of the string starting at the quote at p. Strings are most of the bytes, so
// this jumps from quote to quote; a quote is escaped when an odd number of backslashes precede it.
size_t skip_string(std::string_view s, size_t p) {
    const char* base = s.data();
    size_t i = p + 1;
    while (i < s.size()) {
        const void* q = std::memchr(base + i, '"', s.size() - i);
        if (q == nullptr) return s.size();
        size_t k = static_cast<size_t>(static_cast<const char*>(q) - base);
        size_t b = k;
        while (b > p + 1 && base[b - 1] == '\\') --b;
        if ((k - b) % 2 == 0) return k + 1;
        i = k + 1;
    }
    return s.size();
}

// End (one past) of the value starting at p; raises *max_depth to the value's nesting depth.
size_t skip_value(std::string_view s, size_t p, int* max_depth) {
    if (p >= s.size()) return p;
    if (s[p] == '"') return skip_string(s, p);
    if (s[p] == '{' || s[p] == '[') {
        int depth = 0;
        while (p < s.size()) {
            char c = s[p];
            if (c == '"') {
                p = skip_string(s, p);
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > *max_depth) *max_depth = depth;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                return p + 1;
            }
            ++p;
        }
        return p;
    }
    while (p < s.size() && s[p] != ',' && s[p] != ']' && s[p] != '}' && s[p] != ' ' && s[p] != '\t' &&
           s[p] != '\n' && s[p] != '\r')
        ++p;
    return p;
}

// Spans of the elements of the array starting at p.
std::vector<std::string_view> array_elements(std::string_view s, size_t p, int* max_depth) {
    std::vector<std::string_view> out;
    p = skip_ws(s, p + 1);
    while (p < s.size() && s[p] != ']') {
        size_t end = skip_value(s, p, max_depth);
        out.push_back(s.substr(p, end - p));
        p = skip_ws(s, end);
        if (p < s.size() && s[p] == ',') p = skip_ws(s, p + 1);
    }
    return out;
}

// ---- reading fields ------------------------------------------------------------------------

const Value* member(const Value& obj, const char* name) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
}

const Value* object_member(const Value* obj, const char* name) {
    if (obj == nullptr || !obj->IsObject()) return nullptr;
    const Value* v = member(*obj, name);
    return v != nullptr && v->IsObject() ? v : nullptr;
}

std::string_view string_member(const Value* obj, const char* name) {
    if (obj == nullptr || !obj->IsObject()) return {};
    const Value* v = member(*obj, name);
    if (v == nullptr || !v->IsString()) return {};
    return {v->GetString(), v->GetStringLength()};
}

// An identifier field: a string, or a number written as text (some SDKs send numeric ids; the
// text is kept by the batch). Returns false when present with another JSON type.
bool read_id(const Value* v, std::string_view& out, IngestBatch& batch) {
    out = {};
    if (v == nullptr) return true;
    if (v->IsString()) {
        out = std::string_view(v->GetString(), v->GetStringLength());
        // Whitespace-only ids identify nobody.
        if (out.find_first_not_of(" \t\r\n") == std::string_view::npos) out = {};
        return true;
    }
    if (v->IsInt64()) {
        out = batch.keep(std::to_string(v->GetInt64()));
        return true;
    }
    if (v->IsUint64()) {
        out = batch.keep(std::to_string(v->GetUint64()));
        return true;
    }
    return false;
}

// Walks the value: false (with reason) when it nests deeper than max_depth or holds a NUL byte.
bool check_value(const Value& v, int depth, int max_depth, const char*& reason, std::string& detail) {
    if (depth > max_depth) {
        reason = reason::kTooDeep;
        detail = "the event nests objects and arrays more than " + std::to_string(max_depth) + " levels deep";
        return false;
    }
    if (v.IsString()) {
        if (std::memchr(v.GetString(), 0, v.GetStringLength()) != nullptr) {
            reason = reason::kNulByte;
            detail = "a string value holds a NUL character (\\u0000), which PostgreSQL text cannot store";
            return false;
        }
    } else if (v.IsObject()) {
        for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
            if (std::memchr(it->name.GetString(), 0, it->name.GetStringLength()) != nullptr) {
                reason = reason::kNulByte;
                detail = "an object key holds a NUL character (\\u0000), which PostgreSQL text cannot store";
                return false;
            }
            if (!check_value(it->value, depth + 1, max_depth, reason, detail)) return false;
        }
    } else if (v.IsArray()) {
        for (const Value& e : v.GetArray())
            if (!check_value(e, depth + 1, max_depth, reason, detail)) return false;
    }
    return true;
}

std::string serialize(const Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    v.Accept(writer);
    return std::string(buf.GetString(), buf.GetSize());
}

// Raw bytes made storable as PostgreSQL text: invalid UTF-8 and NUL become U+FFFD.
std::string storable_copy(std::string_view raw) {
    if (storable_text(raw)) return std::string(raw);
    std::string out;
    out.reserve(raw.size());
    size_t i = 0;
    while (i < raw.size()) {
        size_t len = 1;
        unsigned char c = static_cast<unsigned char>(raw[i]);
        if (c >= 0xC0) len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (c != 0 && i + len <= raw.size() && storable_text(raw.substr(i, len))) {
            out.append(raw.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

bool parse_type(std::string_view s, EventType& t) {
    std::string lc = lowercase(s);
    if (lc == "track") t = EventType::Track;
    else if (lc == "identify") t = EventType::Identify;
    else if (lc == "page") t = EventType::Page;
    else if (lc == "screen") t = EventType::Screen;
    else if (lc == "group") t = EventType::Group;
    else if (lc == "alias") t = EventType::Alias;
    else return false;
    return true;
}

// Adds to `target` (an object) a copy of each member of `defaults` that target lacks.
void merge_defaults(Value& target, const Value& defaults, rapidjson::Document::AllocatorType& alloc) {
    for (auto it = defaults.MemberBegin(); it != defaults.MemberEnd(); ++it) {
        if (target.FindMember(it->name) != target.MemberEnd()) continue;
        target.AddMember(Value(it->name, alloc), Value(it->value, alloc), alloc);
    }
}

// Merges batch-level context or integrations into the item's member of that name.
void merge_batch_level(Value& item, const char* name, const Value* batch_level,
                       rapidjson::Document::AllocatorType& alloc) {
    if (batch_level == nullptr || !batch_level->IsObject() || batch_level->MemberCount() == 0) return;
    auto it = item.FindMember(name);
    if (it == item.MemberEnd()) {
        item.AddMember(Value(name, alloc), Value(*batch_level, alloc), alloc);
    } else if (it->value.IsNull()) {
        it->value.CopyFrom(*batch_level, alloc);
    } else if (it->value.IsObject()) {
        merge_defaults(it->value, *batch_level, alloc);
    }
}

// The top-level keys that become typed columns or jsonb columns of their own, found in one pass
// over the item (the first occurrence of a key counts, as with FindMember; null means absent).
struct TopLevel {
    enum Key {
        kType, kMessageId, kAnonymousId, kUserId, kEvent, kName, kGroupId, kPreviousId, kTimestamp,
        kOriginalTimestamp, kSentAt, kProperties, kTraits, kContext, kCount
    };
    const Value* found[kCount] = {};

    static int key_of(std::string_view k) {
        static const std::string_view kNames[kCount] = {
            "type", "messageId", "anonymousId", "userId", "event", "name", "groupId", "previousId", "timestamp",
            "originalTimestamp", "sentAt", "properties", "traits", "context"};
        for (int i = 0; i < kCount; ++i)
            if (k.size() == kNames[i].size() && k == kNames[i]) return i;
        return -1;
    }

    explicit TopLevel(const Value& item) {
        for (auto it = item.MemberBegin(); it != item.MemberEnd(); ++it) {
            int k = key_of({it->name.GetString(), it->name.GetStringLength()});
            if (k >= 0 && found[k] == nullptr) found[k] = &it->value;
        }
    }

    const Value* operator[](Key k) const { return found[k] != nullptr && !found[k]->IsNull() ? found[k] : nullptr; }

    std::string_view string(Key k) const {
        const Value* v = (*this)[k];
        return v != nullptr && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                             : std::string_view();
    }

    const Value* object(Key k) const {
        const Value* v = (*this)[k];
        return v != nullptr && v->IsObject() ? v : nullptr;
    }
};

// Reads an optional timestamp field. Returns false (with detail) when present but not a time.
bool read_time(const Value* v, const char* name, bool& present, Micros& out, std::string& detail) {
    present = false;
    if (v == nullptr) return true;
    if (v->IsString()) {
        auto t = parse_iso8601({v->GetString(), v->GetStringLength()});
        if (t) {
            present = true;
            out = *t;
            return true;
        }
        detail = std::string(name) + " \"" + std::string(v->GetString(), std::min<size_t>(v->GetStringLength(), 64)) +
                 "\" is not an ISO-8601 timestamp";
        return false;
    }
    detail = std::string(name) + " must be an ISO-8601 string";
    return false;
}

}  // namespace

std::vector<std::string_view> payload_item_spans(std::string_view json, int* max_depth) {
    int ignored = 0;
    int* depth = max_depth != nullptr ? max_depth : &ignored;
    *depth = 0;
    size_t p = skip_ws(json, 0);
    if (p >= json.size()) return {};
    if (json[p] == '[') {
        auto items = array_elements(json, p, depth);
        ++*depth;
        return items;
    }
    if (json[p] != '{') return {};
    // An envelope if the top-level object has a "batch" array; else the object is the one item.
    size_t obj_start = p;
    p = skip_ws(json, p + 1);
    std::vector<std::string_view> items;
    bool envelope = false;
    while (p < json.size() && json[p] == '"') {
        size_t key_end = skip_string(json, p);
        std::string_view key = json.substr(p + 1, key_end - p - 2);
        p = skip_ws(json, key_end);
        if (p >= json.size() || json[p] != ':') return {};
        p = skip_ws(json, p + 1);
        size_t end;
        if (!envelope && key == "batch" && p < json.size() && json[p] == '[') {
            envelope = true;
            items = array_elements(json, p, depth);
            end = skip_value(json, p, depth);
        } else {
            end = skip_value(json, p, depth);
        }
        p = skip_ws(json, end);
        if (p < json.size() && json[p] == ',') p = skip_ws(json, p + 1);
    }
    if (envelope) {
        ++*depth;  // the envelope around the values measured above
        return items;
    }
    size_t end = skip_value(json, obj_start, depth);  // measures the object as a whole
    return {json.substr(obj_start, end - obj_start)};
}

void IngestBatch::reject(size_t index, const char* why, std::string detail, std::string_view raw,
                         std::string_view message_id) {
    Rejection r;
    r.item_index = index;
    r.reason = why;
    r.detail = std::move(detail);
    r.raw = ip_policy_ == IpPolicy::Full ? storable_copy(raw) : storable_copy(scrub_ip_members(raw, ip_policy_));
    if (storable_text(message_id)) r.message_id = message_id;
    rejections.push_back(std::move(r));
}

void IngestBatch::parse(std::string_view payload, const IngestOptions& options) {
    clear();
    ip_policy_ = options.ip_policy;
    const IngestLimits& limits = options.limits;
    if (payload.size() > limits.max_batch_bytes) {
        reject(0, reason::kSizeViolation,
               "the payload is " + std::to_string(payload.size()) + " bytes, over the batch limit of " +
                   std::to_string(limits.max_batch_bytes) + " bytes",
               payload);
        rejections.back().whole_payload = true;
        return;
    }
    // In-place parsing ends at a NUL byte, which would silently drop what follows it. PostgreSQL
    // text never holds one; other callers get the whole payload refused.
    if (std::memchr(payload.data(), '\0', payload.size()) != nullptr) {
        reject(0, reason::kNulByte, "the payload holds a NUL byte, which JSON text cannot contain", payload);
        rejections.back().whole_payload = true;
        return;
    }
    // The item spans (for raw text and size limits) and the deepest nesting, from a fast scan.
    // Shallow payloads take RapidJSON's faster recursive parser; deep ones its iterative one,
    // which needs no stack. Escapes (\uD800 alone, say) are checked either way; raw bytes only
    // when they may be invalid.
    int depth = 0;
    std::vector<std::string_view> spans = payload_item_spans(payload, &depth);
    constexpr int kRecursionLimit = 256;
    // Parsed in place, in a copy: strings then point into the copy instead of being copied one
    // by one, and the payload itself stays intact for the raw text of rejections.
    // RapidJSON's SIMD scanning reads whole 16-byte blocks, up to 15 bytes past the terminator:
    // the allocation must hold them.
    buffer_.reserve(payload.size() + 16);
    buffer_.assign(payload.data(), payload.size());
    char* text = buffer_.data();
    if (depth <= kRecursionLimit && options.input_is_utf8)
        doc_.ParseInsitu<kParseFlags>(text);
    else if (depth <= kRecursionLimit)
        doc_.ParseInsitu<kParseFlags | rapidjson::kParseValidateEncodingFlag>(text);
    else if (options.input_is_utf8)
        doc_.ParseInsitu<kParseFlags | rapidjson::kParseIterativeFlag>(text);
    else
        doc_.ParseInsitu<kParseFlags | rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(text);
    if (doc_.HasParseError()) {
        rapidjson::ParseErrorCode code = doc_.GetParseError();
        bool encoding = code == rapidjson::kParseErrorStringInvalidEncoding ||
                        code == rapidjson::kParseErrorStringUnicodeSurrogateInvalid;
        reject(0, encoding ? reason::kInvalidUtf8 : reason::kInvalidJson,
               std::string(rapidjson::GetParseError_En(code)) + " (at byte " + std::to_string(doc_.GetErrorOffset()) +
                   ")",
               payload);
        rejections.back().whole_payload = true;
        return;
    }

    const Value* batch_context = nullptr;
    const Value* batch_integrations = nullptr;
    Value* item_array = nullptr;
    if (doc_.IsObject()) {
        auto it = doc_.FindMember("batch");
        if (it != doc_.MemberEnd() && it->value.IsArray()) {
            item_array = &it->value;
            batch_context = object_member(&doc_, "context");
            batch_integrations = object_member(&doc_, "integrations");
        }
    } else if (doc_.IsArray()) {
        item_array = &doc_;
    } else {
        reject(0, reason::kNotAnObject, "the payload must be an event object, an array of events or a batch envelope",
               payload);
        rejections.back().whole_payload = true;
        return;
    }

    size_t count = item_array != nullptr ? item_array->Size() : 1;
    bool spans_ok = spans.size() == count;
    items = count;
    events.reserve(count);
    std::vector<std::string> reserialized;  // only when the spans could not be found
    // Items need the walk for nesting and NUL characters only when the payload could hold either.
    bool deep_check = !spans_ok || depth > limits.max_depth ||
                      payload.find("\\u0000") != std::string_view::npos;
    for (size_t i = 0; i < count; ++i) {
        if ((i & 255) == 0) check_for_cancel();
        Value& item = item_array != nullptr ? (*item_array)[static_cast<rapidjson::SizeType>(i)] : doc_;
        std::string_view raw;
        if (spans_ok) {
            raw = spans[i];
        } else {
            reserialized.push_back(serialize(item));
            raw = reserialized.back();
        }
        parse_item(item, i, raw, batch_context, batch_integrations, options, deep_check);
    }

    // Exact dedup inside the payload, by the dedup key (as against the table): the first
    // occurrence of a messageId wins. Sorting keys with positions needs no allocation per event.
    std::vector<std::pair<Hash128, size_t>> keys(events.size());
    for (size_t i = 0; i < events.size(); ++i) keys[i] = {events[i].message_hash, i};
    std::sort(keys.begin(), keys.end());
    std::vector<bool> repeated(events.size(), false);
    for (size_t k = 1; k < keys.size(); ++k)
        if (keys[k].first == keys[k - 1].first) repeated[keys[k].second] = true;
    size_t out = 0;
    for (size_t i = 0; i < events.size(); ++i) {
        if (repeated[i]) {
            ++duplicates_in_payload;
            continue;
        }
        if (out != i) events[out] = std::move(events[i]);
        ++out;
    }
    events.resize(out);
}

void IngestBatch::keep_claimed(const std::vector<Hash128>& claimed) {
    std::vector<Hash128> sorted(claimed);
    std::sort(sorted.begin(), sorted.end());
    size_t out = 0;
    for (size_t i = 0; i < events.size(); ++i) {
        if (!std::binary_search(sorted.begin(), sorted.end(), events[i].message_hash)) continue;
        if (out != i) events[out] = std::move(events[i]);
        ++out;
    }
    events.resize(out);
}

std::string_view IngestBatch::keep_lowercase(std::string_view text) {
    for (char c : text)
        if (c >= 'A' && c <= 'Z') return keep(lowercase(text));
    return text;
}

std::string_view IngestBatch::keep(std::string_view a, std::string_view b) {
    size_t n = a.size() + b.size();
    if (n == 0) return {};
    auto* out = static_cast<char*>(pool_.Malloc(n));
    if (out == nullptr) throw std::bad_alloc();
    std::memcpy(out, a.data(), a.size());
    if (!b.empty()) std::memcpy(out + a.size(), b.data(), b.size());
    return {out, n};
}

void IngestBatch::clear() {
    events.clear();  // first: events point into the document
    rejections.clear();
    owned_.clear();
    duplicates_in_payload = 0;
    items = 0;
    doc_.SetNull();
    pool_.Clear();  // keeps the first buffer
    buffer_.clear();
}

void IngestBatch::parse_item(Value& item, size_t index, std::string_view raw, const Value* batch_context,
                             const Value* batch_integrations, const IngestOptions& options, bool deep_check) {
    const IngestLimits& limits = options.limits;
    if (!item.IsObject()) {
        reject(index, reason::kNotAnObject, "item " + std::to_string(index) + " is not a JSON object", raw);
        return;
    }
    // Batch-level context and integrations fill what the item does not set itself (first: adding
    // members may move the item's members, and the scan below points into them).
    auto& alloc = doc_.GetAllocator();
    merge_batch_level(item, "context", batch_context, alloc);
    merge_batch_level(item, "integrations", batch_integrations, alloc);
    const TopLevel top(item);

    std::string_view message_id;
    bool message_id_ok = read_id(top[TopLevel::kMessageId], message_id, *this);
    if (raw.size() > limits.max_event_bytes) {
        reject(index, reason::kSizeViolation,
               "the event is " + std::to_string(raw.size()) + " bytes, over the limit of " +
                   std::to_string(limits.max_event_bytes) + " bytes",
               raw, message_id);
        return;
    }
    const char* why = nullptr;
    std::string detail;
    if (deep_check && !check_value(item, 1, limits.max_depth, why, detail)) {
        reject(index, why, detail, raw, message_id);
        return;
    }
    if (!message_id_ok) {
        reject(index, reason::kInvalidField, "messageId must be a string", raw);
        return;
    }

    // Built in place at the end of `events` (reserved up front): no copy of a large struct per
    // event. A rejection below takes it off again.
    struct InPlace {
        std::vector<Event>& events;
        bool keep = false;
        ~InPlace() {
            if (!keep) events.pop_back();
        }
    } in_place{events};
    Event& e = events.emplace_back();
    e.item_index = index;
    e.raw = raw;

    std::string_view type_text = top.string(TopLevel::kType);
    if (type_text.empty() || !parse_type(type_text, e.type)) {
        reject(index, reason::kInvalidType,
               type_text.empty() ? std::string("the event has no \"type\"")
                                 : "unknown type \"" + std::string(type_text.substr(0, 64)) +
                                       "\"; expected track, identify, page, screen, group or alias",
               raw, message_id);
        return;
    }
    struct IdField {
        const char* name;
        TopLevel::Key key;
        std::string_view* target;
    };
    for (const IdField& f : {IdField{"userId", TopLevel::kUserId, &e.user_id},
                             IdField{"anonymousId", TopLevel::kAnonymousId, &e.anonymous_id},
                             IdField{"groupId", TopLevel::kGroupId, &e.group_id},
                             IdField{"previousId", TopLevel::kPreviousId, &e.previous_id}}) {
        const char* field = f.name;
        if (!read_id(top[f.key], *f.target, *this)) {
            reject(index, reason::kInvalidField, std::string(field) + " must be a string or a number", raw, message_id);
            return;
        }
    }
    if (e.user_id.empty() && e.anonymous_id.empty()) {
        reject(index, reason::kMissingIdentity, "the event needs a userId or an anonymousId", raw, message_id);
        return;
    }
    auto [actor_kind, actor_id] = session_actor_parts(e);
    e.session_actor = keep(actor_kind, actor_id);
    switch (e.type) {
        case EventType::Track:
            e.event = top.string(TopLevel::kEvent);
            if (e.event.empty()) {
                reject(index, reason::kMissingField, "a track event needs a non-empty \"event\" name", raw, message_id);
                return;
            }
            break;
        case EventType::Alias:
            if (e.previous_id.empty()) {
                reject(index, reason::kMissingField, "an alias event needs \"previousId\"", raw, message_id);
                return;
            }
            break;
        case EventType::Group:
            if (e.group_id.empty()) {
                reject(index, reason::kMissingField, "a group event needs \"groupId\"", raw, message_id);
                return;
            }
            break;
        default:
            break;
    }
    for (auto [obj, key] : {std::pair<const char*, TopLevel::Key>{"properties", TopLevel::kProperties},
                            {"traits", TopLevel::kTraits},
                            {"context", TopLevel::kContext}}) {
        const Value* v = top[key];
        if (v != nullptr && !v->IsObject()) {
            reject(index, reason::kInvalidField, std::string(obj) + " must be a JSON object", raw, message_id);
            return;
        }
    }

    // Timestamps: the client's "timestamp" is the original timestamp unless one is given.
    bool has_ts = false, has_orig = false;
    Micros ts = 0, orig = 0;
    if (!read_time(top[TopLevel::kTimestamp], "timestamp", has_ts, ts, detail) ||
        !read_time(top[TopLevel::kOriginalTimestamp], "originalTimestamp", has_orig, orig, detail) ||
        !read_time(top[TopLevel::kSentAt], "sentAt", e.has_sent_at, e.sent_at, detail)) {
        reject(index, reason::kInvalidTimestamp, detail, raw, message_id);
        return;
    }
    e.has_original_timestamp = has_orig || has_ts;
    e.original_timestamp = has_orig ? orig : ts;
    e.received_at = options.received_at;
    e.timestamp = corrected_timestamp(e.has_original_timestamp ? std::optional<Micros>(e.original_timestamp)
                                                               : std::nullopt,
                                      e.has_sent_at && e.has_original_timestamp ? std::optional<Micros>(e.sent_at)
                                                                                : std::nullopt,
                                      e.received_at);
    if (e.timestamp < limits.min_timestamp || e.timestamp > e.received_at + limits.max_future) {
        reject(index, reason::kInvalidTimestamp,
               "the event time " + format_iso8601(e.timestamp) + " (after clock-skew correction) lies outside " +
                   format_iso8601(limits.min_timestamp) + " .. receivedAt + " +
                   std::to_string(limits.max_future / kMicrosPerHour) + "h",
               raw, message_id);
        return;
    }

    if (message_id.empty()) {
        // Without a messageId, the same bytes sent twice (a retry) are the same event.
        Hash128 h = hash128(raw);
        e.message_id = keep("generated:", to_hex(h.data(), h.size()));
    } else {
        e.message_id = message_id;
    }
    e.message_hash = hash128(e.message_id, options.dedup_scope);
    if (e.type == EventType::Page || e.type == EventType::Screen) e.name = top.string(TopLevel::kName);

    // Everything that is not a typed or jsonb column of its own is kept in "extra" (but never
    // the write key, which is a credential).
    owned_.emplace_back(rapidjson::kObjectType);
    Value& extra = owned_.back();
    for (auto it = item.MemberBegin(); it != item.MemberEnd(); ++it) {
        std::string_view k(it->name.GetString(), it->name.GetStringLength());
        if (TopLevel::key_of(k) >= 0 || k == "writeKey") continue;
        extra.AddMember(Value(it->name, alloc), it->value, alloc);  // moves the value
    }
    e.extra = extra.MemberCount() > 0 ? &extra : nullptr;
    e.properties = top.object(TopLevel::kProperties);
    e.traits = top.object(TopLevel::kTraits);
    e.context = top.object(TopLevel::kContext);

    e.ip = keep(apply_ip_policy(string_member(e.context, "ip"), options.ip_policy));
    // The policy holds for the stored context too: the address as sent stays only under "full";
    // otherwise context.ip becomes the ip column's value, or goes when that is empty. Done before
    // any field is read from the context: erasing a member moves the members after it, and a
    // short string RapidJSON copied (a batch-level one) lives inside its member.
    if (options.ip_policy != IpPolicy::Full && e.context != nullptr) {
        Value& context = item.FindMember("context")->value;  // the member e.context points to
        for (auto it = context.MemberBegin(); it != context.MemberEnd();) {
            if (std::string_view(it->name.GetString(), it->name.GetStringLength()) != "ip") {
                ++it;
            } else if (e.ip.empty()) {
                it = context.EraseMember(it);
            } else {
                it->value.SetString(e.ip.data(), static_cast<rapidjson::SizeType>(e.ip.size()), alloc);
                ++it;
            }
        }
    }

    // Page, referrer and campaign. Page events carry url/path/referrer in properties too.
    const Value* page = object_member(e.context, "page");
    auto page_field = [&](const char* name) {
        std::string_view v = string_member(page, name);
        if (v.empty() && (e.type == EventType::Page || e.type == EventType::Screen))
            v = string_member(e.properties, name);
        return v;
    };
    e.page_url = page_field("url");
    e.page_path = page_field("path");
    e.page_title = page_field("title");
    e.referrer = page_field("referrer");
    UrlParts url = split_url(e.page_url);
    if (e.page_path.empty()) e.page_path = url.path;
    e.page_host = keep_lowercase(url.host);
    if (!e.referrer.empty()) {
        e.referrer_host = keep_lowercase(split_url(e.referrer).host);
        e.referrer_medium = referrer_medium(e.referrer_host, e.page_host, options.internal_domains);
    }
    const Value* campaign = object_member(e.context, "campaign");
    if (campaign != nullptr) {
        e.utm_source = string_member(campaign, "source");
        e.utm_medium = string_member(campaign, "medium");
        e.utm_campaign = string_member(campaign, "name");
        e.utm_term = string_member(campaign, "term");
        e.utm_content = string_member(campaign, "content");
    } else if (!url.query.empty()) {
        e.utm_source = keep(query_param(url.query, "utm_source"));
        e.utm_medium = keep(query_param(url.query, "utm_medium"));
        e.utm_campaign = keep(query_param(url.query, "utm_campaign"));
        e.utm_term = keep(query_param(url.query, "utm_term"));
        e.utm_content = keep(query_param(url.query, "utm_content"));
    }

    // Device, OS and browser: from the user agent when there is one, else from the SDK's context.
    std::string_view ua = string_member(e.context, "userAgent");
    if (!ua.empty() && options.user_agents != nullptr) {
        // Copied: the parser's cache may drop its entry before the batch is written.
        const ParsedUserAgent& parsed = options.user_agents->parse(ua);
        e.browser = keep(parsed.info.browser);
        e.browser_version = keep(parsed.browser_version);
        e.os = keep(parsed.info.os);
        e.os_version = keep(parsed.os_version);
        e.device_type = keep(parsed.device_type);
    } else {
        const Value* os = object_member(e.context, "os");
        e.os = string_member(os, "name");
        e.os_version = string_member(os, "version");
        std::string_view device = keep_lowercase(string_member(object_member(e.context, "device"), "type"));
        std::string os_lc = lowercase(e.os);
        if (device == "ios" || device == "android" || os_lc == "ios" || os_lc == "android" || os_lc == "iphone os")
            e.device_type = "mobile";
        else
            e.device_type = device;
    }
    e.locale = string_member(e.context, "locale");
    in_place.keep = true;
}

}  // namespace cdp
