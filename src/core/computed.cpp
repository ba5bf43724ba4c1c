#include "cdp/core/computed.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

#include "cdp/core/bytes.hpp"
#include "cdp/core/error.hpp"
#include "cdp/core/hash.hpp"

namespace cdp {

namespace {

constexpr const char* kFunctionNames[] = {"count", "sum", "min", "max", "first", "last", "distinct_count", "most_frequent"};
constexpr int kFunctions = 8;
constexpr const char* kFunctionHint = "Use count, sum, min, max, first, last, distinct_count or most_frequent.";
constexpr __int128 kBillion = 1000000000;

[[noreturn]] void bad(std::string_view name, std::string message, std::string hint) {
    throw Error(ErrorKind::InvalidParameter, "invalid definition of computed trait \"" + std::string(name) + "\"",
                std::move(message), std::move(hint));
}

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    v.Accept(writer);
    return std::string(buf.GetString(), buf.GetSize());
}

TraitValue::Kind kind_of(const rapidjson::Value& v) {
    if (v.IsString()) return TraitValue::String;
    if (v.IsNumber()) return TraitValue::Number;
    if (v.IsBool()) return TraitValue::Bool;
    if (v.IsArray()) return TraitValue::Array;
    if (v.IsObject()) return TraitValue::Object;
    return TraitValue::Null;
}

TraitValue trait_value(const rapidjson::Value& v) {
    TraitValue t;
    t.kind = kind_of(v);
    t.json = json_text(v);
    if (v.IsNumber()) t.number = v.GetDouble();
    return t;
}

FieldPath parse_path(std::string_view name, std::string_view what, std::string_view text) {
    FieldPath p;
    p.text = std::string(text);
    size_t start = 0;
    std::vector<std::string> parts;
    while (true) {
        size_t dot = text.find('.', start);
        std::string_view part = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (part.empty())
            bad(name, std::string(what) + " \"" + std::string(text) + "\" has an empty key.",
                "Write a path as a root and keys joined by dots, such as \"properties.price\".");
        parts.emplace_back(part);
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    if (parts[0] == "properties") p.root = FieldPath::Properties;
    else if (parts[0] == "traits") p.root = FieldPath::Traits;
    else if (parts[0] == "context") p.root = FieldPath::Context;
    else
        bad(name, std::string(what) + " \"" + std::string(text) + "\" starts with neither properties, traits nor context.",
            "Write \"properties." + std::string(text) + "\" for a property of the event.");
    if (parts.size() < 2)
        bad(name, std::string(what) + " \"" + std::string(text) + "\" names a whole object.",
            "Name a value inside it, such as \"" + std::string(text) + ".price\".");
    p.keys.assign(parts.begin() + 1, parts.end());
    return p;
}

Operand operand_of(std::string_view name, std::string_view path, const rapidjson::Value& v) {
    Operand o;
    o.kind = kind_of(v);
    if (v.IsString()) o.string.assign(v.GetString(), v.GetStringLength());
    else if (v.IsNumber()) o.number = v.GetDouble();
    else if (v.IsBool()) o.boolean = v.GetBool();
    else if (!v.IsNull())
        bad(name, "The condition on \"" + std::string(path) + "\" compares with an array or object.",
            "Compare with a string, number, boolean or null; for one of several values use a list or {\"in\": [...]}.");
    return o;
}

// -1, 0, 1; nothing when the two are of kinds that do not compare.
std::optional<int> compare(const rapidjson::Value& v, const Operand& o) {
    auto sign = [](auto a, auto b) { return a < b ? -1 : b < a ? 1 : 0; };
    switch (o.kind) {
        case TraitValue::String:
            if (!v.IsString()) return std::nullopt;
            return sign(std::string_view(v.GetString(), v.GetStringLength()), std::string_view(o.string));
        case TraitValue::Number:
            if (!v.IsNumber()) return std::nullopt;
            return sign(v.GetDouble(), o.number);
        case TraitValue::Bool:
            if (!v.IsBool()) return std::nullopt;
            return sign(v.GetBool(), o.boolean);
        case TraitValue::Null:
            if (!v.IsNull()) return std::nullopt;
            return 0;
        default:
            return std::nullopt;
    }
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Micros default_bucket(Micros window) {
    constexpr Micros kWidths[] = {kMicrosPerDay, 6 * kMicrosPerHour, kMicrosPerHour, 30 * kMicrosPerMinute,
                                  15 * kMicrosPerMinute, 5 * kMicrosPerMinute, kMicrosPerMinute, kMicrosPerSecond};
    for (Micros w : kWidths)
        if (w * 48 <= window) return w;
    return std::max<Micros>(1, window / 48);
}

// A number in billionths, when it fits exactly enough (to the ninth decimal).
std::optional<__int128> billionths(const rapidjson::Value& v) {
    if (v.IsInt64()) return static_cast<__int128>(v.GetInt64()) * kBillion;
    if (v.IsUint64()) return static_cast<__int128>(v.GetUint64()) * kBillion;
    long double d = v.GetDouble();
    if (!std::isfinite(d) || std::fabs(d) >= 1e27L) return std::nullopt;
    long double whole = std::trunc(d);
    return static_cast<__int128>(whole) * kBillion + std::llround((d - whole) * 1e9L);
}

std::string decimal_text(__int128 units) {
    bool negative = units < 0;
    unsigned __int128 u = negative ? -static_cast<unsigned __int128>(units) : static_cast<unsigned __int128>(units);
    unsigned __int128 whole = u / kBillion;
    auto frac = static_cast<std::uint64_t>(u % kBillion);
    std::string digits;
    do {
        digits.push_back(static_cast<char>('0' + static_cast<int>(whole % 10)));
        whole /= 10;
    } while (whole != 0);
    std::string out = negative ? "-" : "";
    out.append(digits.rbegin(), digits.rend());
    if (frac != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%09llu", static_cast<unsigned long long>(frac));
        std::string f(buf);
        while (f.back() == '0') f.pop_back();
        out += "." + f;
    }
    return out;
}

std::uint64_t hash64(std::string_view text) {
    Hash128 h = hash128(text);
    std::uint64_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
}

bool earlier(Micros ts, std::string_view tie, Micros bts, std::string_view btie) {
    return std::tie(ts, tie) < std::tie(bts, btie);
}

using Partial = ComputedState::Partial;

// Folds b into a under the function.
void combine(ComputedFunction f, Partial& a, Partial&& b) {
    a.count += b.count;
    switch (f) {
        case ComputedFunction::Sum:
            a.sum += b.sum;
            a.float_sum += b.float_sum;
            a.inexact = a.inexact || b.inexact;
            break;
        case ComputedFunction::Min:
        case ComputedFunction::Max:
        case ComputedFunction::First:
        case ComputedFunction::Last: {
            if (!b.has) break;
            bool take = !a.has;
            if (!take) {
                if (f == ComputedFunction::Min) take = trait_less(b.best, a.best);
                else if (f == ComputedFunction::Max) take = trait_less(a.best, b.best);
                else if (f == ComputedFunction::First) take = earlier(b.ts, b.tie, a.ts, a.tie);
                else take = earlier(a.ts, a.tie, b.ts, b.tie);
            }
            if (take) {
                a.has = true;
                a.ts = b.ts;
                a.tie = std::move(b.tie);
                a.best = std::move(b.best);
            }
            break;
        }
        case ComputedFunction::DistinctCount:
            if (a.hashes.empty()) a.hashes = std::move(b.hashes);
            else a.hashes.insert(b.hashes.begin(), b.hashes.end());
            break;
        case ComputedFunction::MostFrequent:
            for (auto& [json, seen] : b.frequencies) {
                auto& mine = a.frequencies[json];
                mine.first += seen.first;
                mine.second = std::max(mine.second, seen.second);
            }
            break;
        case ComputedFunction::Count:
            break;
    }
}

// One event's value as a partial of its own.
Partial single(ComputedFunction f, const rapidjson::Value* v, const Event& e) {
    Partial p;
    p.count = 1;
    switch (f) {
        case ComputedFunction::Sum:
            if (auto units = billionths(*v)) {
                p.sum = *units;
            } else {
                p.float_sum = v->GetDouble();
                p.inexact = true;
            }
            break;
        case ComputedFunction::Min:
        case ComputedFunction::Max:
        case ComputedFunction::First:
        case ComputedFunction::Last:
            p.has = true;
            p.ts = e.timestamp;
            p.tie = std::string(e.message_id);
            p.best = trait_value(*v);
            break;
        case ComputedFunction::DistinctCount:
            p.hashes.insert(hash64(json_text(*v)));
            break;
        case ComputedFunction::MostFrequent:
            p.frequencies[json_text(*v)] = {1, e.timestamp};
            break;
        case ComputedFunction::Count:
            break;
    }
    return p;
}

// Whether the function takes this value (sum: numbers; min and max: scalars; others: any
// value but null).
bool takes(ComputedFunction f, const rapidjson::Value& v) {
    if (v.IsNull()) return false;
    if (f == ComputedFunction::Sum) return v.IsNumber();
    if (f == ComputedFunction::Min || f == ComputedFunction::Max) return v.IsString() || v.IsNumber() || v.IsBool();
    return true;
}

}  // namespace

// ---- definitions ------------------------------------------------------------------------------

const rapidjson::Value* FieldPath::find(const Event& e) const {
    const rapidjson::Value* v = root == Properties ? e.properties : root == Traits ? e.traits : e.context;
    for (const std::string& key : keys) {
        if (v == nullptr || !v->IsObject()) return nullptr;
        auto it = v->FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
        if (it == v->MemberEnd()) return nullptr;
        v = &it->value;
    }
    return v;
}

bool Condition::holds(const Event& e) const {
    const rapidjson::Value* v = field.find(e);
    if (op == Exists) return (v != nullptr && !v->IsNull()) == operands[0].boolean;
    if (v == nullptr) return false;
    switch (op) {
        case Eq:
            return compare(*v, operands[0]) == 0;
        case Ne: {
            auto c = compare(*v, operands[0]);
            return !c || *c != 0;
        }
        case Lt:
        case Le:
        case Gt:
        case Ge: {
            if (operands[0].kind != TraitValue::Number && operands[0].kind != TraitValue::String) return false;
            auto c = compare(*v, operands[0]);
            if (!c) return false;
            return op == Lt ? *c < 0 : op == Le ? *c <= 0 : op == Gt ? *c > 0 : *c >= 0;
        }
        case In:
            for (const Operand& o : operands)
                if (compare(*v, o) == 0) return true;
            return false;
        default:
            return false;
    }
}

bool ComputedDefinition::matches(const Event& e) const {
    if (type && e.type != *type) return false;
    if (!events.empty()) {
        std::string_view n = event_name_of(e);
        if (std::find(events.begin(), events.end(), n) == events.end()) return false;
    }
    for (const Condition& c : where)
        if (!c.holds(e)) return false;
    return true;
}

ComputedDefinition parse_computed_definition(std::string_view name, std::string_view json) {
    ComputedDefinition d;
    d.name = std::string(name);
    if (name.empty() || name.size() > 63)
        throw Error(ErrorKind::InvalidParameter, "invalid name of a computed trait",
                    "A computed trait's name has 1 to 63 characters; this one has " + std::to_string(name.size()) + ".",
                    "Name it like a column: viewed_audio_24h, lifetime_revenue.");
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            throw Error(ErrorKind::InvalidParameter, "invalid name of a computed trait",
                        "The name \"" + std::string(name) + "\" has a character other than a-z, 0-9 and _.",
                        "Name it like a column: viewed_audio_24h, lifetime_revenue.");
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject())
        bad(name, "The definition is not a JSON object.",
            "Write it like {\"function\": \"count\", \"event\": \"Order Completed\", \"window\": \"30 days\"}.");
    Hash128 h = hash128(json);
    std::memcpy(&d.version, h.data(), sizeof d.version);

    bool has_function = false;
    for (auto& m : doc.GetObject()) {
        std::string_view key(m.name.GetString(), m.name.GetStringLength());
        const rapidjson::Value& v = m.value;
        if (key == "function") {
            if (!v.IsString()) bad(name, "\"function\" is not a string.", kFunctionHint);
            std::string_view f(v.GetString(), v.GetStringLength());
            int i = 0;
            while (i < kFunctions && f != kFunctionNames[i]) ++i;
            if (i == kFunctions) bad(name, "The function \"" + std::string(f) + "\" is unknown.", kFunctionHint);
            d.function = static_cast<ComputedFunction>(i);
            has_function = true;
        } else if (key == "property") {
            if (!v.IsString()) bad(name, "\"property\" is not a string.", "Write a path such as \"properties.price\".");
            d.property = parse_path(name, "The property", std::string_view(v.GetString(), v.GetStringLength()));
        } else if (key == "event") {
            if (v.IsString()) {
                d.events.emplace_back(v.GetString(), v.GetStringLength());
            } else if (v.IsArray() && !v.Empty()) {
                for (auto& n : v.GetArray()) {
                    if (!n.IsString()) bad(name, "\"event\" lists something other than a name.", "List event names as strings.");
                    d.events.emplace_back(n.GetString(), n.GetStringLength());
                }
            } else {
                bad(name, "\"event\" is neither a name nor a list of names.", "Write \"event\": \"Order Completed\".");
            }
        } else if (key == "type") {
            static constexpr EventType kTypes[] = {EventType::Track, EventType::Identify, EventType::Page,
                                                   EventType::Screen, EventType::Group, EventType::Alias};
            std::string_view t = v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : "";
            for (EventType et : kTypes)
                if (t == event_type_name(et)) d.type = et;
            if (!d.type)
                bad(name, "\"type\" is not an event type.", "Use track, page, screen, identify, group or alias.");
        } else if (key == "where") {
            if (!v.IsObject())
                bad(name, "\"where\" is not an object.", "Write {\"properties.category\": \"Audio\"}.");
            for (auto& c : v.GetObject()) {
                std::string_view path(c.name.GetString(), c.name.GetStringLength());
                FieldPath field = parse_path(name, "The condition on", path);
                auto add = [&](Condition::Op op, const rapidjson::Value& operand) {
                    Condition cond;
                    cond.field = field;
                    cond.op = op;
                    if (op == Condition::In) {
                        if (!operand.IsArray() || operand.Empty())
                            bad(name, "\"in\" on \"" + std::string(path) + "\" is not a list of values.",
                                "Write {\"in\": [\"Audio\", \"Video\"]}.");
                        for (auto& o : operand.GetArray()) cond.operands.push_back(operand_of(name, path, o));
                    } else if (op == Condition::Exists) {
                        if (!operand.IsBool())
                            bad(name, "\"exists\" on \"" + std::string(path) + "\" is not true or false.",
                                "Write {\"exists\": true}.");
                        cond.operands.push_back(operand_of(name, path, operand));
                    } else {
                        cond.operands.push_back(operand_of(name, path, operand));
                    }
                    d.where.push_back(std::move(cond));
                };
                if (c.value.IsArray()) {
                    add(Condition::In, c.value);
                } else if (c.value.IsObject()) {
                    if (c.value.ObjectEmpty())
                        bad(name, "The condition on \"" + std::string(path) + "\" has no operator.",
                            "Use \"=\", \"!=\", \"<\", \"<=\", \">\", \">=\", \"in\" or \"exists\".");
                    for (auto& o : c.value.GetObject()) {
                        std::string_view op(o.name.GetString(), o.name.GetStringLength());
                        static constexpr std::pair<const char*, Condition::Op> kOps[] = {
                            {"=", Condition::Eq}, {"!=", Condition::Ne}, {"<", Condition::Lt}, {"<=", Condition::Le},
                            {">", Condition::Gt}, {">=", Condition::Ge}, {"in", Condition::In}, {"exists", Condition::Exists}};
                        auto it = std::find_if(std::begin(kOps), std::end(kOps), [&](auto& k) { return op == k.first; });
                        if (it == std::end(kOps))
                            bad(name, "The operator \"" + std::string(op) + "\" on \"" + std::string(path) + "\" is unknown.",
                                "Use \"=\", \"!=\", \"<\", \"<=\", \">\", \">=\", \"in\" or \"exists\".");
                        add(it->second, o.value);
                    }
                } else {
                    add(Condition::Eq, c.value);
                }
            }
        } else if (key == "window" || key == "bucket") {
            std::string_view t = v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : "";
            std::optional<Micros> duration = t == "lifetime" ? std::optional<Micros>(-1) : parse_duration(t);
            if (!duration || (key == "bucket" && *duration < 0))
                bad(name, "\"" + std::string(key) + "\" is not a duration.",
                    key == "window" ? "Write \"24 hours\", \"30 days\" or \"lifetime\"." : "Write \"1 hour\" or \"15 minutes\".");
            (key == "window" ? d.window : d.bucket) = *duration < 0 ? 0 : *duration;
        } else {
            bad(name, "The key \"" + std::string(key) + "\" is unknown.",
                "A definition has function, property, event, type, where, window and bucket.");
        }
    }
    if (!has_function) bad(name, "The definition has no \"function\".", kFunctionHint);
    if (!d.property && d.function != ComputedFunction::Count)
        bad(name, std::string("The function ") + kFunctionNames[static_cast<int>(d.function)] + " needs a \"property\" to read.",
            "Add \"property\": \"properties.price\" (any path under properties, traits or context).");
    if (!d.events.empty() && !d.type) d.type = EventType::Track;
    if (d.window == 0 && d.bucket != 0)
        bad(name, "\"bucket\" is given without a \"window\".", "Give a window such as \"24 hours\", or drop the bucket.");
    if (d.window != 0) {
        if (d.bucket == 0) d.bucket = default_bucket(d.window);
        if (d.bucket > d.window)
            bad(name, "The bucket is wider than the window.", "Use a bucket of at most the window, such as a 48th of it.");
    }
    return d;
}

// ---- states -----------------------------------------------------------------------------------

void ComputedState::observe(const std::vector<ComputedDefinition>& definitions, const Event& e, Micros now) {
    for (const ComputedDefinition& d : definitions) {
        if (!d.matches(e)) continue;
        const rapidjson::Value* v = nullptr;
        if (d.property) {
            v = d.property->find(e);
            if (v == nullptr || !takes(d.function, *v)) continue;
        }
        std::int64_t index = d.window != 0 ? floor_div(e.timestamp, d.bucket) : 0;
        if (d.window != 0 && (index + 1) * d.bucket + d.window <= now) continue;  // already out of the window
        auto it = traits_.find(d.name);
        if (it == traits_.end() || it->second.version != d.version) {
            Trait t;
            t.function = d.function;
            t.window = d.window;
            t.bucket = d.bucket;
            t.version = d.version;
            it = traits_.insert_or_assign(d.name, std::move(t)).first;
        }
        combine(d.function, it->second.buckets[index], single(d.function, v, e));
    }
}

void ComputedState::merge(ComputedState&& other) {
    for (auto& [name, theirs] : other.traits_) {
        auto it = traits_.find(name);
        if (it == traits_.end()) {
            traits_.emplace(name, std::move(theirs));
            continue;
        }
        if (it->second.version != theirs.version) continue;  // callers expire both states first
        for (auto& [index, partial] : theirs.buckets) combine(theirs.function, it->second.buckets[index], std::move(partial));
    }
}

bool ComputedState::expire(const std::vector<ComputedDefinition>& definitions, Micros at) {
    bool changed = false;
    for (auto it = traits_.begin(); it != traits_.end();) {
        auto d = std::find_if(definitions.begin(), definitions.end(), [&](const ComputedDefinition& x) {
            return x.name == it->first && x.version == it->second.version;
        });
        if (d == definitions.end()) {
            it = traits_.erase(it);
            changed = true;
            continue;
        }
        Trait& t = it->second;
        if (t.window != 0)
            while (!t.buckets.empty() && (t.buckets.begin()->first + 1) * t.bucket + t.window <= at) {
                t.buckets.erase(t.buckets.begin());
                changed = true;
            }
        it = t.buckets.empty() ? traits_.erase(it) : std::next(it);
    }
    return changed;
}

std::optional<Micros> ComputedState::next_expiry() const {
    std::optional<Micros> first;
    for (const auto& [name, t] : traits_) {
        if (t.window == 0 || t.buckets.empty()) continue;
        Micros at = (t.buckets.begin()->first + 1) * t.bucket + t.window;
        if (!first || at < *first) first = at;
    }
    return first;
}

std::string ComputedState::value_json(const ComputedDefinition& d, Micros at) const {
    Partial total;
    auto it = traits_.find(d.name);
    if (it != traits_.end() && it->second.version == d.version) {
        const Trait& t = it->second;
        for (const auto& [index, partial] : t.buckets) {
            if (t.window != 0 && ((index + 1) * t.bucket + t.window <= at || index * t.bucket > at)) continue;
            Partial copy = partial;
            combine(t.function, total, std::move(copy));
        }
    }
    switch (d.function) {
        case ComputedFunction::Count:
            return std::to_string(total.count);
        case ComputedFunction::DistinctCount:
            return std::to_string(total.hashes.size());
        case ComputedFunction::Sum:
            if (!total.inexact) return decimal_text(total.sum);
            {
                rapidjson::Value v(total.float_sum + static_cast<double>(total.sum) / 1e9);
                return json_text(v);
            }
        case ComputedFunction::MostFrequent: {
            const std::string* best = nullptr;
            std::pair<std::int64_t, Micros> best_seen{0, 0};
            for (const auto& [json, seen] : total.frequencies)
                if (best == nullptr || seen > best_seen) {  // ties: the most recent, then the first by JSON text
                    best = &json;
                    best_seen = seen;
                }
            return best != nullptr ? *best : "null";
        }
        default:
            return total.has ? total.best.json : "null";
    }
}

// ---- bytes (bytes.hpp) ------------------------------------------------------------------------

namespace {
constexpr std::uint8_t kComputedFormat = 1;
}  // namespace

std::string ComputedState::write() const {
    ByteWriter o;
    o.put<std::uint8_t>(kComputedFormat);
    o.put<std::uint32_t>(static_cast<std::uint32_t>(traits_.size()));
    for (const auto& [name, t] : traits_) {
        o.text(name);
        o.put<std::uint8_t>(static_cast<std::uint8_t>(t.function));
        o.put<std::int64_t>(t.window);
        o.put<std::int64_t>(t.bucket);
        o.put<std::uint64_t>(t.version);
        o.put<std::uint32_t>(static_cast<std::uint32_t>(t.buckets.size()));
        for (const auto& [index, p] : t.buckets) {
            o.put<std::int64_t>(index);
            o.put<std::int64_t>(p.count);
            switch (t.function) {
                case ComputedFunction::Sum:
                    o.put<std::uint64_t>(static_cast<std::uint64_t>(static_cast<unsigned __int128>(p.sum)));
                    o.put<std::uint64_t>(static_cast<std::uint64_t>(static_cast<unsigned __int128>(p.sum) >> 64));
                    o.put<double>(p.float_sum);
                    o.put<std::uint8_t>(p.inexact ? 1 : 0);
                    break;
                case ComputedFunction::Min:
                case ComputedFunction::Max:
                case ComputedFunction::First:
                case ComputedFunction::Last:
                    o.put<std::uint8_t>(p.has ? 1 : 0);
                    o.put<std::int64_t>(p.ts);
                    o.text(p.tie);
                    o.put<std::uint8_t>(p.best.kind);
                    o.text(p.best.json);
                    o.put<double>(p.best.number);
                    break;
                case ComputedFunction::DistinctCount:
                    o.put<std::uint32_t>(static_cast<std::uint32_t>(p.hashes.size()));
                    for (std::uint64_t h : p.hashes) o.put<std::uint64_t>(h);
                    break;
                case ComputedFunction::MostFrequent:
                    o.put<std::uint32_t>(static_cast<std::uint32_t>(p.frequencies.size()));
                    for (const auto& [json, seen] : p.frequencies) {
                        o.text(json);
                        o.put<std::int64_t>(seen.first);
                        o.put<std::int64_t>(seen.second);
                    }
                    break;
                case ComputedFunction::Count:
                    break;
            }
        }
    }
    return o.s;
}

ComputedState ComputedState::read(std::string_view bytes) {
    ByteReader in{bytes, "the computed trait state"};
    if (in.get<std::uint8_t>() != kComputedFormat) throw std::runtime_error("unknown format of the computed trait state");
    ComputedState s;
    auto traits = in.get<std::uint32_t>();
    for (std::uint32_t i = 0; i < traits; ++i) {
        std::string name = in.text();
        Trait t;
        auto f = in.get<std::uint8_t>();
        if (f >= kFunctions) throw std::runtime_error("a function of the computed trait state is out of range");
        t.function = static_cast<ComputedFunction>(f);
        t.window = in.get<std::int64_t>();
        t.bucket = in.get<std::int64_t>();
        t.version = in.get<std::uint64_t>();
        if (t.window < 0 || (t.window != 0 && t.bucket <= 0))
            throw std::runtime_error("a window of the computed trait state is out of range");
        auto buckets = in.get<std::uint32_t>();
        for (std::uint32_t b = 0; b < buckets; ++b) {
            auto index = in.get<std::int64_t>();
            Partial& p = t.buckets[index];
            p.count = in.get<std::int64_t>();
            switch (t.function) {
                case ComputedFunction::Sum: {
                    auto lo = in.get<std::uint64_t>();
                    auto hi = in.get<std::uint64_t>();
                    p.sum = static_cast<__int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
                    p.float_sum = in.get<double>();
                    p.inexact = in.get<std::uint8_t>() != 0;
                    break;
                }
                case ComputedFunction::Min:
                case ComputedFunction::Max:
                case ComputedFunction::First:
                case ComputedFunction::Last: {
                    p.has = in.get<std::uint8_t>() != 0;
                    p.ts = in.get<std::int64_t>();
                    p.tie = in.text();
                    auto kind = in.get<std::uint8_t>();
                    if (kind > TraitValue::Object) throw std::runtime_error("a value kind of the computed trait state is out of range");
                    p.best.kind = static_cast<TraitValue::Kind>(kind);
                    p.best.json = in.text();
                    p.best.number = in.get<double>();
                    break;
                }
                case ComputedFunction::DistinctCount: {
                    auto n = in.get<std::uint32_t>();
                    for (std::uint32_t k = 0; k < n; ++k) p.hashes.insert(in.get<std::uint64_t>());
                    break;
                }
                case ComputedFunction::MostFrequent: {
                    auto n = in.get<std::uint32_t>();
                    for (std::uint32_t k = 0; k < n; ++k) {
                        std::string json = in.text();
                        auto count = in.get<std::int64_t>();
                        p.frequencies[json] = {count, in.get<std::int64_t>()};
                    }
                    break;
                }
                case ComputedFunction::Count:
                    break;
            }
        }
        s.traits_.emplace(std::move(name), std::move(t));
    }
    in.finish();
    return s;
}

}  // namespace cdp
