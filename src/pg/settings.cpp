#include "cdp/pg/settings.hpp"

#include "cdp/core/identity.hpp"

namespace cdp::pg {

char* setting_dedup_window = nullptr;
char* setting_session_timeout = nullptr;
int setting_ip_policy = static_cast<int>(IpPolicy::Truncate);
char* setting_internal_domains = nullptr;
char* setting_uap_regexes_path = nullptr;
int setting_max_batch_bytes = 500 * 1024;
bool setting_stitch_identities = true;
char* setting_phone_country = nullptr;
int setting_analytics_max_rows = 1'000'000;
bool setting_update_profiles = true;

namespace {

// Check hooks: a bad duration is refused by SET itself, with a detail and a hint.
bool check_duration(char** newval, bool allow_infinity) {
    std::optional<Micros> d = parse_duration(*newval);
    if (d && (*d > 0 || allow_infinity)) return true;
    GUC_check_errdetail("\"%s\" is not a positive duration.", *newval);
    GUC_check_errhint(allow_infinity ? "Use a duration such as '7 days' or '36h', or 'infinity' to remember forever."
                                     : "Use a duration such as '30 minutes' or '1h'.");
    return false;
}

bool check_dedup_window(char** newval, void**, GucSource) { return check_duration(newval, true); }
bool check_session_timeout(char** newval, void**, GucSource) { return check_duration(newval, false); }

bool check_phone_country(char** newval, void**, GucSource) {
    if ((*newval)[0] == '\0' || !calling_code(*newval).empty()) return true;
    GUC_check_errdetail("\"%s\" is not a country whose calling code cdp knows.", *newval);
    GUC_check_errhint("Use an ISO 3166 alpha-2 code such as 'US', 'GB' or 'DE', or '' for none.");
    return false;
}

const struct config_enum_entry kIpPolicies[] = {
    {"full", static_cast<int>(IpPolicy::Full), false},
    {"truncate", static_cast<int>(IpPolicy::Truncate), false},
    {"drop", static_cast<int>(IpPolicy::Drop), false},
    {nullptr, 0, false},
};
}  // namespace

void define_settings() {
    DefineCustomStringVariable("cdp.dedup_window", "How long a messageId is remembered for exact deduplication.",
                               "A duration such as '7 days' or '36h', or 'infinity' to remember forever.",
                               &setting_dedup_window, "7 days", PGC_USERSET, 0, check_dedup_window, nullptr,
                               nullptr);
    DefineCustomStringVariable("cdp.session_timeout", "Inactivity after which a new session starts.", nullptr,
                               &setting_session_timeout, "30 minutes", PGC_USERSET, 0, check_session_timeout,
                               nullptr, nullptr);
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
    DefineCustomBoolVariable("cdp.stitch_identities", "Whether ingest links identifiers into profiles.",
                             "Off stores events without a profile_id (the events-only ingest).",
                             &setting_stitch_identities, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("cdp.phone_default_country",
                               "Country assumed for phone numbers written without a country code.",
                               "An ISO 3166 alpha-2 code such as 'US'; '' leaves such numbers out.",
                               &setting_phone_country, "", PGC_USERSET, 0, check_phone_country, nullptr, nullptr);
    DefineCustomBoolVariable("cdp.update_profiles", "Whether ingest keeps each profile's golden record current.",
                             "Needs cdp.stitch_identities; off leaves cdp_internal.profile_state as it is.",
                             &setting_update_profiles, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("cdp.analytics_max_rows_per_group",
                            "Most rows one group of a funnel or sequence aggregate may hold.",
                            "Only rows satisfying a condition are held, 24 bytes each.", &setting_analytics_max_rows,
                            1'000'000, 1000, INT_MAX / 32, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("cdp");
}

Micros dedup_window() { return parse_duration(setting_dedup_window).value_or(7 * kMicrosPerDay); }

Micros session_timeout() { return parse_duration(setting_session_timeout).value_or(30 * kMicrosPerMinute); }

IpPolicy ip_policy() { return static_cast<IpPolicy>(setting_ip_policy); }

}  // namespace cdp::pg
