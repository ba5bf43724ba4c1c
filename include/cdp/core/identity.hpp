// Identity resolution: identifiers normalised per type, rules that say which values may link and
// how many of each type one profile may hold, and a union-find that merges components under
// those rules. Pure C++: the PostgreSQL layer loads the components a batch touches, runs the
// graph here and writes back what changed.
#pragma once
#include "cdp/core/pure.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace cdp {

struct Event;

// ---- normalisation --------------------------------------------------------------------------

// "  Sarah@Example.COM " -> "sarah@example.com"; nothing when it is not an address.
std::optional<std::string> normalise_email(std::string_view raw);

// A phone number in E.164 ("+4915123456789"). Numbers written without a country code take the
// default country's calling code (ISO 3166 alpha-2, such as "DE"; "" means none: such numbers are
// then not identifiers) and lose a national trunk prefix 0. Nothing when it is not a number.
std::optional<std::string> normalise_phone(std::string_view raw, std::string_view default_country);

// The calling code of an ISO 3166 alpha-2 country ("DE" -> "49"), or "" when unknown.
std::string_view calling_code(std::string_view country) noexcept;

// The normalised value for an identifier type: email and phone as above, anything else trimmed.
std::optional<std::string> normalise_identifier(std::string_view type, std::string_view raw,
                                                std::string_view default_country);

// ---- rules ----------------------------------------------------------------------------------

struct TypeRule {
    std::string type;
    int priority = 100;     // 1 is the strongest; a merge that breaks a limit refuses the weaker side
    int limit = 5;          // how many values of the type one profile may hold
    std::string include;    // a value must match this regex (RE2) when set
    std::string exclude;    // and must not match this one
    std::string trait_key;  // a custom type: its values come from this key of the traits
};

class IdentityRules {
public:
    IdentityRules();  // the defaults: user_id 1/1, email 2/5, phone 3/5, device_id 4/5, anonymous_id 5/5
    ~IdentityRules();
    IdentityRules(IdentityRules&&) noexcept;
    IdentityRules& operator=(IdentityRules&&) noexcept;

    // Replaces the rule of a type (and its regexes, which must compile: else cdp::Error).
    void set_type(TypeRule rule);
    void block_value(std::string value);      // compared case-insensitively, after trimming
    void block_pattern(const std::string& regex);  // RE2, must match the whole value
    int max_component_size = 100;

    // The rule of a type (unknown types get priority 100, limit 5).
    const TypeRule& rule(std::string_view type) const;
    const std::vector<TypeRule>& types() const { return types_; }
    // Why a normalised value of the type may not link ("" when it may).
    std::string refusal(std::string_view type, std::string_view value) const;

    static const std::vector<std::string>& default_blocklist();
    static const std::vector<std::string>& default_block_patterns();

private:
    struct Compiled;
    std::vector<TypeRule> types_;
    TypeRule unknown_;
    std::unordered_set<std::string> blocked_;
    std::unique_ptr<Compiled> compiled_;
};

// ---- union-find -----------------------------------------------------------------------------

// Plain union-find over 0..n-1 with path halving and union by size; 32-bit indexes, so that a
// graph of millions of nodes stays small and cache-friendly.
class UnionFind {
public:
    explicit UnionFind(size_t n = 0);
    size_t add();  // a new singleton; returns its index
    size_t find(size_t x) {
        std::uint32_t i = static_cast<std::uint32_t>(x);
        while (parent_[i] != i) {
            parent_[i] = parent_[parent_[i]];  // path halving
            i = parent_[i];
        }
        return i;
    }
    // Joins the sets of a and b; returns the new root (or the common one).
    size_t unite(size_t a, size_t b);
    size_t size_of(size_t x) { return size_[find(x)]; }
    size_t count() const { return parent_.size(); }
    void reserve(size_t n) {
        parent_.reserve(n);
        size_.reserve(n);
    }

private:
    std::vector<std::uint32_t> parent_;
    std::vector<std::uint32_t> size_;
};

// Interns strings as dense ids 0..n-1: one byte arena and an open-addressing table, so millions
// of identifiers cost no allocation each (the way a graph over string ids should start).
class StringInterner {
public:
    // The id of s, adding it when new.
    std::uint32_t intern(std::string_view s);
    // The ids of n strings at once (faster for many: the lookups' cache misses overlap). With
    // `hashes`, each string's hash() as computed before (where its bytes were at hand).
    void intern_many(const std::string_view* in, size_t n, std::uint32_t* out, const std::uint32_t* hashes = nullptr);
    static std::uint32_t hash(std::string_view s);
    static constexpr size_t kBatch = 64;
    // The bytes of an id (stable for the interner's lifetime).
    std::string_view name(std::uint32_t id) const {
        std::uint32_t size;
        std::memcpy(&size, refs_[id], sizeof size);
        return {refs_[id] + sizeof size, size};
    }
    size_t size() const { return refs_.size(); }
    // Room for n strings without growing.
    void reserve(size_t n);

private:
    struct Slot {
        std::uint32_t id;  // kEmpty when free
        std::uint32_t hash;
    };
    const char* store(std::string_view s);
    void grow(size_t capacity = 0);  // to `capacity` slots (a power of two); 0: twice as many
    std::uint32_t intern_hashed(std::string_view s, std::uint32_t hash);
    // The strings, each its length (4 bytes) then its bytes, in chunks that never move. Mapped
    // from the system and unmapped when freed, not taken from malloc: a ComponentBuilder's helper
    // thread makes them, and glibc would keep that thread's freed memory for good.
    struct Unmap {
        size_t bytes;
        void operator()(char* p) const;
    };
    std::vector<std::unique_ptr<char[], Unmap>> chunks_;
    size_t chunk_used_ = 0, chunk_size_ = 0;
    std::vector<const char*> refs_;  // by id: where its string is
    std::vector<Slot> slots_;
};

// The connected components of a stream of edges between string identifiers (what
// cdp.connected_components computes): each end interned as a dense id, each edge a union. Edges
// are kept back to back and added a batch at a time. With a helper thread the batches are added
// there while the caller reads the next edges: the helper touches only this object's memory,
// runs with every signal blocked, and is joined by finish() or the destructor.
class ComponentBuilder {
public:
    // rules: when given, an end the rules refuse (untyped: the blocklist) links nothing.
    explicit ComponentBuilder(const IdentityRules* rules = nullptr, bool helper = false);
    ~ComponentBuilder();  // stops the helper (queued batches are dropped) and joins it
    ComponentBuilder(const ComponentBuilder&) = delete;
    ComponentBuilder& operator=(const ComponentBuilder&) = delete;

    // Room for about `edges` edges (their nodes: people have a handful of identifiers each).
    void reserve(size_t edges);
    void add_edge(std::string_view a, std::string_view b);
    // Every edge is in: adds the last batch and waits for the helper; throws what it threw (then
    // or at an earlier add_edge).
    void finish();
    // Whether a helper thread ran (it starts at the first full batch, if allowed and possible).
    bool helped() const { return helper_started_; }

    // After finish(): the nodes by id, and by node id, its component named by its smallest
    // node (that node's id). Checks for a cancel now and then (check_for_cancel).
    const StringInterner& names() const { return names_; }
    std::vector<std::uint32_t> smallest_names();

    // A batch holds this many edges, or about this many bytes of ends.
    static constexpr size_t kBatchEdges = 4096;
    static constexpr size_t kBatchBytes = 1 << 20;

private:
    struct Batch {
        std::string bytes;                  // the ends back to back
        std::vector<size_t> ends;           // where each end starts, two per edge
        std::vector<bool> repeats;          // per end: the same as the edge before's (no lookup)
        std::vector<std::uint32_t> hashes;  // of the other ends, in order
    };
    struct Helper;
    void add_batch(Batch& b);  // interns and unites (on the helper thread, when there is one)
    void hand_off();           // the current batch to the helper, or added here
    void start_helper();
    void run_helper();

    const IdentityRules* rules_;
    StringInterner names_;
    UnionFind uf_;
    std::vector<bool> blocked_;
    // add_batch's scratch
    std::vector<std::string_view> views_;
    std::vector<std::uint32_t> looked_up_, ids_;

    std::unique_ptr<Batch> current_;
    bool helper_allowed_;
    bool helper_started_ = false;
    std::unique_ptr<Helper> helper_;
};

// The identity graph of one batch: elements are existing profiles (with how many identifiers of
// each type they hold) and new identifiers; links merge them unless a rule forbids it.
class IdentityGraph {
public:
    explicit IdentityGraph(const IdentityRules& rules) : rules_(rules) {}

    // An existing profile and its identifier counts per type; returns its element.
    size_t add_profile(std::int64_t profile_id, const std::vector<std::pair<std::string, int>>& counts);
    // A new identifier of the type, in no profile yet.
    size_t add_identifier(std::string_view type);

    struct LinkResult {
        bool merged = false;      // the two are in one component now (or already were)
        bool changed = false;     // this link joined two components
        std::string reason;       // why not, when not merged
        std::int64_t survivor = 0, absorbed = 0;  // existing profiles joined by this link, if two were
    };
    // Links element a (an identifier of type_a) with element b (of type_b).
    LinkResult link(size_t a, std::string_view type_a, size_t b, std::string_view type_b);

    size_t find(size_t x) { return uf_.find(x); }
    // The oldest (smallest) existing profile id in x's component, 0 when it has none.
    std::int64_t profile_of(size_t x) { return comp_[uf_.find(x)].profile; }

private:
    struct Comp {
        std::int64_t profile = 0;
        std::vector<std::pair<std::string, int>> counts;  // identifiers per type
        int size = 0;                                      // identifiers in all
    };
    int count_of(const Comp& c, std::string_view type) const;
    const IdentityRules& rules_;
    UnionFind uf_;
    std::vector<Comp> comp_;  // valid at roots
};

// ---- identifiers of an event ---------------------------------------------------------------

struct Identifier {
    std::string type, value;
    bool operator==(const Identifier& o) const { return type == o.type && value == o.value; }
    bool operator<(const Identifier& o) const { return type != o.type ? type < o.type : value < o.value; }
};

// The identifiers an event carries, normalised, strongest first (by rule priority): userId,
// anonymousId, an alias's previousId (as an anonymous_id), context.device.id (device_id), email
// and phone from the traits (identify) or context.traits, the trait key of every custom type
// (TypeRule::trait_key; a string or an integer), and context.externalIds [{id, type}].
// Values the rules refuse are left out and, with the reason, added to `refused` when given.
std::vector<Identifier> event_identifiers(const Event& e, const IdentityRules& rules, std::string_view default_country,
                                          std::vector<std::pair<Identifier, std::string>>* refused = nullptr);

// The shortest path of edges from `from` to `to` in an undirected graph given as edge pairs;
// the edge indexes along it, empty when they are not connected (or are the same node).
std::vector<size_t> shortest_path(size_t nodes, const std::vector<std::pair<size_t, size_t>>& edges, size_t from,
                                  size_t to);

}  // namespace cdp
