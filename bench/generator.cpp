// cdp_gen: a seeded generator of realistic Segment-spec events, one JSON object per line.
// People browse a shop on one to three devices (each an anonymous id); some sign up or log in
// (identify with userId and email); visits are bursts of page views and commerce events,
// arriving from search, social, e-mail campaigns or directly. Same seed, same bytes.
//
// By default the events are a backfill: no sentAt, so the event time is the client timestamp.
// --live 1 adds sentAt as analytics.js sends it, and ingest's clock-skew rule then moves each
// event to the moment it is received.
//
//   cdp_gen [--events N] [--seed S] [--start 2026-10-01] [--days 30] [--live 0|1]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cdp/core/timestamp.hpp"

namespace {

// splitmix64: tiny, fast, identical everywhere (std distributions are not).
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return next() % n; }
    bool chance(double p) { return (next() >> 11) * (1.0 / 9007199254740992.0) < p; }
};

const char* const kUserAgents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
};
const char* const kLocales[] = {"en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "pt-BR", "es-ES", "en-IN"};
const char* const kCategories[] = {"sustainable-fashion", "headphones", "laptops", "running", "home", "books"};
const char* const kReferrers[] = {"", "", "https://www.google.com/", "https://www.bing.com/", "https://t.co/x1",
                                  "https://l.facebook.com/", "https://news.ycombinator.com/", "https://duckduckgo.com/"};
struct Campaign {
    const char* source;
    const char* medium;
    const char* name;
};
const Campaign kCampaigns[] = {{"newsletter", "email", "black-friday"},
                               {"google", "cpc", "brand-search"},
                               {"facebook", "paid-social", "retarget-cart"},
                               {"instagram", "social", "winter-collection"}};

struct Device {
    std::string anonymous_id;
    const char* user_agent;
    const char* locale;
    std::string ip;
};

struct Person {
    std::vector<Device> devices;
    std::string user_id, email;
    bool identified = false;
};

std::string hex_id(Rng& r, int bytes) {
    static const char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < bytes; ++i) {
        std::uint64_t v = r.next();
        s.push_back(kHex[v & 15]);
        s.push_back(kHex[(v >> 4) & 15]);
    }
    return s;
}

std::string uuid(Rng& r) {
    std::string h = hex_id(r, 16);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" + h.substr(17, 3) + "-" + h.substr(20, 12);
}

}  // namespace

int main(int argc, char** argv) {
    long long total = 1000;
    std::uint64_t seed = 42;
    std::string start = "2026-10-01";
    int days = 30;
    bool live = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--events")) total = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--start")) start = argv[i + 1];
        else if (!std::strcmp(argv[i], "--days")) days = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--live")) live = std::atoi(argv[i + 1]) != 0;
        else {
            std::fprintf(stderr, "usage: cdp_gen [--events N] [--seed S] [--start YYYY-MM-DD] [--days D] [--live 0|1]\n");
            return 2;
        }
    }
    auto start_time = cdp::parse_iso8601(start);
    if (!start_time) {
        std::fprintf(stderr, "cdp_gen: --start must be a date like 2026-10-01\n");
        return 2;
    }
    Rng rng{seed};
    // About 25 events per person over the period.
    size_t people_count = static_cast<size_t>(total / 25 + 1);
    std::vector<Person> people(people_count);
    for (size_t p = 0; p < people_count; ++p) {
        Person& person = people[p];
        int devices = 1 + static_cast<int>(rng.below(3));
        for (int d = 0; d < devices; ++d)
            person.devices.push_back({uuid(rng), kUserAgents[rng.below(std::size(kUserAgents))],
                                      kLocales[rng.below(std::size(kLocales))],
                                      std::to_string(10 + rng.below(200)) + "." + std::to_string(rng.below(256)) + "." +
                                          std::to_string(rng.below(256)) + "." + std::to_string(rng.below(256))});
        person.user_id = "user-" + std::to_string(100000 + p);
        person.email = "Person" + std::to_string(p) + "@Example.com";
    }

    const cdp::Micros span = static_cast<cdp::Micros>(days) * cdp::kMicrosPerDay;
    std::string out;
    out.reserve(1 << 20);
    long long emitted = 0;
    while (emitted < total) {
        // One visit: a person on one device, from one source, several events a minute or so apart.
        Person& person = people[rng.below(people_count)];
        Device& device = person.devices[rng.below(person.devices.size())];
        cdp::Micros t = *start_time + static_cast<cdp::Micros>(rng.below(static_cast<std::uint64_t>(span)));
        const char* referrer = kReferrers[rng.below(std::size(kReferrers))];
        const Campaign* campaign = rng.chance(0.3) ? &kCampaigns[rng.below(std::size(kCampaigns))] : nullptr;
        const char* category = kCategories[rng.below(std::size(kCategories))];
        int visit_events = rng.chance(0.3) ? 1 : 2 + static_cast<int>(rng.below(10));  // some visits bounce
        bool logged_in = person.identified && rng.chance(0.7);
        for (int k = 0; k < visit_events && emitted < total; ++k, ++emitted) {
            t += static_cast<cdp::Micros>(5 + rng.below(90)) * cdp::kMicrosPerSecond;
            std::string product = std::string(category) + "-" + std::to_string(rng.below(40));
            std::string path = k == 0 && rng.chance(0.3) ? "/" : "/p/" + product;
            std::string url = "https://shop.example.com" + path;
            if (k == 0 && campaign != nullptr)
                url += std::string("?utm_source=") + campaign->source + "&utm_medium=" + campaign->medium +
                       "&utm_campaign=" + campaign->name;
            std::string ts = cdp::format_iso8601(t);
            std::string sent = cdp::format_iso8601(t + static_cast<cdp::Micros>(rng.below(3000)) * 1000);
            std::string ids = "\"anonymousId\":\"" + device.anonymous_id + "\"";
            if (logged_in) ids += ",\"userId\":\"" + person.user_id + "\"";
            std::string context = "\"context\":{\"ip\":\"" + device.ip + "\",\"locale\":\"" + device.locale +
                                  "\",\"userAgent\":\"" + device.user_agent +
                                  "\",\"library\":{\"name\":\"analytics.js\",\"version\":\"next-1.64.0\"},"
                                  "\"page\":{\"path\":\"" + path + "\",\"referrer\":\"" + (k == 0 ? referrer : "https://shop.example.com/") +
                                  "\",\"title\":\"Shop\",\"url\":\"" + url + "\"}}";
            std::string head = "{\"messageId\":\"ajs-next-" + hex_id(rng, 16) + "\",\"timestamp\":\"" + ts + "\"," +
                               (live ? "\"sentAt\":\"" + sent + "\"," : std::string()) + ids + ",";
            std::uint64_t roll = rng.below(100);
            if (!person.identified && roll < 6) {
                person.identified = logged_in = true;
                out += head + "\"type\":\"identify\",\"userId\":\"" + person.user_id + "\",\"traits\":{\"email\":\"" +
                       person.email + "\",\"plan\":\"" + (rng.chance(0.2) ? "pro" : "free") +
                       "\",\"newsletter\":" + (rng.chance(0.5) ? "true" : "false") + "}," + context +
                       ",\"integrations\":{}}\n";
            } else if (roll < 60) {
                out += head + "\"type\":\"page\",\"name\":\"Product\",\"properties\":{\"path\":\"" + path +
                       "\",\"url\":\"" + url + "\",\"category\":\"" + category + "\"}," + context +
                       ",\"integrations\":{}}\n";
            } else {
                // A funnel: many views, fewer carts, fewer checkouts, fewer orders.
                static const char* const kEvents[] = {"Product Viewed", "Product Viewed", "Product Viewed",
                                                      "Product Viewed", "Products Searched", "Products Searched",
                                                      "Product Added", "Product Added", "Checkout Started",
                                                      "Order Completed"};
                const char* name = kEvents[rng.below(std::size(kEvents))];
                int cents = 999 + static_cast<int>(rng.below(40000));
                out += head + "\"type\":\"track\",\"event\":\"" + name + "\",\"properties\":{\"product_id\":\"" + product +
                       "\",\"category\":\"" + category + "\",\"price\":" + std::to_string(cents / 100) + "." +
                       std::to_string(10 + cents % 90) + ",\"currency\":\"USD\",\"quantity\":" +
                       std::to_string(1 + rng.below(3)) + "}," + context + ",\"integrations\":{}}\n";
            }
            if (out.size() > (1 << 20) - 4096) {
                std::fwrite(out.data(), 1, out.size(), stdout);
                out.clear();
            }
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}
