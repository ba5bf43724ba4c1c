// Load generator for cdp-collector: many concurrent connections on loopback, each posting
// batches of events ({"batch": [...]}, Basic auth) from an NDJSON file until all are sent;
// prints events/s from the first request to the last 200 (every event committed) and the
// request latency percentiles. Requests answered 429 or 503 are retried after a pause.
//   cdp_bench_collector --host 127.0.0.1 --port 18088 --key KEY --file events.ndjson
//                       [--connections 32] [--batch 50]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", key, file;
    int port = 18088, connections = 32;
    size_t batch = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--host") host = v;
        else if (a == "--port") port = std::stoi(v);
        else if (a == "--key") key = v;
        else if (a == "--file") file = v;
        else if (a == "--connections") connections = std::stoi(v);
        else if (a == "--batch") batch = std::stoul(v);
    }
    if (key.empty() || file.empty()) {
        std::cerr << "usage: cdp_bench_collector --key KEY --file events.ndjson [--host H] [--port P] [--connections N] [--batch N]\n";
        return 2;
    }
    std::vector<std::string> bodies;
    {
        std::ifstream in(file);
        std::string line, body;
        size_t n = 0, total = 0;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            body += (n == 0 ? "{\"batch\":[" : ",") + line;
            ++total;
            if (++n == batch) {
                bodies.push_back(body + "]}");
                body.clear();
                n = 0;
            }
        }
        if (n > 0) bodies.push_back(body + "]}");
        std::fprintf(stderr, "%zu events in %zu requests\n", total, bodies.size());
    }
    std::atomic<size_t> next{0};
    std::atomic<long> retries{0}, failures{0};
    std::mutex mu;
    std::vector<double> latencies;
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < connections; ++c)
        threads.emplace_back([&] {
            httplib::Client client(host, port);
            client.set_basic_auth(key, "");
            client.set_keep_alive(true);
            client.set_tcp_nodelay(true);  // as SDKs' HTTP stacks do: a request's parts leave at once
            client.set_read_timeout(60, 0);
            std::vector<double> mine;
            for (size_t i; (i = next++) < bodies.size();) {
                for (int attempts = 0;;) {
                    auto t0 = std::chrono::steady_clock::now();
                    auto res = client.Post("/v1/batch", bodies[i], "application/json");
                    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
                    if (res && res->status == 200) {
                        mine.push_back(ms);
                        break;
                    }
                    if (res && (res->status == 429 || res->status == 503)) {
                        ++retries;
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
                        continue;
                    }
                    if (!res && attempts++ < 3) {  // a dropped connection: sent again, as SDKs do
                        ++retries;
                        continue;
                    }
                    ++failures;
                    std::fprintf(stderr, "request failed: %s\n",
                                 res ? ("status " + std::to_string(res->status)).c_str() : httplib::to_string(res.error()).c_str());
                    break;
                }
            }
            std::lock_guard<std::mutex> g(mu);
            latencies.insert(latencies.end(), mine.begin(), mine.end());
        });
    for (auto& t : threads) t.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) { return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, size_t(p * latencies.size()))]; };
    std::printf("%.3f %.2f %.2f %ld %ld\n", seconds, pct(0.5), pct(0.99), retries.load(), failures.load());
    return failures.load() == 0 ? 0 : 1;
}
