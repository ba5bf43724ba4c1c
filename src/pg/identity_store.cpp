#include "cdp/pg/identity_store.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cdp/pg/datums.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/settings.hpp"
#include "cdp/pg/spi.hpp"

namespace cdp::pg {

namespace {

constexpr int64 kIdentityLockClass = 0x63647069;  // "cdpi": the advisory lock space of identity

// Column `col` (1-based) of row `r` of the last SPI result.
Datum spi_value(uint64 r, int col, bool* isnull) {
    return SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col, isnull);
}

// An edge seen in the batch, between identifiers a < b.
struct EdgeSeen {
    std::string source, event_id;
    Micros first_seen = 0, last_seen = 0;
    bool merged = false;
    std::string reason;
    bool new_end = false;  // an end was new to the graph: the edge cannot be stored yet
    int held_by = -1;      // the row of its a end (0) or b end (1) holds it; -1: cdp_internal.identity_edges
};

constexpr size_t kNone = static_cast<size_t>(-1);

struct IdentifierHash {
    size_t operator()(const Identifier& id) const noexcept {
        return std::hash<std::string_view>{}(id.value) * 31 + std::hash<std::string_view>{}(id.type);
    }
};

// A pair of distinct identifiers by their places (a before b).
using Link = std::pair<size_t, size_t>;

// All C++ state of one stitch, owned by a memory context. The batch's distinct identifiers are
// known by their places in key order (type, then value, as the primary key holds them), so
// comparing places compares identifiers, and maps keyed by places iterate in key order.
struct StitchWork {
    std::vector<Identifier> distinct;          // in key order
    std::vector<std::vector<size_t>> at;       // per event: the places of its identifiers, strongest first
    std::vector<size_t> first_event;           // per distinct identifier
    std::vector<size_t> arrival;               // the places in the order the identifiers came
    std::vector<int64> existing_profile;       // per distinct identifier: 0 when new
    std::map<int64, std::vector<std::pair<std::string, int>>> counts;  // loaded profiles
    std::map<int64, size_t> profile_element;
    std::unique_ptr<IdentityGraph> graph;
    std::vector<size_t> element;               // per distinct identifier
    std::map<Link, EdgeSeen> edges;
    std::vector<Link> candidates;  // distinct pairs the events link
    std::set<Link> cut;            // of those, cut by unlink or block
    std::map<Link, int> stored_held;  // of those, held in an end's row: which end (0: a, 1: b)
    std::vector<size_t> holds;        // per new identifier: the other end of the edge its row holds
    struct Merge {
        int64 survivor, absorbed;
        Identifier a, b;
        std::string event_id;
    };
    std::vector<Merge> merges;
    std::map<size_t, int64> root_profile;      // graph root -> final profile id
    std::vector<size_t> new_roots;             // roots that need a new profile id
};

// An identity statement's plan, and the size of cdp.identifiers it was made at.
struct Statement {
    SPIPlanPtr plan = nullptr;
    BlockNumber planned_blocks = 0;
};

// Identity statements run over tables that start empty and grow to millions of rows: a plan is
// made again whenever cdp.identifiers has doubled since it was made (the other identity tables
// grow with it), so a plan for an empty table does not outlive it, and a large graph is not
// planned again for every batch.
void run(Statement* s, const char* sql, int nargs, Oid* types, Datum* args) {
    spi_run_cached_growing(&s->plan, &s->planned_blocks, table_oid("cdp", "identifiers"), sql, nargs, types, args,
                           nullptr, false);
}

// Writes the batch's edges that have an end new to the graph (`fresh`), or the others.
void write_edges(StitchWork* w, int32 workspace, bool fresh, Statement* plan) {
    int total = static_cast<int>(w->edges.size());
    Datum *at = datums(total), *av = datums(total), *bt = datums(total), *bv = datums(total), *src = datums(total),
          *evid = datums(total), *first = datums(total), *last = datums(total), *merged = datums(total),
          *reason = datums(total);
    int ne = 0;
    for (const auto& [key, edge] : w->edges) {
        if (edge.new_end != fresh || edge.held_by >= 0) continue;
        const Identifier &a = w->distinct[key.first], &b = w->distinct[key.second];
        at[ne] = text_datum(a.type);
        av[ne] = text_datum(a.value);
        bt[ne] = text_datum(b.type);
        bv[ne] = text_datum(b.value);
        src[ne] = text_datum(edge.source);
        evid[ne] = text_datum(edge.event_id);
        first[ne] = TimestampTzGetDatum(to_postgres(edge.first_seen));
        last[ne] = TimestampTzGetDatum(to_postgres(edge.last_seen));
        merged[ne] = BoolGetDatum(edge.merged);
        reason[ne] = text_datum(edge.reason);
        ++ne;
    }
    if (ne == 0) return;
    Oid argtypes[] = {INT4OID,      TEXTARRAYOID,        TEXTARRAYOID,        TEXTARRAYOID,
                      TEXTARRAYOID, TEXTARRAYOID,        TEXTARRAYOID,        TIMESTAMPTZARRAYOID,
                      TIMESTAMPTZARRAYOID, BOOLARRAYOID, TEXTARRAYOID};
    Datum args[] = {Int32GetDatum(workspace),
                    text_array(at, ne),
                    text_array(av, ne),
                    text_array(bt, ne),
                    text_array(bv, ne),
                    text_array(src, ne),
                    text_array(evid, ne),
                    timestamptz_array(first, ne),
                    timestamptz_array(last, ne),
                    PointerGetDatum(construct_array(merged, ne, BOOLOID, 1, true, TYPALIGN_CHAR)),
                    text_array(reason, ne)};
    // A refused edge is recorded with the profiles of its ends (stored by now).
#define CDP_REFUSED_CHANGE                                                                                       \
    " INSERT INTO cdp.identity_changes (workspace_id, kind, a_type, a_value, b_type, b_value, reason, event_id,"  \
    "  profile_id, other_profile_id)"                                                                            \
    " SELECT $1, 'refused', up.a_type, up.a_value, up.b_type, up.b_value, up.reason, up.event_id,"               \
    "  (SELECT profile_id FROM cdp.identifiers i WHERE i.workspace_id = $1 AND i.id_type = up.a_type"            \
    "    AND i.id_value = up.a_value),"                                                                          \
    "  (SELECT profile_id FROM cdp.identifiers i WHERE i.workspace_id = $1 AND i.id_type = up.b_type"            \
    "    AND i.id_value = up.b_value)"
    if (fresh) {
        run(plan,
            "WITH up AS (SELECT at AS a_type, av AS a_value, bt AS b_type, bv AS b_value, s, e AS event_id, f, l,"
            "  m AS merged, nullif(r, '') AS reason"
            "  FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS u(at, av, bt, bv, s, e, f, l, m, r)),"
            " ins AS (INSERT INTO cdp_internal.identity_edges (workspace_id, a_type, a_value, b_type, b_value, source, event_id,"
            "  first_seen, last_seen, merged, reason)"
            "  SELECT $1, a_type, a_value, b_type, b_value, s, event_id, f, l, merged, reason FROM up)"
            CDP_REFUSED_CHANGE " FROM up WHERE NOT up.merged",
            11, argtypes, args);
    } else {
        run(plan,
            "WITH up AS ("
            " INSERT INTO cdp_internal.identity_edges AS x (workspace_id, a_type, a_value, b_type, b_value, source, event_id,"
            "  first_seen, last_seen, merged, reason)"
            " SELECT $1, at, av, bt, bv, s, e, f, l, m, nullif(r, '')"
            " FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS u(at, av, bt, bv, s, e, f, l, m, r)"
            " ON CONFLICT (workspace_id, a_type, a_value, b_type, b_value) DO UPDATE SET"
            "  first_seen = least(x.first_seen, excluded.first_seen),"
            "  last_seen = greatest(x.last_seen, excluded.last_seen),"
            "  merged = x.merged OR excluded.merged,"
            "  reason = CASE WHEN x.merged OR excluded.merged THEN NULL"
            "   WHEN x.reason IN ('unlinked', 'blocked') THEN x.reason ELSE excluded.reason END"
            " RETURNING x.a_type, x.a_value, x.b_type, x.b_value, x.event_id, x.merged, x.reason, (x.xmax = 0) AS inserted)"
            CDP_REFUSED_CHANGE " FROM up WHERE up.inserted AND NOT up.merged",
            11, argtypes, args);
    }
#undef CDP_REFUSED_CHANGE
}

// Brings the first and last seen of the batch's stored edges held in identifiers' rows up to
// date, where the batch moves them.
void touch_held_edges(StitchWork* w, int32 workspace, Statement* plan) {
    int total = static_cast<int>(w->edges.size());
    Datum *ht = datums(total), *hv = datums(total), *ot = datums(total), *ov = datums(total), *first = datums(total),
          *last = datums(total);
    int ne = 0;
    for (const auto& [key, edge] : w->edges) {
        if (edge.new_end || edge.held_by < 0) continue;
        const Identifier& holder = w->distinct[edge.held_by == 0 ? key.first : key.second];
        const Identifier& other = w->distinct[edge.held_by == 0 ? key.second : key.first];
        ht[ne] = text_datum(holder.type);
        hv[ne] = text_datum(holder.value);
        ot[ne] = text_datum(other.type);
        ov[ne] = text_datum(other.value);
        first[ne] = TimestampTzGetDatum(to_postgres(edge.first_seen));
        last[ne] = TimestampTzGetDatum(to_postgres(edge.last_seen));
        ++ne;
    }
    if (ne == 0) return;
    Oid argtypes[] = {INT4OID,      TEXTARRAYOID,        TEXTARRAYOID,       TEXTARRAYOID,
                      TEXTARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
    Datum args[] = {Int32GetDatum(workspace), text_array(ht, ne),          text_array(hv, ne),
                    text_array(ot, ne),       text_array(ov, ne),          timestamptz_array(first, ne),
                    timestamptz_array(last, ne)};
    run(plan,
        "UPDATE cdp.identifiers i SET via_first_seen = least(i.via_first_seen, u.f),"
        " via_last_seen = greatest(i.via_last_seen, u.l)"
        " FROM unnest($2, $3, $4, $5, $6, $7) AS u(ht, hv, ot, ov, f, l)"
        " WHERE i.workspace_id = $1 AND i.id_type = u.ht AND i.id_value = u.hv AND i.via_type = u.ot"
        "  AND i.via_value = u.ov AND (u.f < i.via_first_seen OR u.l > i.via_last_seen)",
        7, argtypes, args);
}

}  // namespace

void lock_identity(int32 workspace) {
    static Statement plan;
    Oid types[] = {INT4OID, INT4OID};
    Datum args[] = {Int32GetDatum(static_cast<int32>(kIdentityLockClass)), Int32GetDatum(workspace)};
    run(&plan, "SELECT pg_catalog.pg_advisory_xact_lock($1, $2)", 2, types, args);
}

IdentityRules* load_identity_rules(int32 workspace, MemoryContext owner) {
    static Statement rules_plan, block_plan;
    ContextOwned<IdentityRules>* holder = make_context_owned<IdentityRules>(owner);
    IdentityRules* rules = holder->object;
    Oid types[] = {INT4OID};
    Datum args[] = {Int32GetDatum(workspace)};
    run(&rules_plan,
        "SELECT id_type, priority, max_per_profile, coalesce(include_pattern, ''), coalesce(exclude_pattern, ''),"
        " coalesce(trait_key, '') FROM cdp.identity_rules WHERE workspace_id = $1",
        1, types, args);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool n1, n2, n3, n4, n5, n6;
        Datum type = spi_value(r, 1, &n1), priority = spi_value(r, 2, &n2), limit = spi_value(r, 3, &n3),
              include = spi_value(r, 4, &n4), exclude = spi_value(r, 5, &n5), trait_key = spi_value(r, 6, &n6);
        guarded([&] {
            rules->set_type({text_string(type), DatumGetInt32(priority), DatumGetInt32(limit), text_string(include),
                             text_string(exclude), text_string(trait_key)});
        });
    }
    run(&block_plan,
        "SELECT value, is_pattern FROM cdp.identity_blocklist WHERE workspace_id = $1", 1, types, args);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool n1, n2;
        Datum value = spi_value(r, 1, &n1), is_pattern = spi_value(r, 2, &n2);
        guarded([&] {
            if (DatumGetBool(is_pattern)) rules->block_pattern(text_string(value));
            else rules->block_value(text_string(value));
        });
    }
    return rules;
}

void stitch_events(std::vector<Event>& events, int32 workspace, const IdentityRules& rules,
                   std::vector<std::pair<int64, int64>>* moved) {
    static Statement stored_edges_plan, load_plan, counts_plan, ids_plan, profiles_plan, move_plan, new_edges_plan,
        edges_plan, held_plan, changes_plan;
    const char* country = setting_phone_country != nullptr ? setting_phone_country : "";
    MemoryContext context = CurrentMemoryContext;
    StitchWork* w = make_context_owned<StitchWork>(context)->object;

    // The identifiers of every event, and the distinct ones in key order: probes and inserts in
    // that order walk the primary key from one end to the other, each descent through pages the
    // one before has just read.
    guarded([&] {
        std::vector<std::vector<Identifier>> ids;
        std::unordered_map<Identifier, size_t, IdentifierHash> place;  // order of arrival, then place
        std::vector<size_t> seen_first;
        ids.reserve(events.size());
        for (size_t i = 0; i < events.size(); ++i) {
            ids.push_back(event_identifiers(events[i], rules, country));
            for (const Identifier& id : ids.back()) {
                if (place.emplace(id, seen_first.size()).second) {
                    w->distinct.push_back(id);
                    seen_first.push_back(i);
                }
            }
        }
        std::vector<size_t> order(w->distinct.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return w->distinct[x] < w->distinct[y]; });
        std::vector<Identifier> sorted;
        sorted.reserve(order.size());
        w->arrival.resize(order.size());
        for (size_t k = 0; k < order.size(); ++k) {
            w->arrival[order[k]] = k;
            sorted.push_back(std::move(w->distinct[order[k]]));
            w->first_event.push_back(seen_first[order[k]]);
            place.at(sorted.back()) = k;
        }
        w->distinct = std::move(sorted);
        w->existing_profile.assign(w->distinct.size(), 0);
        w->at.reserve(events.size());
        for (const std::vector<Identifier>& event_ids : ids) {
            std::vector<size_t>& at = w->at.emplace_back();
            for (const Identifier& id : event_ids) at.push_back(place.at(id));
            for (size_t j = 1; j < at.size(); ++j) w->candidates.push_back(std::minmax(at[0], at[j]));
        }
        std::sort(w->candidates.begin(), w->candidates.end());
        w->candidates.erase(std::unique(w->candidates.begin(), w->candidates.end()), w->candidates.end());
    });
    int n = static_cast<int>(w->distinct.size());
    if (n == 0) return;

    // Which of them exist, and in which profiles.
    {
        Datum *types = datums(n), *values = datums(n);
        for (int i = 0; i < n; ++i) {
            types[i] = text_datum(w->distinct[i].type);
            values[i] = text_datum(w->distinct[i].value);
        }
        Oid argtypes[] = {INT4OID, TEXTARRAYOID, TEXTARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), text_array(types, n), text_array(values, n)};
        run(&load_plan,
            "SELECT u.ord::int, i.profile_id FROM unnest($2, $3) WITH ORDINALITY AS u(t, v, ord)"
            // OFFSET 0 keeps the subquery from being flattened into a join: one probe of the
            // primary key per identifier, whatever the table held when the plan was made.
            " CROSS JOIN LATERAL (SELECT profile_id FROM cdp.identifiers i"
            "  WHERE i.workspace_id = $1 AND i.id_type = u.t AND i.id_value = u.v OFFSET 0) i",
            3, argtypes, args);
        for (uint64 r = 0; r < SPI_processed; ++r) {
            bool n1, n2;
            int ord = DatumGetInt32(spi_value(r, 1, &n1));
            Datum profile = spi_value(r, 2, &n2);
            // A known identifier without a profile was blocked after it was stored: it links nothing.
            w->existing_profile[ord - 1] = n2 ? -1 : DatumGetInt64(profile);
        }
    }
    // What the links need looked up, from the profiles of their ends:
    // - the edges between two stored, unblocked identifiers (`probed`: their places), as stored:
    //   cut (cdp.unlink, cdp.block_identifier), which stay cut whatever events say later (an
    //   edge with a blocked end is refused as such), or held in an end's row;
    // - the counts of the profiles a link may merge or add to: those of identifiers that some
    //   event links to a new identifier or to another profile (a batch of anonymous page views
    //   needs none, nor does a signed-in user's event linking two ids the profile holds).
    int nc = 0, np = 0;
    int* probed = static_cast<int*>(palloc(sizeof(int) * (w->candidates.size() + 1)));
    Datum* profiles = datums(n);
    guarded([&] {
        std::vector<int64> ids;
        for (size_t i = 0; i < w->candidates.size(); ++i) {
            int64 pa = w->existing_profile[w->candidates[i].first], pb = w->existing_profile[w->candidates[i].second];
            if (pa > 0 && pb > 0) probed[nc++] = static_cast<int>(i);
            if (pa == pb) continue;
            if (pa > 0) ids.push_back(pa);
            if (pb > 0) ids.push_back(pb);
        }
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        for (int64 p : ids) profiles[np++] = Int64GetDatum(p);
    });
    if (nc > 0) {
        Datum *at = datums(nc), *av = datums(nc), *bt = datums(nc), *bv = datums(nc);
        for (int i = 0; i < nc; ++i) {
            const Identifier &a = w->distinct[w->candidates[probed[i]].first],
                             &b = w->distinct[w->candidates[probed[i]].second];
            at[i] = text_datum(a.type);
            av[i] = text_datum(a.value);
            bt[i] = text_datum(b.type);
            bv[i] = text_datum(b.value);
        }
        Oid argtypes[] = {INT4OID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), text_array(at, nc), text_array(av, nc), text_array(bt, nc),
                        text_array(bv, nc)};
        // k: -1 cut, 0 held by the a end's row, 1 by the b end's (an edge is in one place)
        run(&stored_edges_plan,
            "SELECT u.ord::int, e.k FROM unnest($2, $3, $4, $5) WITH ORDINALITY AS u(at, av, bt, bv, ord)"
            " CROSS JOIN LATERAL (SELECT -1 AS k FROM cdp_internal.identity_edges e WHERE e.workspace_id = $1"
            "  AND e.a_type = u.at AND e.a_value = u.av AND e.b_type = u.bt AND e.b_value = u.bv"
            "  AND NOT e.merged AND e.reason IN ('unlinked', 'blocked')"
            "  UNION ALL SELECT 0 FROM cdp.identifiers i WHERE i.workspace_id = $1 AND i.id_type = u.at"
            "  AND i.id_value = u.av AND i.via_type = u.bt AND i.via_value = u.bv"
            "  UNION ALL SELECT 1 FROM cdp.identifiers i WHERE i.workspace_id = $1 AND i.id_type = u.bt"
            "  AND i.id_value = u.bv AND i.via_type = u.at AND i.via_value = u.av OFFSET 0) e",  // probes, as above
            5, argtypes, args);
        for (uint64 r = 0; r < SPI_processed; ++r) {
            bool n1, n2;
            int ord = DatumGetInt32(spi_value(r, 1, &n1));
            int k = DatumGetInt32(spi_value(r, 2, &n2));
            guarded([&] {
                const Link& link = w->candidates[probed[ord - 1]];
                if (k < 0) w->cut.insert(link);
                else w->stored_held[link] = k;
            });
        }
    }

    // What the profiles a link may grow hold, by type.
    if (np > 0) {
        Oid argtypes[] = {INT4OID, INT8ARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(profiles, np)};
        run(&counts_plan,
            "SELECT i.profile_id, i.id_type, count(*)::int FROM cdp.identifiers i"
            " WHERE i.workspace_id = $1 AND i.profile_id = ANY ($2) GROUP BY 1, 2",
            2, argtypes, args);
        for (uint64 r = 0; r < SPI_processed; ++r) {
            bool n1, n2, n3;
            int64 profile = DatumGetInt64(spi_value(r, 1, &n1));
            Datum type = spi_value(r, 2, &n2);
            int count = DatumGetInt32(spi_value(r, 3, &n3));
            guarded([&] { w->counts[profile].emplace_back(text_string(type), count); });
        }
    }

    // The graph: loaded profiles and new identifiers; each event links its strongest identifier
    // with each of its others, in event order.
    guarded([&] {
        w->graph = std::make_unique<IdentityGraph>(rules);
        for (const auto& [profile, counts] : w->counts) w->profile_element[profile] = w->graph->add_profile(profile, counts);
        w->element.resize(w->distinct.size());
        for (size_t i = 0; i < w->distinct.size(); ++i) {
            int64 p = w->existing_profile[i];
            if (p <= 0) {
                w->element[i] = w->graph->add_identifier(w->distinct[i].type);
                continue;
            }
            auto it = w->profile_element.find(p);
            if (it == w->profile_element.end())  // no link may grow it: its counts are not needed
                it = w->profile_element.emplace(p, w->graph->add_profile(p, {})).first;
            w->element[i] = it->second;
        }
        for (size_t e = 0; e < events.size(); ++e) {
            const std::vector<size_t>& at = w->at[e];
            for (size_t j = 1; j < at.size(); ++j) {
                size_t ia = at[0], ib = at[j];
                const Identifier& a = w->distinct[ia];
                const Identifier& b = w->distinct[ib];
                IdentityGraph::LinkResult r;
                Link key = std::minmax(ia, ib);
                if (w->existing_profile[ia] < 0 || w->existing_profile[ib] < 0) {
                    r.reason = "blocked identifier";
                } else if (w->cut.count(key) > 0) {
                    r.reason = "unlinked";
                } else {
                    r = w->graph->link(w->element[ia], a.type, w->element[ib], b.type);
                }
                auto [it, fresh] = w->edges.try_emplace(key);
                EdgeSeen& edge = it->second;
                if (fresh) {
                    edge.new_end = w->existing_profile[ia] == 0 || w->existing_profile[ib] == 0;
                    auto held = w->stored_held.find(key);
                    if (held != w->stored_held.end()) edge.held_by = held->second;
                    edge.source = event_type_name(events[e].type);
                    edge.event_id = events[e].message_id;
                    edge.first_seen = events[e].timestamp;
                    edge.last_seen = events[e].timestamp;
                }
                edge.first_seen = std::min(edge.first_seen, events[e].timestamp);
                edge.last_seen = std::max(edge.last_seen, events[e].timestamp);
                edge.merged = r.merged;
                edge.reason = r.reason;
                if (r.survivor != 0) w->merges.push_back({r.survivor, r.absorbed, a, b, std::string(events[e].message_id)});
            }
        }
        // A merged edge with an end new to the graph is held in that end's row (the b end's
        // first), if the row holds none yet; the others go to cdp_internal.identity_edges.
        w->holds.assign(w->distinct.size(), kNone);
        for (auto& [key, edge] : w->edges) {
            if (!edge.new_end || !edge.merged) continue;
            for (int end : {1, 0}) {
                size_t holder = end == 1 ? key.second : key.first;
                if (w->existing_profile[holder] != 0 || w->holds[holder] != kNone) continue;
                w->holds[holder] = end == 1 ? key.first : key.second;
                edge.held_by = end;
                break;
            }
        }
        // Final profile per component: the oldest loaded profile in it, else a new one; new
        // ones numbered in the order their people came, so that an older id is an older person.
        for (size_t i : w->arrival) {
            if (w->existing_profile[i] < 0) continue;
            size_t root = w->graph->find(w->element[i]);
            if (w->root_profile.count(root) > 0) continue;
            int64 p = w->graph->profile_of(root);
            w->root_profile[root] = p;
            if (p == 0) w->new_roots.push_back(root);
        }
    });

    // New profile ids.
    int nn = static_cast<int>(w->new_roots.size());
    if (nn > 0) {
        Oid argtypes[] = {INT4OID, INT4OID};
        Datum args[] = {Int32GetDatum(workspace), Int32GetDatum(nn)};
        run(&profiles_plan,
            "INSERT INTO cdp.profiles (workspace_id, profile_id)"
            " SELECT $1, nextval('cdp_internal.profile_id_seq') FROM generate_series(1, $2) RETURNING profile_id",
            2, argtypes, args);
        if (SPI_processed != static_cast<uint64>(nn))
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not create %d profiles", nn),
                            errdetail("The insert returned %llu rows.", static_cast<unsigned long long>(SPI_processed)),
                            errhint("This is a bug; please report it.")));
        for (int i = 0; i < nn; ++i) {
            bool isnull;
            int64 id = DatumGetInt64(spi_value(i, 1, &isnull));
            guarded([&] { w->root_profile.at(w->new_roots[i]) = id; });  // the key exists: set above
        }
    }

    // Loaded profiles that were absorbed: their identifiers move to the survivor.
    {
        Datum *from = datums(np), *to = datums(np);
        int nm = 0;
        guarded([&] {
            for (const auto& [profile, element] : w->profile_element) {
                int64 final_profile = w->root_profile.at(w->graph->find(element));
                if (final_profile != profile) {
                    from[nm] = Int64GetDatum(profile);
                    to[nm] = Int64GetDatum(final_profile);
                    ++nm;
                    if (moved != nullptr) moved->emplace_back(profile, final_profile);
                }
            }
        });
        if (nm > 0) {
            Oid argtypes[] = {INT4OID, INT8ARRAYOID, INT8ARRAYOID};
            Datum args[] = {Int32GetDatum(workspace), int8_array(from, nm), int8_array(to, nm)};
            run(&move_plan,
                // "= ANY ($2)" restricts each scan to the absorbed profiles through the index,
                // whatever join the plan makes
                "WITH m AS (SELECT * FROM unnest($2, $3) AS m(old, new)),"
                " moved AS (UPDATE cdp.identifiers i SET profile_id = m.new FROM m"
                "  WHERE i.workspace_id = $1 AND i.profile_id = ANY ($2) AND i.profile_id = m.old RETURNING 1)"
                " UPDATE cdp.profiles p SET merged_into = m.new FROM m"
                " WHERE p.workspace_id = $1 AND p.profile_id = ANY ($2) AND p.profile_id = m.old",
                3, argtypes, args);
        }
    }

    // New identifiers, with their profiles and the edges they hold ('' for none).
    {
        Datum *types = datums(n), *values = datums(n), *prof = datums(n), *seen = datums(n), *evid = datums(n),
              *vt = datums(n), *vv = datums(n), *vs = datums(n), *ve = datums(n), *vf = datums(n), *vl = datums(n);
        int ni = 0;
        for (int i = 0; i < n; ++i) {
            if (w->existing_profile[i] != 0) continue;
            int64 p = 0;
            const EdgeSeen* held = nullptr;
            guarded([&] {
                p = w->root_profile.at(w->graph->find(w->element[i]));
                if (w->holds[i] != kNone) held = &w->edges.at(std::minmax(static_cast<size_t>(i), w->holds[i]));
            });
            const Event& first = events[w->first_event[i]];
            types[ni] = text_datum(w->distinct[i].type);
            values[ni] = text_datum(w->distinct[i].value);
            prof[ni] = Int64GetDatum(p);
            seen[ni] = TimestampTzGetDatum(to_postgres(first.timestamp));
            evid[ni] = text_datum(first.message_id);
            const Identifier* other = held != nullptr ? &w->distinct[w->holds[i]] : nullptr;
            vt[ni] = text_datum(other != nullptr ? std::string_view(other->type) : std::string_view());
            vv[ni] = text_datum(other != nullptr ? std::string_view(other->value) : std::string_view());
            vs[ni] = text_datum(held != nullptr ? std::string_view(held->source) : std::string_view());
            ve[ni] = text_datum(held != nullptr ? std::string_view(held->event_id) : std::string_view());
            vf[ni] = TimestampTzGetDatum(to_postgres(held != nullptr ? held->first_seen : first.timestamp));
            vl[ni] = TimestampTzGetDatum(to_postgres(held != nullptr ? held->last_seen : first.timestamp));
            ++ni;
        }
        if (ni > 0) {
            Oid argtypes[] = {INT4OID,      TEXTARRAYOID, TEXTARRAYOID,        INT8ARRAYOID,       TIMESTAMPTZARRAYOID,
                              TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,        TEXTARRAYOID,       TEXTARRAYOID,
                              TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
            Datum args[] = {Int32GetDatum(workspace),    text_array(types, ni), text_array(values, ni),
                            int8_array(prof, ni),        timestamptz_array(seen, ni), text_array(evid, ni),
                            text_array(vt, ni),          text_array(vv, ni),    text_array(vs, ni),
                            text_array(ve, ni),          timestamptz_array(vf, ni), timestamptz_array(vl, ni)};
            run(&ids_plan,
                "INSERT INTO cdp.identifiers (workspace_id, id_type, id_value, profile_id, first_seen, event_id,"
                " via_type, via_value, via_source, via_event_id, via_first_seen, via_last_seen)"
                " SELECT $1, t, v, p, s, e, nullif(vt, ''), CASE WHEN vt <> '' THEN vv END, CASE WHEN vt <> '' THEN vs END,"
                "  CASE WHEN vt <> '' THEN ve END,"
                "  CASE WHEN vt <> '' THEN vf END, CASE WHEN vt <> '' THEN vl END"
                " FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS u(t, v, p, s, e, vt, vv, vs, ve, vf, vl)",
                12, argtypes, args);
        }
    }

    // Edges not held in a new identifier's row: inserted or brought up to date; a refused edge
    // seen for the first time is recorded. Stored edges held in a row: brought up to date.
    // An edge with an end new to the graph is new itself (a stored edge's ends are stored, and
    // the identity lock keeps other sessions out): a plain insert, without the conflict check.
    write_edges(w, workspace, true, &new_edges_plan);
    write_edges(w, workspace, false, &edges_plan);
    touch_held_edges(w, workspace, &held_plan);

    // Merges of existing profiles, in the order they happened.
    int nm = static_cast<int>(w->merges.size());
    if (nm > 0) {
        Datum *surv = datums(nm), *abs = datums(nm), *at = datums(nm), *av = datums(nm), *bt = datums(nm),
              *bv = datums(nm), *evid = datums(nm);
        for (int i = 0; i < nm; ++i) {
            const StitchWork::Merge& m = w->merges[i];
            surv[i] = Int64GetDatum(m.survivor);
            abs[i] = Int64GetDatum(m.absorbed);
            at[i] = text_datum(m.a.type);
            av[i] = text_datum(m.a.value);
            bt[i] = text_datum(m.b.type);
            bv[i] = text_datum(m.b.value);
            evid[i] = text_datum(m.event_id);
        }
        Oid argtypes[] = {INT4OID,      INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
                          TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
        Datum args[] = {Int32GetDatum(workspace), int8_array(surv, nm), int8_array(abs, nm), text_array(at, nm),
                        text_array(av, nm),       text_array(bt, nm),   text_array(bv, nm),  text_array(evid, nm)};
        run(&changes_plan,
            "INSERT INTO cdp.identity_changes (workspace_id, kind, profile_id, other_profile_id, a_type, a_value,"
            " b_type, b_value, reason, event_id)"
            " SELECT $1, 'merge', s, o, at, av, bt, bv, 'linked by an event', e"
            " FROM unnest($2, $3, $4, $5, $6, $7, $8) WITH ORDINALITY AS u(s, o, at, av, bt, bv, e, ord) ORDER BY ord",
            8, argtypes, args);
    }

    // Each event belongs to the profile of its strongest identifier.
    guarded([&] {
        for (size_t e = 0; e < events.size(); ++e) {
            for (size_t i : w->at[e]) {
                if (w->existing_profile[i] < 0) continue;
                events[e].profile_id = w->root_profile.at(w->graph->find(w->element[i]));
                break;
            }
        }
    });
}

}  // namespace cdp::pg

namespace cdp::pg {

namespace {

struct SplitWork {
    std::vector<Identifier> ids;  // the profile's identifiers, oldest first
    std::map<Identifier, size_t> index;
    UnionFind uf;
    std::vector<std::vector<size_t>> ordered;     // the parts: the keeper first, then the moved ones
    std::map<size_t, std::vector<size_t>> parts;  // root -> members
};

}  // namespace

void select_profile_edges(int32 workspace, int64 profile_id) {
    static Statement plan;
    Oid types[] = {INT4OID, INT8OID};
    Datum args[] = {Int32GetDatum(workspace), Int64GetDatum(profile_id)};
    // From the profile's identifiers (its index) to their edges (the primary key leads with the
    // a end, which every edge inside the profile has there) and the edges their rows hold, the
    // other end checked by a probe.
    run(&plan,
        "SELECT * FROM ("
        " SELECT e.a_type, e.a_value, e.b_type, e.b_value, e.source, e.event_id, e.first_seen"
        " FROM cdp.identifiers ia CROSS JOIN LATERAL ("
        "  SELECT * FROM cdp_internal.identity_edges e WHERE e.workspace_id = $1 AND e.a_type = ia.id_type"
        "   AND e.a_value = ia.id_value AND e.merged OFFSET 0) e"
        " WHERE ia.workspace_id = $1 AND ia.profile_id = $2"
        "  AND (SELECT ib.profile_id FROM cdp.identifiers ib WHERE ib.workspace_id = $1 AND ib.id_type = e.b_type"
        "       AND ib.id_value = e.b_value) = $2"
        " UNION ALL"
        " SELECT h.a_type, h.a_value, h.b_type, h.b_value, h.source, h.event_id, h.first_seen"
        " FROM cdp_internal.held_edges h WHERE h.workspace_id = $1 AND h.profile_id = $2"
        "  AND (SELECT ib.profile_id FROM cdp.identifiers ib WHERE ib.workspace_id = $1 AND ib.id_type = h.via_type"
        "       AND ib.id_value = h.via_value) = $2) e"
        " ORDER BY e.first_seen, e.a_type, e.a_value, e.b_type, e.b_value",
        2, types, args);
}

ProfilePart* split_profile(int32 workspace, int64 profile_id, const Identifier& a, const Identifier& b,
                           const char* cause, int* nparts) {
    static Statement ids_plan, new_plan, move_plan, log_plan;
    SplitWork* w = make_context_owned<SplitWork>(CurrentMemoryContext)->object;
    Oid types[] = {INT4OID, INT8OID};
    Datum args[] = {Int32GetDatum(workspace), Int64GetDatum(profile_id)};
    run(&ids_plan,
        "SELECT id_type, id_value FROM cdp.identifiers WHERE workspace_id = $1 AND profile_id = $2"
        " ORDER BY first_seen, id_type, id_value",
        2, types, args);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool n1, n2;
        Datum t = spi_value(r, 1, &n1), v = spi_value(r, 2, &n2);
        guarded([&] {
            w->ids.push_back({text_string(t), text_string(v)});
            w->index[w->ids.back()] = w->ids.size() - 1;
            w->uf.add();
        });
    }
    select_profile_edges(workspace, profile_id);
    for (uint64 r = 0; r < SPI_processed; ++r) {
        bool n1, n2, n3, n4;
        Datum at = spi_value(r, 1, &n1), av = spi_value(r, 2, &n2), bt = spi_value(r, 3, &n3),
              bv = spi_value(r, 4, &n4);
        guarded([&] {
            auto x = w->index.find({text_string(at), text_string(av)});
            auto y = w->index.find({text_string(bt), text_string(bv)});
            if (x != w->index.end() && y != w->index.end()) w->uf.unite(x->second, y->second);
        });
    }
    // The part that keeps the id: the largest, then the one with the oldest identifier.
    guarded([&] {
        for (size_t i = 0; i < w->ids.size(); ++i) w->parts[w->uf.find(i)].push_back(i);
        size_t keeper = 0;
        bool found = false;
        for (const auto& [root, members] : w->parts) {
            if (!found || members.size() > w->parts.at(keeper).size() ||
                (members.size() == w->parts.at(keeper).size() && members.front() < w->parts.at(keeper).front())) {
                keeper = root;
                found = true;
            }
        }
        if (found) w->ordered.push_back(w->parts.at(keeper));
        for (const auto& [root, members] : w->parts)
            if (root != keeper) w->ordered.push_back(members);
    });
    int nm = w->ordered.empty() ? 0 : static_cast<int>(w->ordered.size()) - 1;
    *nparts = static_cast<int>(w->parts.size());
    auto* result = static_cast<ProfilePart*>(palloc(sizeof(ProfilePart) * (*nparts > 0 ? *nparts : 1)));
    if (*nparts == 0) return result;
    result[0] = {profile_id, static_cast<int>(w->ordered[0].size())};
    if (nm == 0) return result;

    Oid new_types[] = {INT4OID, INT4OID};
    Datum new_args[] = {Int32GetDatum(workspace), Int32GetDatum(nm)};
    run(&new_plan,
        "INSERT INTO cdp.profiles (workspace_id, profile_id)"
        " SELECT $1, nextval('cdp_internal.profile_id_seq') FROM generate_series(1, $2) RETURNING profile_id",
        2, new_types, new_args);
    int64* new_ids = static_cast<int64*>(palloc(sizeof(int64) * nm));
    for (int i = 0; i < nm; ++i) {
        bool isnull;
        new_ids[i] = DatumGetInt64(spi_value(i, 1, &isnull));
    }
    int total = static_cast<int>(w->ids.size());
    Datum *ts = datums(total), *vs = datums(total), *ps = datums(total);
    int k = 0;
    for (int i = 0; i < nm; ++i) {
        const std::vector<size_t>& members = w->ordered[i + 1];
        result[i + 1] = {new_ids[i], static_cast<int>(members.size())};
        for (size_t m : members) {
            ts[k] = text_datum(w->ids[m].type);
            vs[k] = text_datum(w->ids[m].value);
            ps[k] = Int64GetDatum(new_ids[i]);
            ++k;
        }
    }
    Oid move_types[] = {INT4OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
    Datum move_args[] = {Int32GetDatum(workspace), text_array(ts, k), text_array(vs, k), int8_array(ps, k)};
    run(&move_plan,
        "UPDATE cdp.identifiers i SET profile_id = u.p FROM unnest($2, $3, $4) AS u(t, v, p)"
        " WHERE i.workspace_id = $1 AND i.id_type = u.t AND i.id_value = u.v",
        4, move_types, move_args);
    Datum* others = datums(nm);
    for (int i = 0; i < nm; ++i) others[i] = Int64GetDatum(new_ids[i]);
    Oid log_types[] = {INT4OID, INT8OID, INT8ARRAYOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
    Datum log_args[] = {Int32GetDatum(workspace), Int64GetDatum(profile_id), int8_array(others, nm),
                        text_datum(a.type),       text_datum(a.value),       text_datum(b.type),
                        text_datum(b.value),      CStringGetTextDatum(cause)};
    run(&log_plan,
        "INSERT INTO cdp.identity_changes (workspace_id, kind, profile_id, other_profile_id, a_type, a_value, b_type,"
        " b_value, reason) SELECT $1, 'split', $2, o, $4, $5, $6, $7, $8 FROM unnest($3) AS o",
        8, log_types, log_args);
    return result;
}

}  // namespace cdp::pg
