// cdp_bench_parse: the core's share of ingest, without PostgreSQL: parse, validate, enrich and
// sessionize NDJSON events in batches, as cdp.ingest does. For profiling the core
// (perf, or valgrind --tool=callgrind for instruction counts that do not depend on machine noise).
//
//   cdp_bench_parse --file events.ndjson [--batch 500] [--repeat 3]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "cdp/core/ingest.hpp"
#include "cdp/core/session.hpp"

int main(int argc, char** argv) {
    std::string file;
    size_t batch = 500;
    int repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--file")) file = argv[i + 1];
        else if (!std::strcmp(argv[i], "--batch")) batch = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeat")) repeat = std::stoi(argv[i + 1]);
    }
    std::ifstream in(file);
    if (!in) {
        std::fprintf(stderr, "usage: cdp_bench_parse --file events.ndjson [--batch N] [--repeat N]\n");
        return 2;
    }
    std::vector<std::string> payloads;
    std::string line;
    size_t events = 0, n = 0;
    while (std::getline(in, line)) {
        if (n == 0) payloads.emplace_back("[");
        else payloads.back() += ",";
        payloads.back() += line;
        ++events;
        if (++n == batch) {
            payloads.back() += "]";
            n = 0;
        }
    }
    if (n != 0) payloads.back() += "]";

    cdp::UserAgentParser parser("/usr/share/uap-core/regexes.yaml");
    cdp::CachedUserAgentParser cache(parser);
    cdp::IngestOptions options;
    options.received_at = *cdp::parse_iso8601("2026-11-29T00:00:00Z");
    options.user_agents = &cache;
    options.input_is_utf8 = true;
    double best = 1e300;
    size_t accepted = 0;
    for (int r = 0; r < repeat; ++r) {
        std::unordered_map<std::string, cdp::SessionState> sessions;
        auto start = std::chrono::steady_clock::now();
        accepted = 0;
        for (const std::string& p : payloads) {
            cdp::IngestBatch b;
            b.parse(p, options);
            cdp::assign_sessions(b.events, sessions, 30 * cdp::kMicrosPerMinute, 1);
            accepted += b.events.size();
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::printf("core  %zu events (%zu accepted) in %.3f s: %.2f us/event, %.0f events/s\n", events, accepted, best,
                best * 1e6 / events, events / best);
    return 0;
}
