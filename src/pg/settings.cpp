#include "cdp/pg/settings.hpp"

namespace cdp::pg {

char* setting_dedup_window = nullptr;
char* setting_session_timeout = nullptr;
int setting_ip_policy = static_cast<int>(IpPolicy::Truncate);
char* setting_internal_domains = nullptr;
char* setting_uap_regexes_path = nullptr;
int setting_max_batch_bytes = 500 * 1024;

namespace {
const struct config_enum_entry kIpPolicies[] = {
    {"full", static_cast<int>(IpPolicy::Full), false},
    {"truncate", static_cast<int>(IpPolicy::Truncate), false},
    {"drop", static_cast<int>(IpPolicy::Drop), false},
    {nullptr, 0, false},
};
}  // namespace

void define_settings() {
    DefineCustomStringVariable("cdp.dedup_window", "How long a messageId is remembered for exact deduplication.",
                               "An interval such as '7 days', or 'infinity' to remember forever.",
                               &setting_dedup_window, "7 days", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("cdp.session_timeout", "Inactivity after which a new session starts.", nullptr,
                               &setting_session_timeout, "30 minutes", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("cdp.ip_policy", "What ingest keeps of context.ip: full, truncate or drop.",
                             "truncate keeps the /24 of IPv4 and the /48 of IPv6.", &setting_ip_policy,
                             static_cast<int>(IpPolicy::Truncate), kIpPolicies, PGC_USERSET, 0, nullptr, nullptr,
                             nullptr);
    DefineCustomStringVariable("cdp.internal_domains",
                               "Comma-separated hosts whose referrals count as internal navigation.", nullptr,
                               &setting_internal_domains, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("cdp.uap_regexes_path", "uap-core regexes.yaml used to parse user agents.",
                               "An empty value turns user-agent parsing off.", &setting_uap_regexes_path,
                               "/usr/share/uap-core/regexes.yaml", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("cdp.max_batch_bytes", "Largest payload cdp.ingest accepts in one call.",
                            "Segment's HTTP API allows 500 kB per batch.", &setting_max_batch_bytes, 500 * 1024,
                            1024, 256 * 1024 * 1024, PGC_USERSET, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("cdp");
}

namespace {
void setting_context(void* arg) {
    errcontext("while reading setting %s", static_cast<const char*>(arg));
}
}  // namespace

Micros interval_setting(const char* name, const char* value, bool allow_infinity) {
    if (allow_infinity && (pg_strcasecmp(value, "infinity") == 0 || pg_strcasecmp(value, "forever") == 0)) return -1;
    // interval_in reports bad syntax itself; the context line says which setting it was.
    ErrorContextCallback callback;
    callback.callback = setting_context;
    callback.arg = const_cast<char*>(name);
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    Interval* iv = DatumGetIntervalP(
        DirectFunctionCall3(interval_in, CStringGetDatum(value), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
    error_context_stack = callback.previous;
    Micros micros =
        iv->time + (static_cast<Micros>(iv->day) + static_cast<Micros>(iv->month) * DAYS_PER_MONTH) * USECS_PER_DAY;
    if (micros <= 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid value for %s", name),
                        errdetail("\"%s\" is not a positive interval.", value),
                        allow_infinity ? errhint("Use an interval such as '7 days', or 'infinity'.")
                                       : errhint("Use an interval such as '30 minutes'.")));
    return micros;
}

IpPolicy ip_policy() { return static_cast<IpPolicy>(setting_ip_policy); }

}  // namespace cdp::pg
