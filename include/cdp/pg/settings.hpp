// The extension's GUC settings (cdp.*), defined in _PG_init.
#pragma once

#include "cdp/core/ip.hpp"
#include "cdp/core/timestamp.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

extern char* setting_dedup_window;       // cdp.dedup_window: an interval, or "infinity"
extern char* setting_session_timeout;    // cdp.session_timeout: an interval
extern int setting_ip_policy;            // cdp.ip_policy: full | truncate | drop
extern char* setting_internal_domains;   // cdp.internal_domains: comma-separated hosts
extern char* setting_uap_regexes_path;   // cdp.uap_regexes_path: uap-core regexes.yaml ("" turns UA parsing off)
extern int setting_max_batch_bytes;      // cdp.max_batch_bytes
extern bool setting_stitch_identities;   // cdp.stitch_identities: ingest runs identity resolution
extern char* setting_phone_country;      // cdp.phone_default_country: ISO 3166 alpha-2, or ""
extern int setting_analytics_max_rows;   // cdp.analytics_max_rows_per_group
extern bool setting_update_profiles;     // cdp.update_profiles: ingest keeps profile records

void define_settings();

// cdp.dedup_window in microseconds, -1 for "infinity".
Micros dedup_window();

// cdp.session_timeout in microseconds.
Micros session_timeout();

IpPolicy ip_policy();

}  // namespace cdp::pg
