#include "cdp/core/timestamp.hpp"

#include <gtest/gtest.h>

using namespace cdp;

TEST(Timestamp, ParsesUtcWithFraction) {
    auto t = parse_iso8601("2026-11-29T08:23:56.123Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(format_iso8601(*t), "2026-11-29T08:23:56.123000Z");
    EXPECT_EQ(*t, 1795940636123000LL);  // date -d 2026-11-29T08:23:56Z +%s, in microseconds
}

TEST(Timestamp, AppliesOffsets) {
    auto a = parse_iso8601("2026-11-29T10:23:56+02:00");
    auto b = parse_iso8601("2026-11-29T08:23:56Z");
    auto c = parse_iso8601("2026-11-29T03:23:56-0500");
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*c, *b);
}

TEST(Timestamp, AcceptsDateOnlyAndNoZone) {
    EXPECT_EQ(format_iso8601(*parse_iso8601("2024-02-29")), "2024-02-29T00:00:00.000000Z");
    EXPECT_EQ(format_iso8601(*parse_iso8601("2024-02-29 13:05")), "2024-02-29T13:05:00.000000Z");
}

TEST(Timestamp, RejectsWhatIsNotATime) {
    for (const char* bad : {"", "yesterday", "2023-02-29", "2026-13-01", "2026-11-29T25:00:00Z", "2026-11-29T08:23Zjunk",
                            "2026-11-29T08:23:56.Z", "1700000000", "2026-11-29T08:23:56+2"})
        EXPECT_FALSE(parse_iso8601(bad)) << bad;
}

TEST(Timestamp, KeepsMicrosecondsDropsFiner) {
    EXPECT_EQ(format_iso8601(*parse_iso8601("2026-01-01T00:00:00.1234567Z")), "2026-01-01T00:00:00.123456Z");
}

TEST(Timestamp, FormatsBeforeEpoch) {
    EXPECT_EQ(format_iso8601(*parse_iso8601("1969-12-31T23:59:59.5Z")), "1969-12-31T23:59:59.500000Z");
}

// Segment's example: the device clock is an hour behind; sentAt and timestamp move together.
TEST(ClockSkew, CorrectsByTheDistanceToSentAt) {
    Micros received = *parse_iso8601("2026-11-29T12:00:10Z");
    Micros sent = *parse_iso8601("2026-11-29T11:00:05Z");      // device clock: 1h behind
    Micros original = *parse_iso8601("2026-11-29T11:00:00Z");  // happened 5 s before sending
    EXPECT_EQ(format_iso8601(corrected_timestamp(original, sent, received)), "2026-11-29T12:00:05.000000Z");
}

TEST(ClockSkew, FallsBackToOriginalThenReceived) {
    Micros received = 1000;
    EXPECT_EQ(corrected_timestamp(500, std::nullopt, received), 500);
    EXPECT_EQ(corrected_timestamp(std::nullopt, 900, received), received);
    EXPECT_EQ(corrected_timestamp(std::nullopt, std::nullopt, received), received);
}

TEST(Duration, ParsesUnitsAndInfinity) {
    EXPECT_EQ(*parse_duration("30 minutes"), 30 * kMicrosPerMinute);
    EXPECT_EQ(*parse_duration("7 days"), 7 * kMicrosPerDay);
    EXPECT_EQ(*parse_duration(" 1h 30min "), 90 * kMicrosPerMinute);
    EXPECT_EQ(*parse_duration("90s"), 90 * kMicrosPerSecond);
    EXPECT_EQ(*parse_duration("2 Weeks"), 14 * kMicrosPerDay);
    EXPECT_EQ(*parse_duration("Infinity"), -1);
    EXPECT_EQ(*parse_duration("forever"), -1);
}

TEST(Duration, RejectsWhatIsNotADuration) {
    for (const char* bad : {"", "a fortnight", "-5 minutes", "0 s", "5", "5 parsecs", "1.5h", "99999999999999 d"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Timestamp, MonthStart) {
    EXPECT_EQ(format_iso8601(month_start(*parse_iso8601("2026-11-29T08:23:56Z"))), "2026-11-01T00:00:00.000000Z");
    EXPECT_EQ(format_iso8601(month_start(*parse_iso8601("2024-03-01T00:00:00Z"))), "2024-03-01T00:00:00.000000Z");
    EXPECT_EQ(format_iso8601(month_start(*parse_iso8601("1969-12-31T23:59:59Z"))), "1969-12-01T00:00:00.000000Z");
}
