// Numbers between jsonb's numeric and the JSON text the trait states keep, without going through
// numeric_out and numeric_in (their allocations and parsing cost more than the rest of folding a
// trait) for the numbers traits hold; anything else is left to those two.
#pragma once

#include <string_view>

#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// Room numeric_text needs.
constexpr int kNumericTextMax = 80;

// Writes a numeric's text exactly as numeric_out does, and its value as strtod reads that text,
// when it has at most 32 digits before the point and 32 after; false for any other (and NaN and
// the infinities), which the caller writes with numeric_out.
bool numeric_text(Numeric num, char (&out)[kNumericTextMax], int* len, double* value);

// The numeric numeric_in makes of a plain decimal text (an optional minus, digits, optionally a
// point and more digits; 18 digits at most); nullptr for any other text, which the caller reads
// with numeric_in.
Numeric numeric_of_plain_text(std::string_view text);

}  // namespace cdp::pg
