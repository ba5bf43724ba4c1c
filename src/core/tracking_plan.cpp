#include "cdp/core/tracking_plan.hpp"

#include <re2/re2.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "cdp/core/error.hpp"

namespace cdp {

// One node of the schema subset.
struct TrackingPlan::Schema {
    unsigned types = 0;  // bit set of Kind; 0: any
    std::vector<std::string> required;
    std::map<std::string, std::unique_ptr<Schema>, std::less<>> properties;
    bool closed = false;  // additionalProperties: false
    std::vector<std::string> enum_json;
    std::unique_ptr<RE2> pattern;
    bool has_min = false, has_max = false;
    double minimum = 0, maximum = 0;
    long min_length = -1, max_length = -1;
    std::unique_ptr<Schema> items;
};

namespace {

enum Kind : unsigned { String = 1, Number = 2, Integer = 4, Boolean = 8, Object = 16, Array = 32, Null = 64 };

unsigned kind_of(std::string_view name) {
    if (name == "string") return String;
    if (name == "number") return Number | Integer;
    if (name == "integer") return Integer;
    if (name == "boolean") return Boolean;
    if (name == "object") return Object;
    if (name == "array") return Array;
    if (name == "null") return Null;
    return 0;
}

const char* kind_name(const rapidjson::Value& v) {
    if (v.IsString()) return "string";
    if (v.IsBool()) return "boolean";
    if (v.IsNull()) return "null";
    if (v.IsObject()) return "object";
    if (v.IsArray()) return "array";
    if (v.IsInt64() || v.IsUint64() || (v.IsDouble() && std::floor(v.GetDouble()) == v.GetDouble())) return "integer";
    return "number";
}

bool has_kind(unsigned types, const rapidjson::Value& v) {
    if (types == 0) return true;
    if (v.IsString()) return types & String;
    if (v.IsBool()) return types & Boolean;
    if (v.IsNull()) return types & Null;
    if (v.IsObject()) return types & Object;
    if (v.IsArray()) return types & Array;
    if (std::string_view(kind_name(v)) == "integer") return types & (Integer | Number);
    return types & Number;
}

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}

[[noreturn]] void bad(std::string_view event, const std::string& path, const std::string& what) {
    throw Error(ErrorKind::InvalidParameter, "invalid tracking plan for \"" + std::string(event) + "\"",
                "At " + path + ": " + what + ".",
                "Use the JSON-Schema subset: type, required, properties, additionalProperties, enum, pattern, "
                "minimum, maximum, minLength, maxLength, items.");
}

std::unique_ptr<TrackingPlan::Schema> parse(std::string_view event, const rapidjson::Value& v, const std::string& path);

}  // namespace

namespace {
std::unique_ptr<TrackingPlan::Schema> parse(std::string_view event, const rapidjson::Value& v, const std::string& path) {
    if (!v.IsObject()) bad(event, path, "a schema is a JSON object");
    auto s = std::make_unique<TrackingPlan::Schema>();
    for (auto& m : v.GetObject()) {
        std::string_view key(m.name.GetString(), m.name.GetStringLength());
        const rapidjson::Value& x = m.value;
        if (key == "type") {
            auto one = [&](const rapidjson::Value& t) {
                unsigned k = t.IsString() ? kind_of(std::string_view(t.GetString(), t.GetStringLength())) : 0;
                if (k == 0) bad(event, path, "\"type\" names " + json_text(t) + ", not a JSON type");
                s->types |= k;
            };
            if (x.IsArray()) {
                for (auto& t : x.GetArray()) one(t);
            } else {
                one(x);
            }
        } else if (key == "required") {
            if (!x.IsArray()) bad(event, path, "\"required\" is not a list of keys");
            for (auto& r : x.GetArray()) {
                if (!r.IsString()) bad(event, path, "\"required\" lists something other than a key");
                s->required.emplace_back(r.GetString(), r.GetStringLength());
            }
        } else if (key == "properties") {
            if (!x.IsObject()) bad(event, path, "\"properties\" is not an object");
            for (auto& p : x.GetObject()) {
                std::string name(p.name.GetString(), p.name.GetStringLength());
                s->properties[name] = parse(event, p.value, path + "." + name);
            }
        } else if (key == "additionalProperties") {
            if (!x.IsBool()) bad(event, path, "\"additionalProperties\" is not true or false");
            s->closed = !x.GetBool();
        } else if (key == "enum") {
            if (!x.IsArray() || x.Empty()) bad(event, path, "\"enum\" is not a list of values");
            for (auto& e : x.GetArray()) s->enum_json.push_back(json_text(e));
        } else if (key == "pattern") {
            if (!x.IsString()) bad(event, path, "\"pattern\" is not a string");
            s->pattern = std::make_unique<RE2>(std::string(x.GetString(), x.GetStringLength()), RE2::Quiet);
            if (!s->pattern->ok()) bad(event, path, "\"pattern\" is not a valid regular expression: " + s->pattern->error());
        } else if (key == "minimum" || key == "maximum") {
            if (!x.IsNumber()) bad(event, path, "\"" + std::string(key) + "\" is not a number");
            (key == "minimum" ? s->has_min : s->has_max) = true;
            (key == "minimum" ? s->minimum : s->maximum) = x.GetDouble();
        } else if (key == "minLength" || key == "maxLength") {
            if (!x.IsUint()) bad(event, path, "\"" + std::string(key) + "\" is not a length");
            (key == "minLength" ? s->min_length : s->max_length) = static_cast<long>(x.GetUint());
        } else if (key == "items") {
            s->items = parse(event, x, path + "[]");
        } else if (key == "description" || key == "title" || key == "$schema") {
            // documentation only
        } else {
            bad(event, path, "\"" + std::string(key) + "\" is not supported");
        }
    }
    return s;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

void check_value(const TrackingPlan::Schema& s, const rapidjson::Value& v, const std::string& path,
                 std::vector<Violation>& out) {
    if (!has_kind(s.types, v)) {
        out.push_back({"Datatype-Mismatch", path, std::string("is ") + kind_name(v) + ", which the plan does not allow"});
        return;
    }
    if (!s.enum_json.empty()) {
        std::string text = json_text(v);
        bool found = false;
        for (const std::string& e : s.enum_json) found = found || e == text;
        if (!found) out.push_back({"Enum-Mismatch", path, text + " is not one of the values the plan allows"});
    }
    if (v.IsString()) {
        std::string_view str(v.GetString(), v.GetStringLength());
        if (s.pattern && !RE2::PartialMatch(re2::StringPiece(str.data(), str.size()), *s.pattern))
            out.push_back({"Pattern-Mismatch", path, "does not match " + s.pattern->pattern()});
        size_t len = utf8_length(str);
        if ((s.min_length >= 0 && len < static_cast<size_t>(s.min_length)) ||
            (s.max_length >= 0 && len > static_cast<size_t>(s.max_length)))
            out.push_back({"Out-Of-Range", path, "has " + std::to_string(len) + " characters"});
    }
    if (v.IsNumber()) {
        double d = v.GetDouble();
        if ((s.has_min && d < s.minimum) || (s.has_max && d > s.maximum))
            out.push_back({"Out-Of-Range", path, json_text(v) + " is outside the plan's range"});
    }
    if (v.IsObject()) {
        for (const std::string& r : s.required) {
            auto it = v.FindMember(rapidjson::Value(rapidjson::StringRef(r.data(), r.size())));
            if (it == v.MemberEnd()) out.push_back({"Required-Missing", path + "." + r, "is required and missing"});
        }
        for (auto& m : v.GetObject()) {
            std::string_view key(m.name.GetString(), m.name.GetStringLength());
            auto p = s.properties.find(key);
            std::string child = path + "." + std::string(key);
            if (p != s.properties.end()) check_value(*p->second, m.value, child, out);
            else if (s.closed) out.push_back({"Additional-Properties", child, "is not in the plan"});
        }
    }
    if (v.IsArray() && s.items) {
        size_t i = 0;
        for (auto& item : v.GetArray()) check_value(*s.items, item, path + "[" + std::to_string(i++) + "]", out);
    }
}

bool title_case_object_action(std::string_view name) {
    // Two or more words, each a capital letter then lowercase letters or digits.
    int words = 0;
    size_t i = 0;
    while (i < name.size()) {
        if (!(name[i] >= 'A' && name[i] <= 'Z')) return false;
        ++i;
        while (i < name.size() && name[i] != ' ') {
            if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9'))) return false;
            ++i;
        }
        ++words;
        if (i < name.size()) {
            ++i;  // the space
            if (i == name.size()) return false;
        }
    }
    return words >= 2;
}

bool snake_case(std::string_view name) {
    if (name.empty() || name.front() == '_' || name.back() == '_') return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return name.find("__") == std::string_view::npos;
}

}  // namespace

TrackingPlan::TrackingPlan() = default;
TrackingPlan::~TrackingPlan() = default;
TrackingPlan::TrackingPlan(TrackingPlan&&) noexcept = default;
TrackingPlan& TrackingPlan::operator=(TrackingPlan&&) noexcept = default;

bool TrackingPlan::empty() const { return events_.empty() && naming_ == NamingConvention::None && !unplanned_is_violation_; }

void TrackingPlan::add_event(std::string_view event, std::string_view schema_json) {
    rapidjson::Document doc;
    doc.Parse(schema_json.data(), schema_json.size());
    if (doc.HasParseError() || !doc.IsObject()) bad(event, "$", "the plan is not a JSON object");
    auto whole = std::make_unique<Schema>();
    whole->types = Object;
    for (auto& m : doc.GetObject()) {
        std::string_view key(m.name.GetString(), m.name.GetStringLength());
        if (key != "properties" && key != "traits")
            bad(event, "$", "\"" + std::string(key) + "\" is neither properties nor traits");
        whole->properties[std::string(key)] = parse(event, m.value, "$." + std::string(key));
    }
    events_[std::string(event)] = std::move(whole);
}

std::vector<Violation> TrackingPlan::check(const Event& e) const {
    std::vector<Violation> out;
    std::string_view name = event_name_of(e);
    if (e.type == EventType::Track && naming_ != NamingConvention::None) {
        bool ok = naming_ == NamingConvention::SnakeCase ? snake_case(name) : title_case_object_action(name);
        if (!ok)
            out.push_back({"Naming-Convention", "$.event",
                           naming_ == NamingConvention::SnakeCase ? "is not snake_case"
                                                                  : "is not \"Object Action\" in Title Case"});
    }
    auto it = events_.find(name);
    if (it == events_.end()) {
        if (unplanned_is_violation_ && !name.empty())
            out.push_back({"Unplanned-Event", "$.event", "\"" + std::string(name) + "\" is not in the tracking plan"});
        return out;
    }
    const Schema& whole = *it->second;
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    for (const auto& [part, schema] : whole.properties) {
        const rapidjson::Value* v = part == "properties" ? e.properties : e.traits;
        check_value(*schema, v != nullptr ? *v : kEmpty, "$." + part, out);
    }
    return out;
}

std::string violations_json(const std::vector<Violation>& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    for (const Violation& x : v) {
        w.StartObject();
        w.Key("type");
        w.String(x.type.c_str());
        w.Key("path");
        w.String(x.path.c_str());
        w.Key("message");
        w.String(x.message.c_str());
        w.EndObject();
    }
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace cdp
