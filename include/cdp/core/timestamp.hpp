// ISO-8601 timestamps as microseconds since the Unix epoch, and the Segment clock-skew rule.
#pragma once
#include "cdp/core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdp {

using Micros = std::int64_t;  // microseconds since 1970-01-01 00:00:00 UTC

constexpr Micros kMicrosPerSecond = 1000000;
constexpr Micros kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr Micros kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr Micros kMicrosPerDay = 24 * kMicrosPerHour;

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.ffffff]]" with "Z", "+HH:MM", "+HHMM" or no zone
// (taken as UTC); a space may stand for the "T". Returns nothing when the text is not such a time.
std::optional<Micros> parse_iso8601(std::string_view text);

// Formats as "YYYY-MM-DDTHH:MM:SS.ffffffZ".
std::string format_iso8601(Micros t);

// The event time by Segment's clock-skew rule: the client's clock is trusted for the distance
// between originalTimestamp and sentAt, the server's clock for when it was sent:
// timestamp = receivedAt - (sentAt - originalTimestamp). Without sentAt, the original timestamp;
// without either, receivedAt.
Micros corrected_timestamp(std::optional<Micros> original, std::optional<Micros> sent_at, Micros received_at);

// A duration such as "30 minutes", "7 days", "1h 30min", "90s"; "infinity" (or "forever")
// gives -1. Units: us, ms, s/sec/second(s), min/minute(s), h/hour(s), d/day(s), w/week(s).
// Nothing for text that is not such a duration, or for a duration that is not positive.
std::optional<Micros> parse_duration(std::string_view text) noexcept;

// The first instant (UTC) of the calendar month that holds t.
Micros month_start(Micros t);

// Days since the epoch of a civil date (proleptic Gregorian), and back.
std::int64_t days_from_civil(int y, unsigned m, unsigned d);
void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d);

}  // namespace cdp
