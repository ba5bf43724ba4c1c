#include "cdp/pg/numeric_text.hpp"

#include <cstdlib>
#include <cstring>

extern "C" {
#include "utils/numeric.h"
}

namespace cdp::pg {

namespace {

// numeric.c's stored format (its structs are private to numeric.c, but the bytes are what is on
// disk, so they stay): after the varlena header a uint16 whose top two bits say the form.
//   10: short: that uint16 also holds the sign, the display scale and the weight;
//   00 (positive) and 01 (negative): long: its low 14 bits are the display scale, an int16
//       weight follows;
//   11: NaN and the infinities.
// Then the digits, base 10000 (int16 each), the first one worth 10000^weight.
constexpr uint16 kFormMask = 0xC000, kShort = 0x8000, kNegative = 0x4000, kSpecial = 0xC000;
constexpr uint16 kShortNegative = 0x2000, kShortScaleMask = 0x1F80, kShortScaleShift = 7;
constexpr uint16 kShortWeightSign = 0x0040, kShortWeightMask = 0x003F, kLongScaleMask = 0x3FFF;
constexpr int kDecDigits = 4;

// The four decimal digits of a base-10000 digit; `trim`: without its leading zeros (the first
// digit group of a number), but at least one digit.
char* put_group(char* cp, int digit, bool trim) {
    char four[kDecDigits] = {static_cast<char>('0' + digit / 1000), static_cast<char>('0' + digit / 100 % 10),
                             static_cast<char>('0' + digit / 10 % 10), static_cast<char>('0' + digit % 10)};
    int from = 0;
    if (trim)
        while (from < kDecDigits - 1 && four[from] == '0') ++from;
    for (int i = from; i < kDecDigits; ++i) *cp++ = four[i];
    return cp;
}

}  // namespace

bool numeric_text(Numeric num, char (&out)[kNumericTextMax], int* len, double* value) {
    const char* p = VARDATA_ANY(num);
    size_t size = VARSIZE_ANY_EXHDR(num);
    if (size < sizeof(uint16)) return false;
    uint16 head;
    memcpy(&head, p, sizeof head);
    bool negative;
    int scale, weight;
    if ((head & kFormMask) == kShort) {
        negative = (head & kShortNegative) != 0;
        scale = (head & kShortScaleMask) >> kShortScaleShift;
        weight = (head & kShortWeightSign ? ~static_cast<int>(kShortWeightMask) : 0) | (head & kShortWeightMask);
        p += sizeof(uint16);
        size -= sizeof(uint16);
    } else if ((head & kFormMask) == kSpecial || size < 2 * sizeof(uint16)) {
        return false;
    } else {
        negative = (head & kFormMask) == kNegative;
        scale = head & kLongScaleMask;
        int16 w;
        memcpy(&w, p + sizeof(uint16), sizeof w);
        weight = w;
        p += 2 * sizeof(uint16);
        size -= 2 * sizeof(uint16);
    }
    int ndigits = static_cast<int>(size / sizeof(int16));
    if (weight >= 32 / kDecDigits || weight < -32 / kDecDigits - 1 || scale > 32) return false;
    auto digit = [&](int i) {
        if (i < 0 || i >= ndigits) return 0;
        int16 d;
        memcpy(&d, p + i * sizeof(int16), sizeof d);
        return static_cast<int>(d);
    };
    // As numeric.c's get_str_from_var writes it.
    char* cp = out;
    if (negative) *cp++ = '-';
    int i = 0;
    bool whole = scale == 0;  // an integer: its value read from its digits
    int64 integer = 0;
    if (weight < 0) {
        i = weight + 1;
        *cp++ = '0';
    } else {
        for (; i <= weight; ++i) {
            cp = put_group(cp, digit(i), i == 0);
            if (weight < 4) integer = integer * 10000 + digit(i);
        }
    }
    if (scale > 0) {
        *cp++ = '.';
        char* end = cp + scale;
        for (int written = 0; written < scale; ++i, written += kDecDigits) cp = put_group(cp, digit(i), false);
        cp = end;
    }
    *cp = '\0';
    *len = static_cast<int>(cp - out);
    // An integer of up to 16 digits converts exactly (int64 to double rounds to nearest, as
    // strtod does); the others are read as before.
    *value = whole && weight < 4 ? static_cast<double>(negative ? -integer : integer) : strtod(out, nullptr);
    return true;
}

Numeric numeric_of_plain_text(std::string_view text) {
    size_t at = 0;
    bool negative = !text.empty() && text[0] == '-';
    if (negative) ++at;
    int64 value = 0;
    int digits = 0, fraction = -1;  // digits after the point, once there is one
    for (; at < text.size(); ++at) {
        char c = text[at];
        if (c == '.' && fraction < 0 && digits > 0) {
            fraction = 0;
            continue;
        }
        if (c < '0' || c > '9' || ++digits > 18) return nullptr;
        value = value * 10 + (c - '0');
        if (fraction >= 0) ++fraction;
    }
    if (digits == 0 || fraction == 0) return nullptr;  // "", "-", "1."
    return int64_div_fast_to_numeric(negative ? -value : value, fraction < 0 ? 0 : fraction);
}

}  // namespace cdp::pg
