#include "cdp/core/traits.hpp"

#include "cdp/core/bytes.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <tuple>

namespace cdp {

namespace {
constexpr const char* kRuleNames[] = {"latest", "earliest", "most_frequent", "source_priority", "max", "min", "union"};
constexpr int kRules = 7;
}  // namespace

std::optional<Survivorship> parse_survivorship(std::string_view name) {
    for (int i = 0; i < kRules; ++i)
        if (name == kRuleNames[i]) return static_cast<Survivorship>(i);
    return std::nullopt;
}

const char* survivorship_name(Survivorship rule) { return kRuleNames[static_cast<int>(rule)]; }

namespace {
// Value order: kinds in jsonb's order, numbers by value, then JSON text.
int compare_values(TraitValue::Kind ka, double na, std::string_view ja, TraitValue::Kind kb, double nb,
                   std::string_view jb) {
    if (ka != kb) return ka < kb ? -1 : 1;
    if (ka == TraitValue::Number && na != nb) return na < nb ? -1 : 1;
    int c = ja.compare(jb);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}
template <typename B>
int compare_values(const TraitValueView& a, const B& b) {
    return compare_values(a.kind, a.number, a.json, b.kind, b.number, b.json);
}
}  // namespace

bool trait_less(const TraitValue& a, const TraitValue& b) {
    return compare_values(a.kind, a.number, a.json, b.kind, b.number, b.json) < 0;
}

int compare_trait_values(const TraitValueView& a, const TraitValueView& b) { return compare_values(a, b); }

bool value_decides(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority) {
    switch (rule) {
        case Survivorship::Max:
        case Survivorship::Min:
            return true;
        default:
            return ts == best_ts && priority == best_priority;
    }
}

// Every tie is broken, so the survivor does not depend on the order rows arrive in (parallel
// workers combine in any order).
bool beats(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority, int by_value) {
    switch (rule) {
        case Survivorship::Earliest:
            if (ts != best_ts) return ts < best_ts;
            if (priority != best_priority) return priority < best_priority;
            return by_value > 0;
        case Survivorship::SourcePriority:
            if (priority != best_priority) return priority < best_priority;
            if (ts != best_ts) return ts > best_ts;
            return by_value > 0;
        case Survivorship::Max:
            return by_value > 0;
        case Survivorship::Min:
            return by_value < 0;
        default:  // latest, and most_frequent's fallback
            if (ts != best_ts) return ts > best_ts;
            if (priority != best_priority) return priority < best_priority;
            return by_value > 0;
    }
}

bool may_beat(Survivorship rule, Micros ts, int priority, Micros best_ts, int best_priority) {
    switch (rule) {
        case Survivorship::Latest:
            return ts > best_ts || (ts == best_ts && priority <= best_priority);
        case Survivorship::Earliest:
            return ts < best_ts || (ts == best_ts && priority <= best_priority);
        case Survivorship::SourcePriority:
            return priority < best_priority || (priority == best_priority && ts >= best_ts);
        default:  // the value decides (max, min), or every value counts (most_frequent, union)
            return true;
    }
}

bool TraitMerger::better(Survivorship rule, Micros ts, int priority, const TraitValueView& v, const Candidate& b) {
    return beats(rule, ts, priority, b.ts, b.priority,
                 value_decides(rule, ts, priority, b.ts, b.priority) ? compare_values(v, b) : 0);
}

bool TraitMerger::better(Survivorship rule, const Candidate& a, const Candidate& b) {
    TraitValueView v{a.kind, a.json, a.number, nullptr, 0};
    return better(rule, a.ts, a.priority, v, b);
}

size_t TraitMerger::lower(std::string_view key) const {
    auto it = std::lower_bound(traits_.begin(), traits_.end(), key,
                               [](const Trait& t, std::string_view k) { return key_before(t.key, k); });
    return static_cast<size_t>(it - traits_.begin());
}

size_t TraitMerger::find(std::string_view key, size_t near) const {
    if (near < traits_.size() && same_key(traits_[near].key, key)) return near;
    if (traits_.empty() || key_before(traits_.back().key, key)) return npos;  // after every trait held
    size_t at = lower(key);
    return at < traits_.size() && same_key(traits_[at].key, key) ? at : npos;
}

size_t TraitMerger::place(std::string_view key, Survivorship rule, size_t near) {
    if (size_t found = find(key, near); found != npos) return found;
    // A state is mostly filled in key order (a record's first row, jsonb's keys): at the end.
    size_t at = traits_.empty() || key_before(traits_.back().key, key) ? traits_.size() : lower(key);
    if (traits_.capacity() == traits_.size())  // room for a record's usual traits at once
        traits_.reserve(std::max<size_t>(8, traits_.size() * 2));
    Trait& made = at == traits_.size() ? traits_.emplace_back()
                                       : *traits_.insert(traits_.begin() + static_cast<std::ptrdiff_t>(at), Trait{});
    made.key.assign(key.data(), key.size());
    made.rule = rule;
    return at;
}

bool TraitMerger::may_matter(size_t at, Micros ts, int priority) const {
    if (at == npos || !traits_[at].has) return true;
    return may_beat(traits_[at].rule, ts, priority, traits_[at].best.ts, traits_[at].best.priority);
}

void TraitMerger::offer(Trait& t, const TraitValueView& v, Micros ts, int priority, Provenance from) {
    bool is_null = v.kind == TraitValue::Null;
    switch (t.rule) {
        case Survivorship::Union: {
            Tally& tl = tally_of(t);
            size_t before = tl.members.size();
            if (v.kind == TraitValue::Array) {
                for (size_t i = 0; i < v.element_count; ++i)
                    if (v.elements[i] != "null") tl.add(v.elements[i]);
            } else if (!is_null) {
                tl.add(v.json);
            }
            if (is_null && before == tl.members.size()) return;
            break;
        }
        case Survivorship::MostFrequent:
            if (!is_null) tally_of(t).count(v.json, 1);
            break;
        default:
            if (is_null && passes_over_nulls(t.rule)) return;
            break;
    }
    if (!t.has || better(best_rule_of(t.rule), ts, priority, v, t.best)) take(t, v, ts, priority, from);
}

void TraitMerger::take(Trait& t, const TraitValueView& v, Micros ts, int priority, Provenance from) {
    t.best.kind = v.kind;
    t.best.json.assign(v.json.data(), v.json.size());  // the old text's room is reused
    t.best.number = v.number;
    t.best.ts = ts;
    t.best.priority = priority;
    // Most values come with no source or event (an aggregate's rows): nothing to copy then.
    if (!from.source.empty() || !t.best.source.empty()) t.best.source.assign(from.source.data(), from.source.size());
    if (!from.event_id.empty() || !t.best.event_id.empty())
        t.best.event_id.assign(from.event_id.data(), from.event_id.size());
    t.has = true;
}

size_t TraitMerger::add(std::string_view key, const TraitValueView& value, Survivorship rule, Micros ts, int priority,
                        Provenance from, size_t near) {
    size_t at = place(key, rule, near);
    offer(traits_[at], value, ts, priority, from);
    return at;
}

void TraitMerger::merge(TraitMerger&& other) {
    if (traits_.empty()) {  // the first state of a group, as a combine often has it
        traits_ = std::move(other.traits_);
        other.traits_.clear();
        return;
    }
    size_t near = 0;  // both go in key order: each key is usually where the last one ended
    for (Trait& theirs : other.traits_) {
        size_t at = find(theirs.key, near);
        if (at == npos) {
            at = place(theirs.key, theirs.rule, near);
            traits_[at] = std::move(theirs);
            near = at + 1;
            continue;
        }
        near = at + 1;
        Trait& mine = traits_[at];
        if (theirs.has && (!mine.has || better(best_rule_of(mine.rule), theirs.best, mine.best))) {
            mine.best = std::move(theirs.best);
            mine.has = true;
        }
        if (theirs.tally) {
            Tally& ours = tally_of(mine);
            for (const auto& [json, n] : theirs.tally->counts) ours.counts[json] += n;
            ours.members.merge(theirs.tally->members);
        }
    }
    other.traits_.clear();
}

void TraitMerger::survivors(std::vector<SurvivorView>* out, std::vector<std::string>* made) const {
    out->clear();
    made->clear();
    made->reserve(traits_.size());  // never moved: the views of short strings would break
    for (const Trait& t : traits_) {
        const std::string& key = t.key;
        if (t.rule == Survivorship::Union) {
            if (tally(t).members.empty()) continue;
            std::string& array = made->emplace_back("[");
            for (const std::string& m : tally(t).members) {
                if (array.size() > 1) array += ',';
                array += m;
            }
            array += ']';
            out->emplace_back(key, array);
            continue;
        }
        if (t.rule == Survivorship::MostFrequent) {
            // The value seen most often, at least twice (ties: the first in JSON text order);
            // without one, the latest value stands in.
            const std::string* top = nullptr;
            std::int64_t most = 1;
            for (const auto& [json, n] : tally(t).counts)
                if (n > most) most = n, top = &json;
            if (top != nullptr) {
                out->emplace_back(key, *top);
                continue;
            }
        }
        if (t.has) out->emplace_back(key, t.best.json);
    }
}

std::vector<std::pair<std::string, std::string>> TraitMerger::result() const {
    std::vector<SurvivorView> views;
    std::vector<std::string> made;
    survivors(&views, &made);
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(views.size());
    for (const auto& [key, json] : views) out.emplace_back(key, json);
    return out;
}

std::vector<TraitSource> TraitMerger::sources() const {
    std::vector<TraitSource> out;
    for (const Trait& t : traits_) {
        if (!t.has || (t.rule == Survivorship::Union && tally(t).members.empty())) continue;
        out.push_back({t.key, t.best.ts, t.best.source, t.best.event_id});
    }
    return out;
}

// ---- bytes (bytes.hpp) ------------------------------------------------------------------------

namespace {
constexpr std::uint8_t kFormat = 2;
// A trait's flags: its rule in the low bits, then which of the optional parts follow.
constexpr std::uint8_t kRuleBits = 0x07, kHas = 0x08, kPriority = 0x10, kSource = 0x20, kEventId = 0x40,
                       kTallied = 0x80;
}  // namespace

// Compact, since parallel workers pass a state for nearly every group they saw a row of: per
// trait its key, flags, and only what the flags say is there (a latest trait from an identify
// call: key, flags, kind, JSON text and time).
std::string TraitMerger::write() const {
    ByteWriter o;
    o.s.reserve(8 + traits_.size() * 48);
    o.put<std::uint8_t>(kFormat);
    o.varint(traits_.size());
    for (const Trait& t : traits_) {
        o.short_text(t.key);
        const Tally& tl = tally(t);
        bool tallied = !tl.counts.empty() || !tl.members.empty();
        auto flags = static_cast<std::uint8_t>(static_cast<std::uint8_t>(t.rule) | (tallied ? kTallied : 0));
        if (t.has) {
            flags |= kHas;
            if (t.best.priority != kNoPriority) flags |= kPriority;
            if (!t.best.source.empty()) flags |= kSource;
            if (!t.best.event_id.empty()) flags |= kEventId;
        }
        o.put<std::uint8_t>(flags);
        if (t.has) {
            o.put<std::uint8_t>(t.best.kind);
            o.short_text(t.best.json);
            if (t.best.kind == TraitValue::Number) o.put<double>(t.best.number);
            o.put<std::int64_t>(t.best.ts);
            if (flags & kPriority) o.put<std::int32_t>(t.best.priority);
            if (flags & kSource) o.short_text(t.best.source);
            if (flags & kEventId) o.short_text(t.best.event_id);
        }
        if (tallied) {
            o.varint(tl.counts.size());
            for (const auto& [json, n] : tl.counts) {
                o.short_text(json);
                o.put<std::int64_t>(n);
            }
            o.varint(tl.members.size());
            for (const std::string& m : tl.members) o.short_text(m);
        }
    }
    return o.s;
}

// Trait by trait, each folded in as merge() would (a key new to this state takes the rule and
// value it comes with), so that a parallel combine makes no state of its own to fold.
void TraitMerger::merge(std::string_view bytes) {
    ByteReader in{bytes, "the merge state"};
    if (in.get<std::uint8_t>() != kFormat) throw std::runtime_error("unknown format of the merge state");
    auto traits = in.varint();
    if (traits > bytes.size() / 2)  // each takes two bytes at least: its key's length, its flags
        throw std::runtime_error("the merge state counts more traits than it has bytes for");
    if (traits_.empty()) traits_.reserve(std::min<std::uint64_t>(traits, 64));  // damaged bytes ask for no more
    std::string_view previous;
    size_t near = 0;
    for (std::uint64_t i = 0; i < traits; ++i) {
        std::string_view key = in.short_text();
        if (i > 0 && !key_before(previous, key))
            throw std::runtime_error("the traits of the merge state are out of order, or one comes twice");
        previous = key;
        auto flags = in.get<std::uint8_t>();
        if ((flags & kRuleBits) >= kRules) throw std::runtime_error("a rule of the merge state is out of range");
        size_t at = place(key, static_cast<Survivorship>(flags & kRuleBits), near);
        near = at + 1;
        Trait& mine = traits_[at];
        if (flags & kHas) {
            auto kind = in.get<std::uint8_t>();
            if (kind > TraitValue::Object) throw std::runtime_error("a value kind of the merge state is out of range");
            TraitValueView v;
            v.kind = static_cast<TraitValue::Kind>(kind);
            v.json = in.short_text();
            if (v.kind == TraitValue::Number) v.number = in.get<double>();
            auto ts = in.get<std::int64_t>();
            int priority = flags & kPriority ? in.get<std::int32_t>() : kNoPriority;
            Provenance from;
            if (flags & kSource) from.source = in.short_text();
            if (flags & kEventId) from.event_id = in.short_text();
            if (!mine.has || better(best_rule_of(mine.rule), ts, priority, v, mine.best))
                take(mine, v, ts, priority, from);
        } else if (flags & (kPriority | kSource | kEventId)) {
            throw std::runtime_error("a trait of the merge state without a value says where its value came from");
        }
        if (flags & kTallied) {
            Tally& tl = tally_of(mine);
            auto counts = in.varint();
            for (std::uint64_t c = 0; c < counts; ++c) {
                std::string_view json = in.short_text();
                tl.count(json, in.get<std::int64_t>());
            }
            auto members = in.varint();
            for (std::uint64_t c = 0; c < members; ++c) tl.add(in.short_text());
        }
    }
    in.finish();
}

TraitMerger TraitMerger::read(std::string_view bytes) {
    TraitMerger m;
    m.merge(bytes);
    return m;
}

}  // namespace cdp
