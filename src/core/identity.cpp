#include "cdp/core/identity.hpp"

#include <re2/re2.h>

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <utility>

#include "cdp/core/error.hpp"
#include "cdp/core/event.hpp"
#include "cdp/core/text.hpp"

namespace cdp {

namespace {

std::string_view trim(std::string_view s) {
    const char* ws = " \t\r\n\f\v";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

struct CountryCode {
    const char* country;
    const char* code;
};
// ITU-T E.164 calling codes of the countries most traffic comes from.
constexpr CountryCode kCallingCodes[] = {
    {"US", "1"},   {"CA", "1"},   {"GB", "44"},  {"DE", "49"},  {"FR", "33"},  {"IT", "39"},  {"ES", "34"},
    {"NL", "31"},  {"BE", "32"},  {"CH", "41"},  {"AT", "43"},  {"SE", "46"},  {"NO", "47"},  {"DK", "45"},
    {"FI", "358"}, {"IE", "353"}, {"PT", "351"}, {"PL", "48"},  {"CZ", "420"}, {"HU", "36"},  {"RO", "40"},
    {"GR", "30"},  {"TR", "90"},  {"RU", "7"},   {"UA", "380"}, {"IL", "972"}, {"AE", "971"}, {"SA", "966"},
    {"IN", "91"},  {"PK", "92"},  {"CN", "86"},  {"JP", "81"},  {"KR", "82"},  {"SG", "65"},  {"HK", "852"},
    {"TW", "886"}, {"AU", "61"},  {"NZ", "64"},  {"BR", "55"},  {"MX", "52"},  {"AR", "54"},  {"CL", "56"},
    {"CO", "57"},  {"ZA", "27"},  {"NG", "234"}, {"KE", "254"}, {"EG", "20"},  {"ID", "62"},  {"TH", "66"},
    {"VN", "84"},  {"PH", "63"},  {"MY", "60"},
};

}  // namespace

// ---- normalisation --------------------------------------------------------------------------

std::optional<std::string> normalise_email(std::string_view raw) {
    std::string v = lowercase(trim(raw));
    size_t at = v.find('@');
    if (at == std::string::npos || at == 0 || at + 1 >= v.size() || v.find('@', at + 1) != std::string::npos ||
        v.find_first_of(" \t\r\n") != std::string::npos)
        return std::nullopt;
    return v;
}

std::string_view calling_code(std::string_view country) noexcept {
    if (country.size() != 2) return {};
    auto upper = [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); };
    char a = upper(country[0]), b = upper(country[1]);
    for (const CountryCode& cc : kCallingCodes)
        if (cc.country[0] == a && cc.country[1] == b) return cc.code;
    return {};
}

std::optional<std::string> normalise_phone(std::string_view raw, std::string_view default_country) {
    std::string_view s = trim(raw);
    bool international = false;
    if (!s.empty() && s[0] == '+') {
        international = true;
        s.remove_prefix(1);
    }
    std::string digits;
    for (char c : s) {
        if (c >= '0' && c <= '9') digits += c;
        else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/') continue;
        else return std::nullopt;  // letters, extensions and the like: not a plain number
    }
    if (!international && digits.size() > 2 && digits.compare(0, 2, "00") == 0) {
        international = true;
        digits.erase(0, 2);
    }
    if (!international) {
        std::string_view code = calling_code(default_country);
        if (code.empty()) return std::nullopt;
        if (code == "1" && digits.size() == 11 && digits[0] == '1') {
            // already carries the NANP country code
        } else {
            if (!digits.empty() && digits[0] == '0') digits.erase(0, 1);  // national trunk prefix
            digits.insert(0, code);
        }
    }
    if (digits.size() < 8 || digits.size() > 15 || digits[0] == '0') return std::nullopt;
    return "+" + digits;
}

std::optional<std::string> normalise_identifier(std::string_view type, std::string_view raw,
                                                std::string_view default_country) {
    if (type == "email") return normalise_email(raw);
    if (type == "phone") return normalise_phone(raw, default_country);
    std::string_view v = trim(raw);
    if (v.empty()) return std::nullopt;
    return std::string(v);
}

// ---- rules ----------------------------------------------------------------------------------

struct IdentityRules::Compiled {
    std::unordered_map<std::string, std::unique_ptr<RE2>> include, exclude;
    // With each, the range of byte strings its matches lie in (RE2::PossibleMatchRange), when
    // RE2 can bound it: a value outside it is not matched, without running the pattern.
    struct BlockPattern {
        std::unique_ptr<RE2> re;
        bool bounded = false;
        std::string min, max;
    };
    std::vector<BlockPattern> block_patterns;
    size_t longest_blocked = 0;  // no longer value is in the blocklist (lowercase keeps lengths)
};

namespace {

std::unique_ptr<RE2> compile(const std::string& pattern, const char* what) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, options);
    if (!re->ok())
        throw Error(ErrorKind::InvalidParameter, std::string("invalid ") + what + " regex: " + pattern, re->error(),
                    "Identity rules take RE2 syntax (no backreferences or lookaround).");
    return re;
}

}  // namespace

const std::vector<std::string>& IdentityRules::default_blocklist() {
    static const std::vector<std::string> values = {
        "null", "undefined", "anonymous", "guest", "0",  "-1", "[object object]", "nan", "none", "nil", "unknown",
        "n/a",  "(null)",    "true",      "false", "{}", "[]", "-",               "''",  "\"\""};
    return values;
}

const std::vector<std::string>& IdentityRules::default_block_patterns() {
    // Only zeros and dashes: an unset id such as 00000000-0000-0000-0000-000000000000. And the
    // ids ingest gives events stripped for want of consent ("stripped:<hash>"): they identify no one.
    static const std::vector<std::string> patterns = {"^[0-]*$", "^stripped:[0-9a-f]{32}$"};
    return patterns;
}

IdentityRules::IdentityRules() : compiled_(std::make_unique<Compiled>()) {
    types_ = {{"user_id", 1, 1, "", ""},
              {"email", 2, 5, "", ""},
              {"phone", 3, 5, "", ""},
              {"device_id", 4, 5, "", ""},
              {"anonymous_id", 5, 5, "", ""}};
    for (const std::string& v : default_blocklist()) block_value(v);
    for (const std::string& p : default_block_patterns()) block_pattern(p);
}

IdentityRules::~IdentityRules() = default;
IdentityRules::IdentityRules(IdentityRules&&) noexcept = default;
IdentityRules& IdentityRules::operator=(IdentityRules&&) noexcept = default;

void IdentityRules::set_type(TypeRule rule) {
    if (rule.limit < 1)
        throw Error(ErrorKind::InvalidParameter, "the limit of identifier type \"" + rule.type + "\" must be at least 1",
                    "It was " + std::to_string(rule.limit) + ".", "A profile holds at least one value of each type.");
    if (!rule.include.empty()) compiled_->include[rule.type] = compile(rule.include, "include");
    else compiled_->include.erase(rule.type);
    if (!rule.exclude.empty()) compiled_->exclude[rule.type] = compile(rule.exclude, "exclude");
    else compiled_->exclude.erase(rule.type);
    for (TypeRule& t : types_) {
        if (t.type == rule.type) {
            t = std::move(rule);
            return;
        }
    }
    types_.push_back(std::move(rule));
}

void IdentityRules::block_value(std::string value) {
    std::string v = lowercase(trim(value));
    compiled_->longest_blocked = std::max(compiled_->longest_blocked, v.size());
    blocked_.insert(std::move(v));
}

void IdentityRules::block_pattern(const std::string& regex) {
    Compiled::BlockPattern p;
    p.re = compile(regex, "blocklist");
    p.bounded = p.re->PossibleMatchRange(&p.min, &p.max, 64);
    compiled_->block_patterns.push_back(std::move(p));
}

const TypeRule& IdentityRules::rule(std::string_view type) const {
    for (const TypeRule& t : types_)
        if (t.type == type) return t;
    return unknown_;
}

std::string IdentityRules::refusal(std::string_view type, std::string_view value) const {
    if (value.empty()) return "empty value";
    if (value.size() <= compiled_->longest_blocked && blocked_.count(lowercase(value)) > 0) return "blocklisted value";
    for (const Compiled::BlockPattern& p : compiled_->block_patterns) {
        if (p.bounded && (value < p.min || value > p.max)) continue;
        if (RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *p.re))
            return "blocklisted pattern " + p.re->pattern();
    }
    if (compiled_->include.empty() && compiled_->exclude.empty()) return {};
    std::string key(type);
    auto inc = compiled_->include.find(key);
    if (inc != compiled_->include.end() && !RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *inc->second))
        return "does not match the include pattern of " + key;
    auto exc = compiled_->exclude.find(key);
    if (exc != compiled_->exclude.end() && RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *exc->second))
        return "matches the exclude pattern of " + key;
    return {};
}

// ---- union-find -----------------------------------------------------------------------------

UnionFind::UnionFind(size_t n) : parent_(n), size_(n, 1) {
    for (size_t i = 0; i < n; ++i) parent_[i] = static_cast<std::uint32_t>(i);
}

size_t UnionFind::add() {
    if (parent_.size() >= UINT32_MAX)
        throw Error(ErrorKind::InvalidParameter, "too many nodes for one graph", "The limit is 4294967295.",
                    "Split the graph, for example by workspace.");
    parent_.push_back(static_cast<std::uint32_t>(parent_.size()));
    size_.push_back(1);
    return parent_.size() - 1;
}

size_t UnionFind::unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return a;
    if (size_[a] < size_[b]) std::swap(a, b);
    parent_[b] = static_cast<std::uint32_t>(a);
    size_[a] += size_[b];
    return a;
}

// ---- string interning -----------------------------------------------------------------------

namespace {
constexpr std::uint32_t kEmptySlot = 0xFFFFFFFFu;
constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

// A fast hash of short strings: eight bytes at a time, then a 64-bit finaliser (murmur3's fmix).
std::uint32_t StringInterner::hash(std::string_view s) {
    const std::uint64_t k = 0x9E3779B97F4A7C15ull;
    std::uint64_t h = s.size() * k;
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    h = (h ^ tail) * k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return static_cast<std::uint32_t>(h);
}

void StringInterner::Unmap::operator()(char* p) const { munmap(p, bytes); }

const char* StringInterner::store(std::string_view s) {
    std::uint32_t size = static_cast<std::uint32_t>(s.size());  // checked by the caller
    size_t bytes = sizeof size + s.size();
    if (bytes > chunk_size_ - chunk_used_) {
        chunk_size_ = std::max(kChunkBytes, bytes);
        void* mem = mmap(nullptr, chunk_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) throw std::bad_alloc();
        chunks_.push_back(std::unique_ptr<char[], Unmap>(static_cast<char*>(mem), Unmap{chunk_size_}));
        chunk_used_ = 0;
    }
    char* p = chunks_.back().get() + chunk_used_;
    std::memcpy(p, &size, sizeof size);
    std::memcpy(p + sizeof size, s.data(), s.size());
    chunk_used_ += bytes;
    return p;
}

void StringInterner::grow(size_t capacity) {
    if (capacity == 0) capacity = slots_.empty() ? 4096 : slots_.size() * 2;
    slots_.assign(capacity, Slot{kEmptySlot, 0});
    refs_.reserve(capacity * 3 / 4);
    size_t mask = capacity - 1;
    // Reinserted a batch at a time, hashed again and the target slots asked for first (see
    // intern_many). A reserved table seldom grows.
    std::uint32_t hashes[kBatch];
    for (std::uint32_t start = 0; start < refs_.size(); start += kBatch) {
        std::uint32_t end = static_cast<std::uint32_t>(std::min<size_t>(refs_.size(), start + kBatch));
        for (std::uint32_t id = start; id < end; ++id) {
            hashes[id - start] = hash(name(id));
            __builtin_prefetch(&slots_[hashes[id - start] & mask], 1);
        }
        for (std::uint32_t id = start; id < end; ++id) {
            size_t i = hashes[id - start] & mask;
            while (slots_[i].id != kEmptySlot) i = (i + 1) & mask;
            slots_[i] = Slot{id, hashes[id - start]};
        }
    }
}

void StringInterner::reserve(size_t n) {
    size_t capacity = std::max<size_t>(slots_.size(), 4096);
    while (n * 4 > capacity * 3) capacity *= 2;
    if (capacity > slots_.size()) grow(capacity);  // once, to the size asked for
    refs_.reserve(n);
}

std::uint32_t StringInterner::intern(std::string_view s) {
    if ((size() + 1) * 4 > slots_.size() * 3) grow();  // load factor at most 3/4: a smaller table misses the cache less
    return intern_hashed(s, hash(s));
}

void StringInterner::intern_many(const std::string_view* in, size_t n, std::uint32_t* out,
                                 const std::uint32_t* hashes) {
    while ((size() + n) * 4 > slots_.size() * 3) grow();  // no growth inside the batch
    // Hash everything and ask for the slots first: the table's cache misses then overlap
    // instead of coming one after the other.
    std::uint32_t own[kBatch];
    size_t mask = slots_.size() - 1;
    for (size_t start = 0; start < n; start += kBatch) {
        size_t m = std::min(kBatch, n - start);
        const std::uint32_t* h = hashes != nullptr ? hashes + start : own;
        for (size_t k = 0; k < m; ++k) {
            if (hashes == nullptr) own[k] = hash(in[start + k]);
            __builtin_prefetch(&slots_[h[k] & mask]);
        }
        // A string seen before is compared with its stored bytes: where they are (refs_), then
        // the bytes themselves, asked for a stage at a time, so that these misses overlap too.
        const char* const* found[kBatch];
        for (size_t k = 0; k < m; ++k) {
            const Slot& slot = slots_[h[k] & mask];
            found[k] = slot.id != kEmptySlot && slot.hash == h[k] ? &refs_[slot.id] : nullptr;
            if (found[k] != nullptr) __builtin_prefetch(found[k]);
        }
        for (size_t k = 0; k < m; ++k)
            if (found[k] != nullptr) __builtin_prefetch(*found[k]);
        for (size_t k = 0; k < m; ++k) out[start + k] = intern_hashed(in[start + k], h[k]);
    }
}

std::uint32_t StringInterner::intern_hashed(std::string_view s, std::uint32_t h) {
    size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
        const Slot& slot = slots_[i];
        if (slot.id == kEmptySlot) break;
        if (slot.hash == h && name(slot.id) == s) return slot.id;
    }
    if (size() >= kEmptySlot - 1 || s.size() > UINT32_MAX - sizeof(std::uint32_t))
        throw Error(ErrorKind::InvalidParameter, "too many or too long identifiers",
                    "At most 4294967294 distinct identifiers of up to 4 GB each.",
                    "Split the graph, for example by workspace.");
    std::uint32_t id = static_cast<std::uint32_t>(size());
    refs_.push_back(store(s));
    slots_[i] = Slot{id, h};
    return id;
}

// ---- components of an edge stream -------------------------------------------------------------

// The helper thread and what it shares with the caller (under `mutex`).
struct ComponentBuilder::Helper {
    static constexpr size_t kMaxBatches = 4;  // in flight: filled, queued, being added, spare
    std::mutex mutex;
    std::condition_variable work, freed;
    std::deque<std::unique_ptr<Batch>> queue;   // handed off, added in order
    std::vector<std::unique_ptr<Batch>> spare;  // added, to be filled again
    size_t batches = 1;                          // made in all (the caller's current one)
    bool done = false;                           // no more batches will come
    bool abandon = false;                        // stop at once: the caller is going away
    std::exception_ptr error;                    // what add_batch threw; the helper stopped
    std::thread thread;
};

ComponentBuilder::ComponentBuilder(const IdentityRules* rules, bool helper)
    : rules_(rules), current_(std::make_unique<Batch>()), helper_allowed_(helper) {}

ComponentBuilder::~ComponentBuilder() {
    if (!helper_started_) return;
    {
        std::lock_guard<std::mutex> lock(helper_->mutex);
        helper_->abandon = true;
    }
    helper_->work.notify_one();
    if (helper_->thread.joinable()) helper_->thread.join();
}

void ComponentBuilder::reserve(size_t edges) {
    names_.reserve(edges + edges / 4);
    uf_.reserve(edges + edges / 4);
    blocked_.reserve(edges + edges / 4);
}

void ComponentBuilder::add_edge(std::string_view a, std::string_view b) {
    Batch& c = *current_;
    // Edge lists are often grouped by one end (a person's identifiers one after another): an
    // end equal to the same end of the edge before takes that edge's id, with no lookup. The
    // others are hashed here, where their bytes are at hand (and not on the helper's thread).
    size_t k = c.ends.size();
    for (std::string_view v : {a, b}) {
        bool repeat = k >= 2 && v == std::string_view(c.bytes).substr(c.ends[k - 2], c.ends[k - 1] - c.ends[k - 2]);
        c.ends.push_back(c.bytes.size());
        c.bytes.append(v);
        c.repeats.push_back(repeat);
        if (!repeat) c.hashes.push_back(StringInterner::hash(v));
        ++k;
    }
    if (c.ends.size() >= 2 * kBatchEdges || c.bytes.size() >= kBatchBytes) hand_off();
}

void ComponentBuilder::add_batch(Batch& b) {
    size_t n = b.ends.size();
    b.ends.push_back(b.bytes.size());
    std::string_view all(b.bytes);
    views_.clear();
    for (size_t k = 0; k < n; ++k)
        if (!b.repeats[k]) views_.push_back(all.substr(b.ends[k], b.ends[k + 1] - b.ends[k]));
    looked_up_.resize(views_.size());
    names_.intern_many(views_.data(), views_.size(), looked_up_.data(), b.hashes.data());
    ids_.resize(n);
    for (size_t k = 0, j = 0; k < n; ++k) ids_[k] = b.repeats[k] ? ids_[k - 2] : looked_up_[j++];
    while (uf_.count() < names_.size()) {
        std::string_view name = names_.name(static_cast<std::uint32_t>(uf_.count()));
        uf_.add();
        blocked_.push_back(rules_ != nullptr && !rules_->refusal("", name).empty());
    }
    for (size_t k = 0; k + 1 < n; k += 2)
        if (!blocked_[ids_[k]] && !blocked_[ids_[k + 1]]) uf_.unite(ids_[k], ids_[k + 1]);
    b.bytes.clear();
    b.ends.clear();
    b.repeats.clear();
    b.hashes.clear();
}

void ComponentBuilder::start_helper() {
    helper_allowed_ = false;  // one try
    helper_ = std::make_unique<Helper>();
    // The thread starts with every signal blocked (it inherits this mask), so that the host's
    // handlers keep running on the host's own thread.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
        helper_->thread = std::thread([this] { run_helper(); });
        helper_started_ = true;
    } catch (const std::system_error&) {
        helper_.reset();  // no thread to be had: the batches are added here
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void ComponentBuilder::run_helper() {
    Helper& h = *helper_;
    for (;;) {
        std::unique_ptr<Batch> b;
        {
            std::unique_lock<std::mutex> lock(h.mutex);
            h.work.wait(lock, [&] { return h.abandon || h.done || !h.queue.empty(); });
            if (h.abandon || h.queue.empty()) return;
            b = std::move(h.queue.front());
            h.queue.pop_front();
        }
        try {
            add_batch(*b);
        } catch (...) {
            std::lock_guard<std::mutex> lock(h.mutex);
            h.error = std::current_exception();
            h.freed.notify_all();
            return;
        }
        {
            std::lock_guard<std::mutex> lock(h.mutex);
            h.spare.push_back(std::move(b));
        }
        h.freed.notify_one();
    }
}

void ComponentBuilder::hand_off() {
    if (!helper_started_ && helper_allowed_) start_helper();
    if (!helper_started_) {
        add_batch(*current_);
        return;
    }
    Helper& h = *helper_;
    std::unique_lock<std::mutex> lock(h.mutex);
    if (h.error) std::rethrow_exception(h.error);
    h.queue.push_back(std::move(current_));
    h.work.notify_one();
    if (h.spare.empty() && h.batches < Helper::kMaxBatches) {
        ++h.batches;
        current_ = std::make_unique<Batch>();
        return;
    }
    h.freed.wait(lock, [&] { return !h.spare.empty() || h.error; });
    if (h.error) {
        current_ = std::make_unique<Batch>();
        std::rethrow_exception(h.error);
    }
    current_ = std::move(h.spare.back());
    h.spare.pop_back();
}

void ComponentBuilder::finish() {
    if (!helper_started_) {
        if (!current_->ends.empty()) add_batch(*current_);
        return;
    }
    Helper& h = *helper_;
    {
        std::lock_guard<std::mutex> lock(h.mutex);
        if (!current_->ends.empty()) {
            h.queue.push_back(std::move(current_));
            current_ = std::make_unique<Batch>();
        }
        h.done = true;
    }
    h.work.notify_one();
    h.thread.join();
    if (h.error) std::rethrow_exception(h.error);
}

std::vector<std::uint32_t> ComponentBuilder::smallest_names() {
    std::vector<std::uint32_t> label(names_.size(), UINT32_MAX);
    for (size_t i = 0; i < names_.size(); ++i) {
        if ((i & 0xFFFF) == 0) check_for_cancel();
        std::string_view name = names_.name(static_cast<std::uint32_t>(i));
        std::uint32_t& best = label[uf_.find(i)];
        if (best == UINT32_MAX || name < names_.name(best)) best = static_cast<std::uint32_t>(i);
    }
    for (size_t i = 0; i < names_.size(); ++i) label[i] = label[uf_.find(i)];
    return label;
}

// ---- identity graph -------------------------------------------------------------------------

size_t IdentityGraph::add_profile(std::int64_t profile_id, const std::vector<std::pair<std::string, int>>& counts) {
    size_t x = uf_.add();
    Comp c;
    c.profile = profile_id;
    c.counts = counts;
    for (const auto& [type, n] : counts) c.size += n;
    comp_.push_back(std::move(c));
    return x;
}

size_t IdentityGraph::add_identifier(std::string_view type) {
    size_t x = uf_.add();
    Comp c;
    c.counts.emplace_back(std::string(type), 1);
    c.size = 1;
    comp_.push_back(std::move(c));
    return x;
}

int IdentityGraph::count_of(const Comp& c, std::string_view type) const {
    for (const auto& [t, n] : c.counts)
        if (t == type) return n;
    return 0;
}

IdentityGraph::LinkResult IdentityGraph::link(size_t a, std::string_view type_a, size_t b, std::string_view type_b) {
    LinkResult r;
    size_t ra = uf_.find(a), rb = uf_.find(b);
    if (ra == rb) {
        r.merged = true;
        return r;
    }
    const Comp& ca = comp_[ra];
    const Comp& cb = comp_[rb];
    // The strongest type whose limit the merge would break decides; the edge is refused, so the
    // weaker identifier of the two stays out of the stronger one's profile. Only a type both
    // sides hold can be broken by the merge: a profile that already holds more than a limit
    // allows (the limit was lowered since, say) takes no more of that type, but still takes
    // identifiers of other types.
    const TypeRule* broken = nullptr;
    int merged_count = 0;
    for (const auto& [type, n] : ca.counts) {
        int other = count_of(cb, type);
        const TypeRule& rule = rules_.rule(type);
        if (n > 0 && other > 0 && n + other > rule.limit && (broken == nullptr || rule.priority < broken->priority)) {
            broken = &rule;
            merged_count = n + other;
        }
    }
    if (broken != nullptr) {
        const TypeRule& ra_rule = rules_.rule(type_a);
        const TypeRule& rb_rule = rules_.rule(type_b);
        std::string_view weaker = ra_rule.priority > rb_rule.priority ? type_a : type_b;
        r.reason = "limit: a profile holds at most " + std::to_string(broken->limit) + " " + broken->type +
                   " (the merge would make " + std::to_string(merged_count) + "); " + std::string(weaker) +
                   " not merged";
        return r;
    }
    if (ca.size + cb.size > rules_.max_component_size) {
        r.reason = "guardrail: the merged profile would hold " + std::to_string(ca.size + cb.size) +
                   " identifiers (more than " + std::to_string(rules_.max_component_size) + ")";
        return r;
    }
    Comp merged;
    merged.size = ca.size + cb.size;
    merged.counts = ca.counts;
    for (const auto& [type, n] : cb.counts) {
        auto it = std::find_if(merged.counts.begin(), merged.counts.end(), [&](const auto& p) { return p.first == type; });
        if (it == merged.counts.end()) merged.counts.emplace_back(type, n);
        else it->second += n;
    }
    std::int64_t pa = ca.profile, pb = cb.profile;
    if (pa != 0 && pb != 0) {
        r.survivor = std::min(pa, pb);  // the oldest profile id survives
        r.absorbed = std::max(pa, pb);
    }
    merged.profile = pa == 0 ? pb : pb == 0 ? pa : std::min(pa, pb);
    size_t root = uf_.unite(ra, rb);
    comp_[root] = std::move(merged);
    r.merged = true;
    r.changed = true;
    return r;
}

std::vector<size_t> shortest_path(size_t nodes, const std::vector<std::pair<size_t, size_t>>& edges, size_t from,
                                  size_t to) {
    if (from >= nodes || to >= nodes || from == to) return {};
    std::vector<std::vector<std::pair<size_t, size_t>>> adjacent(nodes);  // (neighbour, edge)
    for (size_t i = 0; i < edges.size(); ++i) {
        adjacent[edges[i].first].emplace_back(edges[i].second, i);
        adjacent[edges[i].second].emplace_back(edges[i].first, i);
    }
    const size_t none = static_cast<size_t>(-1);
    std::vector<size_t> via(nodes, none);  // the edge a node was first reached by
    std::vector<bool> seen(nodes, false);
    std::deque<size_t> queue{from};
    seen[from] = true;
    while (!queue.empty() && !seen[to]) {
        size_t n = queue.front();
        queue.pop_front();
        for (auto [next, edge] : adjacent[n]) {
            if (seen[next]) continue;
            seen[next] = true;
            via[next] = edge;
            queue.push_back(next);
        }
    }
    if (!seen[to]) return {};
    std::vector<size_t> path;
    for (size_t n = to; n != from;) {
        size_t e = via[n];
        path.push_back(e);
        n = edges[e].first == n ? edges[e].second : edges[e].first;
    }
    std::reverse(path.begin(), path.end());
    return path;
}

}  // namespace cdp

// ---- identifiers of an event ----------------------------------------------------------------

namespace cdp {

namespace {

std::string_view string_at(const rapidjson::Value* obj, const char* name) {
    if (obj == nullptr || !obj->IsObject()) return {};
    auto it = obj->FindMember(name);
    if (it == obj->MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value* object_at(const rapidjson::Value* obj, const char* name) {
    if (obj == nullptr || !obj->IsObject()) return nullptr;
    auto it = obj->FindMember(name);
    return it != obj->MemberEnd() && it->value.IsObject() ? &it->value : nullptr;
}

}  // namespace

std::vector<Identifier> event_identifiers(const Event& e, const IdentityRules& rules, std::string_view default_country,
                                          std::vector<std::pair<Identifier, std::string>>* refused) {
    std::vector<Identifier> out;
    auto add = [&](std::string_view type, std::string_view raw) {
        if (raw.empty()) return;
        std::optional<std::string> value = normalise_identifier(type, raw, default_country);
        Identifier id{std::string(type), value ? *value : std::string(raw)};
        std::string why = value ? rules.refusal(type, *value) : "not a valid " + std::string(type);
        if (!why.empty()) {
            if (refused != nullptr) refused->emplace_back(std::move(id), std::move(why));
            return;
        }
        if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(std::move(id));
    };
    add("user_id", e.user_id);
    add("anonymous_id", e.anonymous_id);
    if (e.type == EventType::Alias) add("anonymous_id", e.previous_id);
    add("device_id", string_at(object_at(e.context, "device"), "id"));
    const rapidjson::Value* traits = e.type == EventType::Identify ? e.traits : object_at(e.context, "traits");
    add("email", string_at(traits, "email"));
    add("phone", string_at(traits, "phone"));
    for (const TypeRule& custom : rules.types()) {
        if (custom.trait_key.empty() || traits == nullptr || !traits->IsObject()) continue;
        auto it = traits->FindMember(rapidjson::StringRef(custom.trait_key.data(), custom.trait_key.size()));
        if (it == traits->MemberEnd()) continue;
        if (it->value.IsString()) add(custom.type, {it->value.GetString(), it->value.GetStringLength()});
        else if (it->value.IsInt64()) add(custom.type, std::to_string(it->value.GetInt64()));
        else if (it->value.IsUint64()) add(custom.type, std::to_string(it->value.GetUint64()));
    }
    if (e.context != nullptr && e.context->IsObject()) {
        auto ext = e.context->FindMember("externalIds");
        if (ext != e.context->MemberEnd() && ext->value.IsArray()) {
            for (const rapidjson::Value& x : ext->value.GetArray()) {
                std::string type = lowercase(string_at(&x, "type"));
                if (!type.empty()) add(type, string_at(&x, "id"));
            }
        }
    }
    std::stable_sort(out.begin(), out.end(), [&](const Identifier& a, const Identifier& b) {
        return rules.rule(a.type).priority < rules.rule(b.type).priority;
    });
    return out;
}

}  // namespace cdp
