// cdp_bench_components: the core of cdp.connected_components (ComponentBuilder: interning string
// ids, union-find, the smallest name per component) on an edge list, without PostgreSQL around
// it; for tuning. Reading is from memory here, so the helper thread has less to overlap with
// than in the backend, where it runs while the edges query is read.
//   cdp_bench_components edges.tsv [repeat]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_set>
#include <vector>

#include "cdp/core/identity.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: cdp_bench_components edges.tsv [repeat]\n";
        return 2;
    }
    std::ifstream in(argv[1]);
    std::vector<std::pair<std::string, std::string>> edges;
    std::string line;
    while (std::getline(in, line)) {
        size_t tab = line.find('\t');
        if (tab == std::string::npos) continue;
        edges.emplace_back(line.substr(0, tab), line.substr(tab + 1));
    }
    int repeat = argc > 2 ? std::stoi(argv[2]) : 5;
    for (bool helper : {false, true}) {
        double best = 1e300;
        size_t components = 0;
        for (int r = 0; r < repeat; ++r) {
            auto start = std::chrono::steady_clock::now();
            cdp::ComponentBuilder graph(nullptr, helper);
            graph.reserve(edges.size());
            for (const auto& [a, b] : edges) graph.add_edge(a, b);
            graph.finish();
            std::vector<std::uint32_t> label = graph.smallest_names();
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best = std::min(best, s);
            components = std::unordered_set<std::uint32_t>(label.begin(), label.end()).size();
        }
        std::printf("components  %zu edges  %zu components  helper thread %s  best of %d: %.3f s\n", edges.size(),
                    components, helper ? "on" : "off", repeat, best);
    }
    return 0;
}
