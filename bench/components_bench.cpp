// cdp_bench_components: the core of cdp.connected_components (interning string ids, union-find,
// the smallest name per component) on an edge list, without PostgreSQL around it; for tuning.
//   cdp_bench_components edges.tsv [repeat]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
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
    double best = 1e300;
    size_t components = 0;
    for (int r = 0; r < repeat; ++r) {
        auto start = std::chrono::steady_clock::now();
        cdp::StringInterner names;
        cdp::UnionFind uf;
        std::vector<std::string_view> batch;
        std::vector<std::uint32_t> ids(2 * cdp::StringInterner::kBatch);
        for (size_t e = 0; e < edges.size(); e += cdp::StringInterner::kBatch) {
            batch.clear();
            for (size_t k = e; k < std::min(edges.size(), e + cdp::StringInterner::kBatch); ++k) {
                batch.push_back(edges[k].first);
                batch.push_back(edges[k].second);
            }
            names.intern_many(batch.data(), batch.size(), ids.data());
            while (uf.count() < names.size()) uf.add();
            for (size_t k = 0; k < batch.size(); k += 2) uf.unite(ids[k], ids[k + 1]);
        }
        std::vector<std::uint32_t> label(names.size(), UINT32_MAX);
        components = 0;
        for (std::uint32_t i = 0; i < names.size(); ++i) {
            std::uint32_t& l = label[uf.find(i)];
            if (l == UINT32_MAX) ++components;
            if (l == UINT32_MAX || names.name(i) < names.name(l)) l = i;
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::min(best, s);
    }
    std::printf("components  %zu edges  %zu components  best of %d: %.3f s\n", edges.size(), components, repeat, best);
    return 0;
}
