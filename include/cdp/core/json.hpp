// RapidJSON, configured once for the whole project: every file includes it through here, so all
// translation units agree on its settings.
#pragma once
#include "cdp/core/pure.hpp"

// SIMD scanning of strings and whitespace (in-place parsing benefits most). SSE2 is part of the
// x86-64 baseline and NEON of AArch64, so no CPU check is needed.
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#elif defined(__ARM_NEON) && !defined(RAPIDJSON_NEON)
#define RAPIDJSON_NEON
#endif

#include <rapidjson/document.h>
