#include "cdp/core/timestamp.hpp"

#include <cstdint>
#include <cstdio>

namespace cdp {

// Howard Hinnant's civil-date algorithms.
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t yy = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<int>(yy + (m <= 2));
}

namespace {

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int y, unsigned m) {
    static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at pos; false if any is not a digit.
bool digits(std::string_view s, size_t& pos, int n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
        char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
}

}  // namespace

std::optional<Micros> parse_iso8601(std::string_view s) {
    size_t p = 0;
    int year, month, day, hour = 0, minute = 0, second = 0;
    Micros fraction = 0;
    if (!digits(s, p, 4, year) || p >= s.size() || s[p++] != '-' || !digits(s, p, 2, month) ||
        p >= s.size() || s[p++] != '-' || !digits(s, p, 2, day))
        return std::nullopt;
    if (month < 1 || month > 12 || day < 1 || day > static_cast<int>(days_in_month(year, month)))
        return std::nullopt;
    Micros offset = 0;
    if (p < s.size()) {
        if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
        ++p;
        if (!digits(s, p, 2, hour) || p >= s.size() || s[p++] != ':' || !digits(s, p, 2, minute))
            return std::nullopt;
        if (p < s.size() && s[p] == ':') {
            ++p;
            if (!digits(s, p, 2, second)) return std::nullopt;
            if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
                ++p;
                Micros scale = 100000;
                size_t start = p;
                while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
                    fraction += (s[p] - '0') * scale;  // digits past microseconds are dropped
                    scale /= 10;
                    ++p;
                }
                if (p == start) return std::nullopt;
            }
        }
        if (hour > 23 || minute > 59 || second > 60) return std::nullopt;  // 60: a leap second
        if (p < s.size()) {
            char z = s[p];
            if (z == 'Z' || z == 'z') {
                ++p;
            } else if (z == '+' || z == '-') {
                ++p;
                int oh, om = 0;
                if (!digits(s, p, 2, oh)) return std::nullopt;
                if (p < s.size() && s[p] == ':') ++p;
                if (p < s.size() && !digits(s, p, 2, om)) return std::nullopt;
                if (oh > 23 || om > 59) return std::nullopt;
                offset = (oh * kMicrosPerHour + om * kMicrosPerMinute) * (z == '+' ? 1 : -1);
            } else {
                return std::nullopt;
            }
        }
        if (p != s.size()) return std::nullopt;
    }
    Micros t = days_from_civil(year, month, day) * kMicrosPerDay + hour * kMicrosPerHour +
               minute * kMicrosPerMinute + second * kMicrosPerSecond + fraction;
    return t - offset;
}

std::string format_iso8601(Micros t) {
    std::int64_t days = t / kMicrosPerDay;
    Micros rem = t % kMicrosPerDay;
    if (rem < 0) {
        rem += kMicrosPerDay;
        --days;
    }
    int y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d,
                  static_cast<int>(rem / kMicrosPerHour), static_cast<int>(rem / kMicrosPerMinute % 60),
                  static_cast<int>(rem / kMicrosPerSecond % 60), static_cast<int>(rem % kMicrosPerSecond));
    return buf;
}

// Allocates nothing and throws nothing: PostgreSQL calls it from a GUC check hook.
std::optional<Micros> parse_duration(std::string_view text) noexcept {
    char lowered[64];
    if (text.size() >= sizeof lowered) return std::nullopt;
    for (size_t i = 0; i < text.size(); ++i)
        lowered[i] = static_cast<char>(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    std::string_view rest = trim(std::string_view(lowered, text.size()));
    if (rest == "infinity" || rest == "forever") return -1;
    Micros total = 0;
    bool any = false;
    while (!(rest = trim(rest)).empty()) {
        size_t digits = 0;
        Micros amount = 0;
        while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') amount = amount * 10 + (rest[digits++] - '0');
        if (digits == 0 || digits > 12) return std::nullopt;
        rest = trim(rest.substr(digits));
        size_t letters = 0;
        while (letters < rest.size() && rest[letters] >= 'a' && rest[letters] <= 'z') ++letters;
        std::string_view unit = rest.substr(0, letters);
        rest = rest.substr(letters);
        Micros scale;
        if (unit == "us") scale = 1;
        else if (unit == "ms") scale = 1000;
        else if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" || unit == "seconds") scale = kMicrosPerSecond;
        else if (unit == "min" || unit == "mins" || unit == "minute" || unit == "minutes") scale = kMicrosPerMinute;
        else if (unit == "h" || unit == "hour" || unit == "hours") scale = kMicrosPerHour;
        else if (unit == "d" || unit == "day" || unit == "days") scale = kMicrosPerDay;
        else if (unit == "w" || unit == "week" || unit == "weeks") scale = 7 * kMicrosPerDay;
        else return std::nullopt;
        if (amount > (INT64_MAX / 2 - total) / scale) return std::nullopt;
        total += amount * scale;
        any = true;
    }
    if (!any || total <= 0) return std::nullopt;
    return total;
}

Micros month_start(Micros t) {
    std::int64_t days = t / kMicrosPerDay - (t % kMicrosPerDay < 0 ? 1 : 0);
    int y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    return days_from_civil(y, m, 1) * kMicrosPerDay;
}

Micros corrected_timestamp(std::optional<Micros> original, std::optional<Micros> sent_at, Micros received_at) {
    if (original && sent_at) return received_at - (*sent_at - *original);
    if (original) return *original;
    return received_at;
}

}  // namespace cdp
