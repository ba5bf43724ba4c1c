// The aggregates of behavioural analytics. cdp.window_funnel, cdp.window_funnel_times,
// cdp.sequence_match and cdp.sequence_count keep each group's rows compactly (24 bytes for a
// row that satisfies a condition) in the aggregate context, and run the core's state machines
// at the end; cdp.retention keeps a bitmask. All are parallel-safe: the row states combine,
// serialise to an explicit byte format and are checked when read back.
#include <algorithm>
#include <string>
#include <vector>

#include "cdp/core/analytics.hpp"
#include "cdp/core/error.hpp"
#include "cdp/pg/aggregates.hpp"
#include "cdp/pg/guard.hpp"
#include "cdp/pg/settings.hpp"

extern "C" {
PGDLLEXPORT Datum cdp_funnel_trans(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_sequence_trans(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_rows_combine(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_rows_serialize(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_rows_deserialize(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_funnel_final(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_funnel_times_final(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_sequence_match_final(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_sequence_count_final(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_retention_trans(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_retention_combine(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum cdp_retention_final(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cdp_funnel_trans);
PG_FUNCTION_INFO_V1(cdp_sequence_trans);
PG_FUNCTION_INFO_V1(cdp_rows_combine);
PG_FUNCTION_INFO_V1(cdp_rows_serialize);
PG_FUNCTION_INFO_V1(cdp_rows_deserialize);
PG_FUNCTION_INFO_V1(cdp_funnel_final);
PG_FUNCTION_INFO_V1(cdp_funnel_times_final);
PG_FUNCTION_INFO_V1(cdp_sequence_match_final);
PG_FUNCTION_INFO_V1(cdp_sequence_count_final);
PG_FUNCTION_INFO_V1(cdp_retention_trans);
PG_FUNCTION_INFO_V1(cdp_retention_combine);
PG_FUNCTION_INFO_V1(cdp_retention_final);
}

namespace cdp::pg {

namespace {

// The state of a row aggregate, palloc'd in the aggregate context (plain data: nothing to
// destroy). A funnel's window and modes, or a sequence's pattern, come with the first row.
struct RowsState {
    Micros window;
    uint32 modes;
    int32 conditions;    // the length of the condition array, the same in every row
    bool keep_unmatched;  // strict_order: rows satisfying no condition matter too
    uint32 count;
    uint32 capacity;
    uint32 next_row;     // the number the next row gets (its input order within the group)
    ConditionRow* rows;
    char* pattern;       // sequence aggregates: the pattern text; NULL for funnels
};

RowsState* new_state(MemoryContext context) {
    auto* s = static_cast<RowsState*>(MemoryContextAllocZero(context, sizeof(RowsState)));
    s->capacity = 16;
    s->rows = static_cast<ConditionRow*>(MemoryContextAlloc(context, s->capacity * sizeof(ConditionRow)));
    return s;
}

void reserve_rows(RowsState* s, uint64 needed, const char* aggregate) {
    if (needed > static_cast<uint64>(setting_analytics_max_rows))
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("one group of %s holds more than %d rows", aggregate, setting_analytics_max_rows),
                        errdetail("Each row that satisfies a condition is kept until the group ends."),
                        errhint("Filter the input to the time range and events the conditions look at, or raise "
                                "cdp.analytics_max_rows_per_group.")));
    if (needed <= s->capacity) return;
    uint64 grown = std::max<uint64>(needed, static_cast<uint64>(s->capacity) * 2);
    grown = std::min<uint64>(grown, static_cast<uint64>(setting_analytics_max_rows));
    s->rows = static_cast<ConditionRow*>(repalloc_huge(s->rows, grown * sizeof(ConditionRow)));
    s->capacity = static_cast<uint32>(grown);
}

// The conditions of a row as a bitmask (NULL counts as false); checks that every row has the
// same number of them.
uint32 condition_mask(RowsState* s, ArrayType* conditions, const char* aggregate) {
    if (ARR_NDIM(conditions) > 1 || ARR_ELEMTYPE(conditions) != BOOLOID)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("%s takes its conditions as a list of booleans", aggregate),
                        errdetail("Got an array of %d dimensions.", ARR_NDIM(conditions)),
                        errhint("Pass the conditions as separate arguments: ..., event = 'A', event = 'B').")));
    int n = ARR_NDIM(conditions) == 0 ? 0 : ARR_DIMS(conditions)[0];
    if (n < 1 || n > kMaxConditions)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s takes 1 to %d conditions", aggregate, kMaxConditions),
                        errdetail("Got %d.", n), errhint("Split a longer funnel into parts.")));
    if (s->conditions == 0) {
        s->conditions = n;
    } else if (s->conditions != n) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s got a different number of conditions in different rows", aggregate),
                        errdetail("One row had %d, another %d; one aggregate call has the same list in every row.",
                                  s->conditions, n),
                        errhint("Write the conditions as fixed arguments rather than a computed array.")));
    }
    // The array stores only its non-NULL elements, one byte each, one after the other.
    const bool* value = reinterpret_cast<const bool*>(ARR_DATA_PTR(conditions));
    const bits8* nulls = ARR_NULLBITMAP(conditions);
    uint32 mask = 0;
    for (int i = 0; i < n; ++i) {
        if (nulls != nullptr && !(nulls[i / 8] & (1 << (i % 8)))) continue;
        if (*value++) mask |= 1u << i;
    }
    return mask;
}

void add_row(RowsState* s, Micros ts, int64 tie, uint32 mask, const char* aggregate) {
    if (mask == 0 && !s->keep_unmatched) {
        ++s->next_row;
        return;
    }
    reserve_rows(s, static_cast<uint64>(s->count) + 1, aggregate);
    s->rows[s->count++] = {ts, tie, mask, s->next_row++};
}

Micros window_micros(const Interval* window) {
    if (window->month != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a funnel window cannot be counted in months"),
                        errdetail("Months differ in length; the window must be an exact duration."),
                        errhint("Write it in days or hours, such as interval '30 days'.")));
    Micros us = static_cast<Micros>(window->day) * USECS_PER_DAY + window->time;
    if (us < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a funnel window cannot be negative"),
                        errdetail("Got %s.", DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(window)))),
                        errhint("Pass the longest time allowed from the first step to the last, such as interval '1 hour'.")));
    return us;
}

unsigned funnel_modes(text* mode) {
    std::string_view words(VARDATA_ANY(mode), VARSIZE_ANY_EXHDR(mode));
    unsigned modes = 0;
    char bad[64] = "";  // plain storage: no C++ object may outlive the guard into ereport
    guarded([&] {
        try {
            modes = parse_funnel_modes(words);
        } catch (const std::invalid_argument& e) {
            snprintf(bad, sizeof bad, "%s", e.what());
        }
    });
    if (bad[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown funnel mode \"%s\"", bad),
                        errdetail("The mode argument was \"%.*s\".", static_cast<int>(words.size()), words.data()),
                        errhint("Use '' or a comma-separated list of strict_order, strict_deduplication, "
                                "strict_increase and strict_once.")));
    return modes;
}

// Checks a sequence pattern, reporting where it goes wrong.
void check_pattern(const char* pattern, int conditions) {
    char message[256] = "";
    size_t offset = 0;
    guarded([&] {
        try {
            SequencePattern p(pattern, conditions);
        } catch (const PatternError& e) {
            snprintf(message, sizeof message, "%s", e.what());
            offset = e.offset;
        }
    });
    if (message[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid sequence pattern: %s", message),
                        errdetail("The pattern is \"%s\"; the problem is at byte %zu.", pattern, offset + 1),
                        errhint("A pattern is a list of (?N) for condition N, .* for any events, and time bounds "
                                "such as (?t<=3600) in seconds between two conditions: '(?1).*(?t<=3600)(?2)'.")));
}

// ---- serialisation: an explicit byte layout, checked when read back ----------------------------

constexpr uint8 kStateFormat = 1;

struct Writer {
    StringInfoData buf;
    template <typename T>
    void put(T v) {
        appendBinaryStringInfo(&buf, reinterpret_cast<const char*>(&v), sizeof v);
    }
};

struct Reader {
    const char* p;
    const char* end;
    template <typename T>
    T get() {
        if (end - p < static_cast<ptrdiff_t>(sizeof(T))) corrupt("it ends early");
        T v;
        memcpy(&v, p, sizeof v);
        p += sizeof v;
        return v;
    }
    [[noreturn]] static void corrupt(const char* why) { corrupt_aggregate_state("a cdp funnel or sequence aggregate", why); }
};

// ---- retention: bits 0-31 the conditions seen, bits 32-39 how many conditions ----------------

int64 retention_state(uint32 seen, int conditions) { return static_cast<int64>(seen) | (static_cast<int64>(conditions) << 32); }

}  // namespace

}  // namespace cdp::pg

using namespace cdp;
using namespace cdp::pg;

// window_funnel(window, ts, steps) | (window, mode, ts, steps) | (window, mode, ts, tie, steps)
Datum cdp_funnel_trans(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "cdp_funnel_trans");
    int nargs = PG_NARGS();
    int ts_arg = nargs >= 5 ? 3 : 2;
    int tie_arg = nargs >= 6 ? 4 : -1;
    int steps_arg = nargs - 1;
    RowsState* s = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    if (s == nullptr) {
        if (PG_ARGISNULL(1))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("the funnel window must not be null"),
                            errdetail("cdp.window_funnel was called with window => NULL."),
                            errhint("Pass the longest time allowed from the first step to the last, such as interval '1 hour'.")));
        Micros window = window_micros(PG_GETARG_INTERVAL_P(1));
        unsigned modes = nargs >= 5 && !PG_ARGISNULL(2) ? funnel_modes(PG_GETARG_TEXT_PP(2)) : 0;
        s = new_state(context);
        s->window = window;
        s->modes = modes;
        s->keep_unmatched = (modes & kStrictOrder) != 0;
    }
    if (PG_ARGISNULL(ts_arg) || PG_ARGISNULL(steps_arg)) PG_RETURN_POINTER(s);  // a row without a time is no event
    Micros ts = PG_GETARG_TIMESTAMPTZ(ts_arg);
    int64 tie = tie_arg >= 0 && !PG_ARGISNULL(tie_arg) ? PG_GETARG_INT64(tie_arg) : 0;
    uint32 mask = condition_mask(s, PG_GETARG_ARRAYTYPE_P(steps_arg), "cdp.window_funnel");
    add_row(s, ts, tie, mask, "cdp.window_funnel");
    PG_RETURN_POINTER(s);
}

// sequence_match / sequence_count(pattern, ts, conds) | (pattern, ts, tie, conds)
Datum cdp_sequence_trans(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "cdp_sequence_trans");
    int nargs = PG_NARGS();
    int tie_arg = nargs >= 5 ? 3 : -1;
    int conds_arg = nargs - 1;
    RowsState* s = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    if (s == nullptr) {
        if (PG_ARGISNULL(1))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("the sequence pattern must not be null"),
                            errdetail("cdp.sequence_match or cdp.sequence_count was called with pattern => NULL."),
                            errhint("Pass a pattern such as '(?1).*(?2)'.")));
        s = new_state(context);
        s->pattern = MemoryContextStrdup(context, text_to_cstring(PG_GETARG_TEXT_PP(1)));
    }
    if (PG_ARGISNULL(2) || PG_ARGISNULL(conds_arg)) PG_RETURN_POINTER(s);  // a row without a time is no event
    uint32 mask = condition_mask(s, PG_GETARG_ARRAYTYPE_P(conds_arg), "cdp.sequence_match");
    if (s->count == 0 && s->next_row == 0) check_pattern(s->pattern, s->conditions);  // once, at the first row
    int64 tie = tie_arg >= 0 && !PG_ARGISNULL(tie_arg) ? PG_GETARG_INT64(tie_arg) : 0;
    add_row(s, PG_GETARG_TIMESTAMPTZ(2), tie, mask, "cdp.sequence_match");
    PG_RETURN_POINTER(s);
}

Datum cdp_rows_combine(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "cdp_rows_combine");
    RowsState* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    RowsState* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<RowsState*>(PG_GETARG_POINTER(1));
    if (b == nullptr) {
        if (a == nullptr) PG_RETURN_NULL();
        PG_RETURN_POINTER(a);
    }
    if (a == nullptr) {  // a copy in the aggregate context: b may live in a shorter-lived one
        a = new_state(context);
        a->window = b->window;
        a->modes = b->modes;
        a->conditions = b->conditions;
        a->keep_unmatched = b->keep_unmatched;
        if (b->pattern != nullptr) a->pattern = MemoryContextStrdup(context, b->pattern);
    } else if (b->conditions != 0 && a->conditions != 0 && a->conditions != b->conditions) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cannot combine aggregate states with %d and %d conditions",
                                                                          a->conditions, b->conditions),
                        errdetail("The conditions of one aggregate call are the same list in every row."),
                        errhint("Write the conditions as fixed arguments rather than a computed array.")));
    }
    if (a->conditions == 0) a->conditions = b->conditions;
    reserve_rows(a, static_cast<uint64>(a->count) + b->count, "a cdp aggregate");
    for (uint32 i = 0; i < b->count; ++i) {
        ConditionRow r = b->rows[i];
        r.row += a->next_row;  // rows stay distinct
        a->rows[a->count++] = r;
    }
    a->next_row += b->next_row;
    PG_RETURN_POINTER(a);
}

Datum cdp_rows_serialize(PG_FUNCTION_ARGS) {
    auto* s = reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    Writer w;
    initStringInfo(&w.buf);
    appendStringInfoSpaces(&w.buf, VARHDRSZ);
    w.put<uint8>(kStateFormat);
    w.put<int64>(s->window);
    w.put<uint32>(s->modes);
    w.put<int32>(s->conditions);
    w.put<uint8>(s->keep_unmatched ? 1 : 0);
    w.put<uint32>(s->next_row);
    uint32 pattern_len = s->pattern != nullptr ? static_cast<uint32>(strlen(s->pattern)) + 1 : 0;
    w.put<uint32>(pattern_len);
    if (pattern_len > 0) appendBinaryStringInfo(&w.buf, s->pattern, static_cast<int>(pattern_len));
    w.put<uint32>(s->count);
    for (uint32 i = 0; i < s->count; ++i) {
        w.put<int64>(s->rows[i].ts);
        w.put<int64>(s->rows[i].tie);
        w.put<uint32>(s->rows[i].mask);
        w.put<uint32>(s->rows[i].row);
    }
    SET_VARSIZE(w.buf.data, w.buf.len);
    PG_RETURN_BYTEA_P(reinterpret_cast<bytea*>(w.buf.data));
}

Datum cdp_rows_deserialize(PG_FUNCTION_ARGS) {
    MemoryContext context = aggregate_context(fcinfo, "cdp_rows_deserialize");
    bytea* data = PG_GETARG_BYTEA_PP(0);
    Reader r{VARDATA_ANY(data), VARDATA_ANY(data) + VARSIZE_ANY_EXHDR(data)};
    if (r.get<uint8>() != kStateFormat) Reader::corrupt("unknown format");
    RowsState* s = new_state(context);
    s->window = r.get<int64>();
    s->modes = r.get<uint32>();
    s->conditions = r.get<int32>();
    s->keep_unmatched = r.get<uint8>() != 0;
    s->next_row = r.get<uint32>();
    if (s->window < 0 || s->conditions < 0 || s->conditions > kMaxConditions || s->modes > 15)
        Reader::corrupt("a setting is out of range");
    uint32 pattern_len = r.get<uint32>();
    if (pattern_len > 0) {
        if (static_cast<uint64>(r.end - r.p) < pattern_len || r.p[pattern_len - 1] != '\0')
            Reader::corrupt("the pattern is cut");
        s->pattern = MemoryContextStrdup(context, r.p);
        r.p += pattern_len;
    }
    uint32 count = r.get<uint32>();
    if (static_cast<uint64>(r.end - r.p) != static_cast<uint64>(count) * 24) Reader::corrupt("the row count does not match its size");
    reserve_rows(s, count, "a cdp aggregate");
    uint32 allowed = s->conditions >= 32 ? UINT32_MAX : (1u << s->conditions) - 1;
    for (uint32 i = 0; i < count; ++i) {
        ConditionRow row;
        row.ts = r.get<int64>();
        row.tie = r.get<int64>();
        row.mask = r.get<uint32>();
        row.row = r.get<uint32>();
        if ((row.mask & ~allowed) != 0 || row.row >= s->next_row) Reader::corrupt("a row is out of range");
        s->rows[i] = row;
    }
    s->count = count;
    PG_RETURN_POINTER(s);
}

namespace {
FunnelResult funnel_of(RowsState* s) {
    FunnelResult result;
    guarded([&] { result = window_funnel(s->rows, s->count, s->conditions, s->window, s->modes); });
    return result;
}
}  // namespace

Datum cdp_funnel_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_INT32(0);
    auto* s = reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    if (s->conditions == 0) PG_RETURN_INT32(0);
    PG_RETURN_INT32(funnel_of(s).level);
}

// The time from the first step to each step reached, as intervals.
Datum cdp_funnel_times_final(PG_FUNCTION_ARGS) {
    FunnelResult f;
    if (!PG_ARGISNULL(0)) {
        auto* s = reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
        if (s->conditions != 0) f = funnel_of(s);
    }
    Datum* items = static_cast<Datum*>(palloc(sizeof(Datum) * std::max(f.level, 1)));
    for (int k = 0; k < f.level; ++k) {
        auto* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
        iv->time = f.time_to_step[k];
        items[k] = IntervalPGetDatum(iv);
    }
    PG_RETURN_ARRAYTYPE_P(construct_array(items, f.level, INTERVALOID, sizeof(Interval), false, TYPALIGN_DOUBLE));
}

namespace {
// Runs a pattern over a group's rows; a pattern too costly for the rows is an error.
template <typename F>
void with_pattern(RowsState* s, F&& use) {
    bool too_complex = false;
    guarded([&] {
        try {
            SequencePattern p(s->pattern, s->conditions);
            sort_rows(s->rows, s->count);
            use(p);
        } catch (const PatternTooComplex&) {
            too_complex = true;
        }
    });
    if (too_complex)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("sequence pattern \"%s\" is too costly to match", s->pattern),
                        errdetail("A group of %u rows needed more than 50 million steps.", s->count),
                        errhint("Use fewer .* in the pattern, or filter the rows to the events it looks at.")));
}
}  // namespace

Datum cdp_sequence_match_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_BOOL(false);
    auto* s = reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    if (s->pattern == nullptr || s->conditions == 0) PG_RETURN_BOOL(false);
    bool matched = false;
    with_pattern(s, [&](const SequencePattern& p) { matched = p.match(s->rows, s->count); });
    PG_RETURN_BOOL(matched);
}

Datum cdp_sequence_count_final(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_INT64(0);
    auto* s = reinterpret_cast<RowsState*>(PG_GETARG_POINTER(0));
    if (s->pattern == nullptr || s->conditions == 0) PG_RETURN_INT64(0);
    int64 matches = 0;
    with_pattern(s, [&](const SequencePattern& p) { matches = p.count(s->rows, s->count); });
    PG_RETURN_INT64(matches);
}

// retention(VARIADIC conds): state bigint, strict (NULL arrays skipped; initial 0)
Datum cdp_retention_trans(PG_FUNCTION_ARGS) {
    int64 state = PG_GETARG_INT64(0);
    RowsState shape{};
    shape.conditions = static_cast<int32>(state >> 32);
    uint32 mask = condition_mask(&shape, PG_GETARG_ARRAYTYPE_P(1), "cdp.retention");
    PG_RETURN_INT64(retention_state(static_cast<uint32>(state) | mask, shape.conditions));
}

Datum cdp_retention_combine(PG_FUNCTION_ARGS) {
    int64 a = PG_GETARG_INT64(0), b = PG_GETARG_INT64(1);
    int conditions = static_cast<int>(std::max(a >> 32, b >> 32));
    PG_RETURN_INT64(retention_state(static_cast<uint32>(a) | static_cast<uint32>(b), conditions));
}

Datum cdp_retention_final(PG_FUNCTION_ARGS) {
    int64 state = PG_GETARG_INT64(0);
    int conditions = static_cast<int>(state >> 32);
    if (conditions == 0) PG_RETURN_NULL();  // no rows: no answer
    bool kept[kMaxConditions] = {};
    guarded([&] {
        std::vector<bool> r = retention(static_cast<uint32>(state), conditions);
        for (int i = 0; i < conditions; ++i) kept[i] = r[static_cast<size_t>(i)];
    });
    Datum items[kMaxConditions];
    for (int i = 0; i < conditions; ++i) items[i] = BoolGetDatum(kept[i]);
    PG_RETURN_ARRAYTYPE_P(construct_array(items, conditions, BOOLOID, 1, true, TYPALIGN_CHAR));
}
